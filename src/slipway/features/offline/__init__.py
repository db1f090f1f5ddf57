"""The offline store: full history per feature group in Delta Lake, queried with DuckDB."""
