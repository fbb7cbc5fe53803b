"""A list stored as JSON text, for `martingale_lanes.trade_ids` (TEXT in the seed DDL)."""
import json

from django.core.exceptions import ValidationError
from django.db import models


class JSONListTextField(models.TextField):
    description = "A list of strings stored as JSON text"

    def db_type(self, connection):
        # The seed DDL says TEXT; Django's TextField would be LONGTEXT on MySQL.
        return "text" if connection.vendor == "mysql" else super().db_type(connection)

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if value is None or isinstance(value, list):
            return value
        try:
            parsed = json.loads(value or "[]")
        except (TypeError, ValueError):
            raise ValidationError("trade_ids is not a JSON list") from None
        return [str(v) for v in parsed] if isinstance(parsed, list) else []

    def get_prep_value(self, value):
        if value is None:
            return None
        return json.dumps(list(value))

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
