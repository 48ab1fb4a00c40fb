"""The fleet tables: the migration matches the models, views mirror the core."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from klimapuls.storage.models_fleet import FleetBusRow, FleetShareRow, FleetStatusRow


def test_the_fleet_migration_creates_the_tables_of_the_models(engine: Engine) -> None:
    fleet = MetaData()
    for model in (FleetStatusRow, FleetShareRow, FleetBusRow):
        model.__table__.to_metadata(fleet)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name in fleet.tables
                ),
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, fleet) == []
