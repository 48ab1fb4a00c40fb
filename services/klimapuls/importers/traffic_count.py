"""The `traffic-count` layout (`docs/import-traffic-count.md`).

Site, time, mode, count (+ municipality) -> `mobility_count.v1`.

Times without an offset are Danish local time. Two local times need a rule:
the repeated autumn hour (02:00-02:59 on the last Sunday of October happens
twice) is read by an `offset` cell (`+02:00`/`CEST`/`sommertid` or
`+01:00`/`CET`/`vintertid`) when there is one, else in file order: the
first row of a site, mode and direction at that time is the first (summer
time) hour, a second such row the repeated (winter time) hour, a third is an
error. A time in the skipped spring hour does not exist and is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from klimapuls.importers.table import (
    COPENHAGEN,
    ImportOptions,
    _Column,
    _Columns,
    _integer,
    _lookup,
    _municipality,
    _norm,
    _Row,
    _RowError,
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
    _Column("offset", ("utc offset", "utc_offset", "tidszone", "zone"), False),
)

_SUMMER = timezone(timedelta(hours=2))
_WINTER = timezone(timedelta(hours=1))
_OFFSETS = {
    _norm(k): v
    for k, v in {
        "+02:00": _SUMMER,
        "+0200": _SUMMER,
        "+2": _SUMMER,
        "cest": _SUMMER,
        "sommertid": _SUMMER,
        "summer": _SUMMER,
        "+01:00": _WINTER,
        "+0100": _WINTER,
        "+1": _WINTER,
        "cet": _WINTER,
        "vintertid": _WINTER,
        "winter": _WINTER,
    }.items()
}
#: A count's slot in the file: site, mode, direction and its naive local time.
_LocalKey = tuple[str, str, str, datetime]


def _naive(text: str, column: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise _RowError(
            column, f"{text!r} is not a time (e.g. 2025-06-02 07:00)"
        ) from None


def _readings(local: datetime) -> list[datetime]:
    """The instants a naive Danish local time can mean: none, one or two."""
    found: list[datetime] = []
    for fold in (0, 1):
        moment = local.replace(tzinfo=COPENHAGEN, fold=fold)
        back = moment.astimezone(UTC).astimezone(COPENHAGEN).replace(tzinfo=None)
        if back == local and all(m.utcoffset() != moment.utcoffset() for m in found):
            found.append(moment)
    return found


class _TrafficRows:
    """Converts rows one by one, remembering the repeated hours already read."""

    def __init__(self) -> None:
        self._seen: set[tuple[_LocalKey, int]] = set()

    def _moment(
        self, columns: _Columns, row: _Row, key: tuple[str, str, str]
    ) -> datetime:
        column = columns.header("time")
        local = _naive(columns.need(row, "time"), column)
        if local.tzinfo is not None:
            return local
        readings = _readings(local)
        if not readings:
            raise _RowError(
                column,
                f"{local:%Y-%m-%d %H:%M} does not exist in Danish time (the "
                "clocks skip that hour in spring); give the time with an offset",
            )
        offset_text = columns.get(row, "offset")
        if offset_text:
            return self._with_offset(columns, local, readings, offset_text)
        if len(readings) == 1:
            return readings[0]
        slot = (*key, local)
        for fold, moment in enumerate(readings):
            if (slot, fold) not in self._seen:
                self._seen.add((slot, fold))
                return moment
        raise _RowError(
            column,
            f"{local:%Y-%m-%d %H:%M} is the repeated autumn hour and this site, "
            "mode and direction has it twice already; give an offset column",
        )

    @staticmethod
    def _with_offset(
        columns: _Columns, local: datetime, readings: list[datetime], text: str
    ) -> datetime:
        wanted = _OFFSETS.get(_norm(text))
        for moment in readings:
            if wanted is not None and moment.utcoffset() == wanted.utcoffset(None):
                return moment
        raise _RowError(
            columns.header("offset"),
            f"{text!r} is not an offset of {local:%Y-%m-%d %H:%M} in Danish time "
            "(+01:00 = CET = vintertid, +02:00 = CEST = sommertid)",
        )

    def __call__(
        self, columns: _Columns, row: _Row, options: ImportOptions
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One row -> a `mobility_count.v1` event and its columns."""
        return _traffic_row(columns, row, options, self)


def _traffic_rows() -> _TrafficRows:
    """A converter for one file (it remembers the file's repeated hours)."""
    return _TrafficRows()


def _traffic_row(
    columns: _Columns, row: _Row, options: ImportOptions, reader: _TrafficRows
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
    minutes_text = columns.get(row, "minutes")
    minutes = _integer(minutes_text, columns.header("minutes")) if minutes_text else 60
    if minutes <= 0:
        raise _RowError(columns.header("minutes"), "must be more than 0")
    mode = _lookup(
        columns.need(row, "mode"), _MODES, columns.header("mode"), "transport mode"
    )
    direction = columns.get(row, "direction") or "both"
    start = reader._moment(columns, row, (site, mode, direction))
    # Elapsed time, not wall-clock time: an hour across a clock change is
    # still 60 minutes.
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)
    event: dict[str, Any] = {
        "site_id": site,
        "municipality_code": code,
        "mode": mode,
        "direction": direction,
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
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
    if columns.get(row, "offset"):
        fields["interval_start"] = columns.header("offset")
    return event, fields
