"""The buses each fleet unit lists on a date (issue 13: counted once).

`fleet_bus` (owner: the fleet service) holds, for every operator, date and
bus id, the contract/garage whose newest report lists that bus (`contract`
and `garage` are '' where not given, as in `klimapuls.core.fleet.UnitKey`)
and that report's event id. The primary key lets a bus be listed under one
unit per operator and date only; the fleet service refuses a report listing
a bus another unit lists (`klimapuls.core.fleet.bus_clash_issue`) as a dead
letter. Reports stored so far carry no bus ids, so it starts empty.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLEET_BUS = """
CREATE TABLE fleet_bus (
    operator text NOT NULL,
    snapshot_date date NOT NULL,
    bus_id text NOT NULL,
    contract text NOT NULL,
    garage text NOT NULL,
    event_id text NOT NULL,
    CONSTRAINT pk_fleet_bus PRIMARY KEY (operator, snapshot_date, bus_id)
);
COMMENT ON TABLE fleet_bus IS
    'The unit (contract/garage) listing each bus on a date (owner: fleet)';
"""


def upgrade() -> None:
    op.execute(_FLEET_BUS)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS fleet_bus")
