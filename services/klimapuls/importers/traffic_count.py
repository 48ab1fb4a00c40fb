"""The `traffic-count` layout (`docs/import-traffic-count.md`).

Site, time, mode, count (+ municipality) -> `mobility_count.v1`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from klimapuls.importers.table import (
    ImportOptions,
    _Column,
    _Columns,
    _integer,
    _lookup,
    _municipality,
    _norm,
    _Row,
    _RowError,
    _timestamp,
)

# -- traffic-count ---------------------------------------------------------

_MODES = {
    _norm(k): v
    for k, v in {
        "bil": "car",
        "biler": "car",
        "car": "car",
        "cykel": "bike",
        "cykler": "bike",
        "bike": "bike",
        "bicycle": "bike",
        "bus": "bus",
        "tog": "train",
        "train": "train",
        "s-tog": "train",
        "metro": "metro",
        "gang": "walk",
        "fodgænger": "walk",
        "fodgængere": "walk",
        "walk": "walk",
    }.items()
}
_SITE_KINDS = {"car": "road_counter", "bike": "bike_counter"}

_TRAFFIC_COLUMNS = (
    _Column("site", ("tællested", "taellested", "site_id", "station")),
    _Column("kommune", ("kommunekode", "municipality", "municipality_code"), False),
    _Column("time", ("tid", "tidspunkt", "interval_start", "start")),
    _Column("mode", ("transportmiddel", "trafikart", "type")),
    _Column("count", ("antal", "passager", "passages")),
    _Column("direction", ("retning",), required=False),
    _Column("minutes", ("minutter", "interval_minutes", "varighed"), False),
    _Column("revision", ("rettelse",), required=False),
)


def _traffic_row(
    columns: _Columns, row: _Row, options: ImportOptions
) -> tuple[dict[str, Any], dict[str, str]]:
    site = columns.need(row, "site")
    town = columns.get(row, "kommune")
    if town:
        code = _municipality(town, columns.header("kommune"))
    elif site in options.sites:
        code = options.sites[site]
    else:
        raise _RowError(
            columns.header("kommune"),
            f"is empty, and site {site!r} is not in the --sites file",
        )
    start = _timestamp(columns.need(row, "time"), columns.header("time"))
    minutes_text = columns.get(row, "minutes")
    minutes = _integer(minutes_text, columns.header("minutes")) if minutes_text else 60
    if minutes <= 0:
        raise _RowError(columns.header("minutes"), "must be more than 0")
    mode = _lookup(
        columns.need(row, "mode"), _MODES, columns.header("mode"), "transport mode"
    )
    event: dict[str, Any] = {
        "site_id": site,
        "municipality_code": code,
        "mode": mode,
        "direction": columns.get(row, "direction") or "both",
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(minutes=minutes)).isoformat(),
        "count": _integer(columns.need(row, "count"), columns.header("count")),
    }
    if mode in _SITE_KINDS:
        event["site_kind"] = _SITE_KINDS[mode]
    revision = columns.get(row, "revision")
    if revision:
        event["revision"] = _integer(revision, columns.header("revision"))
    fields = {
        "site_id": columns.header("site"),
        "municipality_code": columns.header("kommune"),
        "mode": columns.header("mode"),
        "direction": columns.header("direction"),
        "interval_start": columns.header("time"),
        "interval_end": columns.header("minutes"),
        "count": columns.header("count"),
        "revision": columns.header("revision"),
    }
    return event, fields
