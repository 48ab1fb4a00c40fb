"""The login of Grafana's read-only database role (`klimapuls_grafana`).

Migration 0017 creates the role without login and lets it read only the
`board` views. `set_reader_password` gives it a login: the password is
turned into a SCRAM-SHA-256 digest by libpq on this side, so only the digest
reaches the server (and its logs); nothing is written to a file.
"""

from __future__ import annotations

from typing import cast

import psycopg
from sqlalchemy import Engine

__all__ = ["READER_ROLE", "set_reader_password"]

READER_ROLE = "klimapuls_grafana"


def set_reader_password(engine: Engine, password: str) -> None:
    """Let `klimapuls_grafana` log in with `password` (stored as a SCRAM digest)."""
    raw = engine.raw_connection()
    try:
        conn = cast(psycopg.Connection[object], raw.driver_connection)
        digest = conn.pgconn.encrypt_password(
            password.encode(), READER_ROLE.encode(), b"scram-sha-256"
        )
        with conn.cursor() as cur:
            cur.execute(
                psycopg.sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(READER_ROLE),
                    psycopg.sql.Literal(digest.decode()),
                )
            )
        conn.commit()
    finally:
        raw.close()
