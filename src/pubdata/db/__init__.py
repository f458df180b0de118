"""Metadata database: SQLAlchemy 2 models, created and upgraded by Alembic migrations only."""
