"""The statistics' running totals (lanes.summary): the buckets and the pending changes, the
triggers on martingale_trades and martingale_lanes that append the changes, the buckets filled
from the rows already there (an adopted database's lanes too), and an index on the lanes'
created_at for the raw ends of a statistics window.

The triggers are not model state (``makemigrations`` does not see them): migrating back drops
them; on SQLite, a later migration that rebuilds either table must install them again
(``lanes.summary.install_triggers`` then ``rebuild``).
"""
from django.db import migrations, models

from lanes import summary


def install(apps, schema_editor):
    summary.install_triggers(schema_editor.connection)
    summary.rebuild(schema_editor.connection)


def check_privilege(apps, schema_editor):
    summary.check_trigger_privilege(schema_editor.connection)


def uninstall(apps, schema_editor):
    summary.drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('lanes', '0004_refer_to_lanes_by_lane_id'),
    ]

    operations = [
        # First: MySQL/MariaDB cannot undo the tables below if creating the triggers is refused.
        migrations.RunPython(check_privilege, migrations.RunPython.noop, atomic=False),
        migrations.CreateModel(
            name='StatsBucket',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(max_length=1)),
                ('dim', models.CharField(max_length=1)),
                ('width', models.IntegerField()),
                ('slot', models.BigIntegerField()),
                ('level', models.IntegerField()),
                ('symbol', models.CharField(max_length=50)),
                ('status', models.CharField(max_length=20)),
                ('outcome', models.CharField(max_length=20)),
                ('n', models.BigIntegerField()),
                ('amount', models.BigIntegerField()),
                ('payout', models.BigIntegerField()),
            ],
            options={
                'db_table': 'martingale_stats_buckets',
            },
        ),
        migrations.CreateModel(
            name='StatsChange',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(max_length=1)),
                ('slot', models.BigIntegerField()),
                ('level', models.IntegerField()),
                ('symbol', models.CharField(max_length=50)),
                ('status', models.CharField(max_length=20)),
                ('outcome', models.CharField(max_length=20)),
                ('n', models.IntegerField()),
                ('amount', models.BigIntegerField()),
                ('payout', models.BigIntegerField()),
            ],
            options={
                'db_table': 'martingale_stats_changes',
            },
        ),
        migrations.AddIndex(
            model_name='lane',
            index=models.Index(fields=['created_at'], name='lane_created_idx'),
        ),
        migrations.AddConstraint(
            model_name='statsbucket',
            constraint=models.UniqueConstraint(fields=('kind', 'dim', 'width', 'slot', 'level', 'symbol', 'status', 'outcome'), name='stats_bucket_key'),
        ),
        # Not atomic: on MySQL/MariaDB the rebuild opens its own REPEATABLE READ transaction.
        migrations.RunPython(install, uninstall, atomic=False),
    ]
