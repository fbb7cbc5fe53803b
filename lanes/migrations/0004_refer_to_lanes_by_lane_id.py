"""Trades and lane events refer to their lane by its lane_id (the lane's name in the API and the old
bot's table) instead of its integer id, so that ``trade.lane_id`` is the id everyone uses.

Each reference gets a new column, filled from the old one, which is then dropped; the new column
takes the old name. A foreign key between string columns needs one character set on MySQL and
MariaDB: an adopted ``martingale_lanes`` in another one has its ``lane_id`` column converted first
(every value kept).
"""
import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def align_lane_id_charset(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CHARACTER_SET_NAME, COLLATION_NAME, IS_NULLABLE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'martingale_lanes' AND COLUMN_NAME = 'lane_id'"
        )
        lane_charset, lane_collation, _ = cursor.fetchone()
        cursor.execute(
            "SELECT T.TABLE_COLLATION, C.CHARACTER_SET_NAME FROM information_schema.TABLES T "
            "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY C ON C.COLLATION_NAME = T.TABLE_COLLATION "
            "WHERE T.TABLE_SCHEMA = DATABASE() AND T.TABLE_NAME = 'martingale_trades'"
        )
        trade_collation, trade_charset = cursor.fetchone()
        if (lane_charset, lane_collation) != (trade_charset, trade_collation):
            cursor.execute(
                f"ALTER TABLE martingale_lanes MODIFY lane_id VARCHAR(100) "
                f"CHARACTER SET {trade_charset} COLLATE {trade_collation} NOT NULL"
            )


def copy_references(apps, schema_editor):
    Lane = apps.get_model("lanes", "Lane")
    lane_id_of = Subquery(Lane.objects.filter(pk=OuterRef("lane")).values("lane_id")[:1])
    for name in ("Trade", "LaneEvent"):
        model = apps.get_model("lanes", name)
        model.objects.filter(lane__isnull=False).update(lane_ref=lane_id_of)


def copy_references_back(apps, schema_editor):
    Lane = apps.get_model("lanes", "Lane")
    pk_of = Subquery(Lane.objects.filter(lane_id=OuterRef("lane_ref")).values("pk")[:1])
    for name in ("Trade", "LaneEvent"):
        model = apps.get_model("lanes", name)
        model.objects.filter(lane_ref__isnull=False).update(lane=pk_of)


def reference(related_name, db_column=None):
    return models.ForeignKey(
        blank=True,
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to="lanes.lane",
        to_field="lane_id",
        db_column=db_column,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("lanes", "0003_trade_stats_index"),
    ]

    operations = [
        migrations.RunPython(align_lane_id_charset, migrations.RunPython.noop),
        migrations.AddField(model_name="trade", name="lane_ref", field=reference("+", "lane_ref")),
        migrations.AddField(model_name="laneevent", name="lane_ref", field=reference("+", "lane_ref")),
        migrations.RunPython(copy_references, copy_references_back),
        migrations.RemoveConstraint(model_name="trade", name="trade_one_open_per_lane"),
        migrations.RemoveField(model_name="trade", name="lane"),
        migrations.RemoveField(model_name="laneevent", name="lane"),
        migrations.RenameField(model_name="trade", old_name="lane_ref", new_name="lane"),
        migrations.RenameField(model_name="laneevent", old_name="lane_ref", new_name="lane"),
        migrations.AlterField(model_name="trade", name="lane", field=reference("trades")),
        migrations.AlterField(model_name="laneevent", name="lane", field=reference("events")),
        migrations.AddConstraint(
            model_name="trade",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open")), fields=("lane",), name="trade_one_open_per_lane"
            ),
        ),
        migrations.AlterField(
            model_name="laneevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Lane created"), ("trade_assigned", "Trade assigned"), ("advanced", "Advanced a level"),
                    ("draw", "Trade drawn"), ("recovered", "Recovered"), ("exhausted", "Exhausted"),
                    ("trade_cancelled", "Trade cancelled out"), ("force_completed", "Force-completed"),
                    ("cancelled", "Cancelled"), ("not_created", "Lane not created"),
                    ("settled_by_hand", "Result entered by hand"),
                ],
                max_length=20,
            ),
        ),
    ]
