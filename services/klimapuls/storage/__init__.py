"""The shared store: SQLAlchemy models, Alembic migrations and repositories."""

from klimapuls.storage.db import create_db_engine, migrate
from klimapuls.storage.initiatives_repository import seed_initiative_reference
from klimapuls.storage.seed import seed_reference_data

__all__ = ["create_db_engine", "migrate", "prepare_database", "seed_reference_data"]


def prepare_database(url: str) -> None:
    """Migrate the schema to head and load the seed data (both idempotent)."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
        seed_reference_data(engine)
        seed_initiative_reference(engine)
    finally:
        engine.dispose()
