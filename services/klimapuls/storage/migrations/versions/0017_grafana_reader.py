"""Grafana's read-only role, and the columns its alert rules and panels read.

`klimapuls_grafana` may use the `board` schema and select from its views,
nothing else. The role is created without login; `klimapuls db upgrade`
gives it a login with the password in `GRAFANA_DB_PASSWORD` when that is set
(`klimapuls.storage.grafana_reader`), sent to the server only as a SCRAM
digest. Roles belong to the cluster, so creating it is idempotent.

`board.status_changes` gains what the operations board and the Grafana alert
rules need: what changed, the indicator, goal and forecast figures, the
scope's name. `board.dead_letters_by_producer` gains `alert_producer`, the
producer as the alert service names it (`klimapuls.core.alerting.producer_of`:
the payload's `producer` string, else `ukendt`).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "klimapuls_grafana"

_STATUS_CHANGES = """
SELECT c.id, c.changed_at, c.target_id, c.version, c.name, c.scope,
    c.previous_status, c.status, c.previous_stale, c.stale, c.latest_year,
    c.latest_value, c.gap_to_path, c.forecast_value, c.published_at,
    c.indicator, c.unit, c.target_year, c.target_value, c.path_value,
    c.previous_forecast_value, c.required_annual_reduction,
    s.name AS scope_name,
    CASE WHEN c.previous_status IS DISTINCT FROM c.status THEN 'status'
         WHEN c.previous_stale IS DISTINCT FROM c.stale THEN 'stale'
         ELSE 'forecast' END AS what_changed
FROM target_status_change c LEFT JOIN scope s ON s.code = c.scope
"""

_STATUS_CHANGES_0008 = """
SELECT id, changed_at, target_id, version, name, scope, previous_status,
    status, previous_stale, stale, latest_year, latest_value,
    gap_to_path, forecast_value, published_at
FROM target_status_change
"""

# Nested CASEs: PostgreSQL does not promise to evaluate AND left to right.
_ALERT_PRODUCER = """
    coalesce(
        CASE WHEN d.payload_encoding = 'utf-8'
              AND pg_input_is_valid(d.payload, 'json') THEN
            CASE WHEN json_typeof(d.payload::json) = 'object' THEN
                CASE WHEN json_typeof(d.payload::json -> 'producer') = 'string'
                    THEN nullif(d.payload::json ->> 'producer', '') END
            END
        END,
        'ukendt'
    )
"""

_PRODUCER_0012 = """
    coalesce(
        CASE WHEN d.payload_encoding = 'utf-8'
              AND left(ltrim(d.payload), 1) = '{'
              AND pg_input_is_valid(d.payload, 'json')
            THEN (d.payload::json ->> 'producer') END,
        split_part(d.origin, ':', 1)
    )
"""


def _dead_letters(extra: str) -> str:
    return f"""
SELECT d.dead_letter_id, d.rejected_at, d.received_at, d.kind, d.origin,
    {_PRODUCER_0012} AS producer,
    d.field, left(d.reason, 120) AS reason, d.rejected_by{extra}
FROM dead_letter d
"""


def upgrade() -> None:
    op.execute(f"CREATE OR REPLACE VIEW board.status_changes AS {_STATUS_CHANGES}")
    op.execute(
        "CREATE OR REPLACE VIEW board.dead_letters_by_producer AS "
        + _dead_letters(f",\n    {_ALERT_PRODUCER} AS alert_producer")
    )
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA board TO {ROLE}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA board TO {ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA board GRANT SELECT ON TABLES TO {ROLE}"
    )


def downgrade() -> None:
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA board REVOKE SELECT ON TABLES FROM {ROLE}"
    )
    op.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA board FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA board FROM {ROLE}")
    op.execute("DROP VIEW board.dead_letters_by_producer")
    op.execute("CREATE VIEW board.dead_letters_by_producer AS " + _dead_letters(""))
    op.execute("DROP VIEW board.status_changes")
    op.execute(f"CREATE VIEW board.status_changes AS {_STATUS_CHANGES_0008}")
