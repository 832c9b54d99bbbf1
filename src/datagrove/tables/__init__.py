"""The table store: Iceberg tables of Parquet files, CSV ingest, and the sandboxed DuckDB query engine.

Services reach storage only through this package; nothing outside it imports pyiceberg or DuckDB.
"""
