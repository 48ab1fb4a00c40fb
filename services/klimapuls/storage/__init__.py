"""The store: SQLAlchemy models, Alembic migrations, storage by concern.

One module per concern, each naming the one service that writes its tables
(`accounts`: co2; `targets`, `progress`, `outbox`: targets; `fleet`: fleet;
`mobility`: mobility; `initiatives`: initiatives; `deadletters`:
deadletter; `grants`: the `klimapuls tokens` command and `db upgrade`;
`grafana_reader`: `db upgrade`).
`facts` only reads, for target progress; `events` is the identity-backed
insert they share; `seed` loads reference data through the owners'
functions. No application logic lives here: services orchestrate load
(storage) -> evaluate (core) -> write (storage).
"""

from klimapuls.storage.db import create_db_engine, in_transaction, migrate

__all__ = [
    "create_db_engine",
    "in_transaction",
    "migrate",
    "prepare_database",
]


def prepare_database(url: str, grafana_password: str | None = None) -> None:
    """Migrate the schema to head and load the seed data (both idempotent).

    With `grafana_password`, Grafana's read-only role may log in with it.
    """
    # Imported here, not with the package, which every service imports for
    # its own concern: the seeds' modules were ~0.1 s of each one's start.
    from klimapuls.storage.grafana_reader import set_reader_password
    from klimapuls.storage.grants import seed_builtin_grants
    from klimapuls.storage.initiatives import seed_initiative_reference
    from klimapuls.storage.seed import seed_reference_data

    engine = create_db_engine(url)
    try:
        migrate(engine)
        seed_reference_data(engine)
        seed_initiative_reference(engine)
        seed_builtin_grants(engine)
        if grafana_password:
            set_reader_password(engine, grafana_password)
    finally:
        engine.dispose()
