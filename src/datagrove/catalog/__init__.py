"""The metadata catalog: users, credentials and dataset metadata in SQLite or PostgreSQL.

Services use ``Catalog`` (repository.py) and the records it returns; only this package imports
SQLAlchemy. The schema is owned by Alembic migrations (migrations/).
"""
