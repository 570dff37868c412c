"""The star-schema warehouse: its tables (schema) and how rows reach them (loading)."""
