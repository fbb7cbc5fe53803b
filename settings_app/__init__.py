"""Per-account trading settings (the `trading_settings` table), their validation and form."""
