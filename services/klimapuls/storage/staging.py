"""A batch staged once in the session, and the stored ids found from it.

The bulk writers (mobility counts, fleet snapshots) copy a batch by binary
COPY into a temporary table of their own and join it in every lookup: no
ids or keys go over as parameters, and the rows are converted once. The
table lives as long as the session (a pooled connection) and is emptied at
every commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from klimapuls.core.identity import Identity
from klimapuls.storage.db import copy_binary

__all__ = ["Staging"]

#: Binary COPY type names that PostgreSQL spells otherwise in a table.
_PG_TYPES = {"int4": "integer", "int8": "bigint", "float8": "double precision"}


@dataclass(frozen=True)
class Staging:
    """A session table `name` of `columns` ((name, binary COPY type) pairs).

    Its columns include `event_id` and `resend_id` (the id a re-send of the
    event would be stored under, `klimapuls.core.identity.resend_id`).
    """

    name: str
    columns: tuple[tuple[str, str], ...]

    def stage(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Replace the staged rows by `rows` (one binary COPY)."""
        columns = ", ".join(f"{n} {_PG_TYPES.get(t, t)}" for n, t in self.columns)
        conn.execute(
            text(
                f"CREATE TEMP TABLE IF NOT EXISTS {self.name} ({columns}) "
                "ON COMMIT DELETE ROWS"
            )
        )
        # Empty at every commit; a second batch in one transaction starts afresh.
        conn.execute(text(f"DELETE FROM {self.name}"))
        copy_binary(conn, self.name, self.columns, rows)

    def stored(self, conn: Connection, table: str, kind: str) -> list[Identity]:
        """The reports in `table` stored under the staged ids or their re-sends'.

        One index probe per staged id (`LATERAL ... LIMIT 1`: the planner
        cannot turn it into a filter of a whole partition by a list of ids,
        as it did while a new month's partition had no statistics). A
        re-send is stored only for a fact stored under its own id, so the
        re-send ids are looked up only when an event's own id is known (a
        replay): a batch of new facts probes each id once.
        """
        rows = list(conn.execute(text(self._probe(table, "event_id"))))
        if rows:
            rows += conn.execute(text(self._probe(table, "resend_id")))
        return [Identity((kind, eid), eid, digest) for eid, digest in rows]

    def _probe(self, table: str, column: str) -> str:
        return f"""
        SELECT f.event_id, f.payload_sha256
        FROM (SELECT DISTINCT {column} AS event_id FROM {self.name}) AS i
        CROSS JOIN LATERAL (
            SELECT event_id, payload_sha256 FROM {table} t
            WHERE t.event_id = i.event_id LIMIT 1
        ) AS f
        """
