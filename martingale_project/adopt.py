"""A CreateModel that also adopts a table the old bot already made (SPEC §1).

On a fresh database it creates the table like CreateModel (on MySQL/MariaDB, the seed DDL's
ENUM columns are then made ENUMs again). When the table already exists, it keeps every row and
column as it is and only adds the project's missing columns, indexes and constraints.
"""
from django.db import migrations


class AdoptOrCreateModel(migrations.CreateModel):
    def __init__(self, *args, enums=None, **kwargs):
        self.enums = enums or {}
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        if self.enums:
            kwargs["enums"] = self.enums
        return name, args, kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.name)
        connection = schema_editor.connection
        table = model._meta.db_table
        with connection.cursor() as cursor:
            exists = table in connection.introspection.table_names(cursor)
        if not exists:
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            if connection.vendor == "mysql":
                self._make_enums(model, schema_editor)
            return
        with connection.cursor() as cursor:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, table)}
            constraints = set(connection.introspection.get_constraints(cursor, table))
        for field in model._meta.local_fields:
            if field.column and field.column not in columns:
                self._add_column(model, field, schema_editor)
        for index in model._meta.indexes:
            if index.name not in constraints:
                schema_editor.add_index(model, index)
        for constraint in model._meta.constraints:
            if constraint.name not in constraints:
                schema_editor.add_constraint(model, constraint)

    @staticmethod
    def _add_column(model, field, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            schema_editor.add_field(model, field)
            return
        # Django rebuilds the SQLite table for a column with db_default and fills it with the
        # column's name as a string; a plain ADD COLUMN keeps every row and gets the default.
        definition, params = schema_editor.column_sql(model, field, include_default=True)
        schema_editor.execute(
            f"ALTER TABLE {schema_editor.quote_name(model._meta.db_table)} "
            f"ADD COLUMN {schema_editor.quote_name(field.column)} {definition}",
            params,
        )

    def _make_enums(self, model, schema_editor):
        quote = schema_editor.quote_name
        for column, (values, default) in self.enums.items():
            field = model._meta.get_field(column)
            enum = ", ".join(schema_editor.quote_value(v) for v in values)
            null = "NULL" if field.null else "NOT NULL"
            schema_editor.execute(
                f"ALTER TABLE {quote(model._meta.db_table)} MODIFY {quote(field.column)} "
                f"ENUM({enum}) {null} DEFAULT {schema_editor.quote_value(default)}"
            )

    def describe(self):
        return f"Create model {self.name} (or adopt its existing table)"
