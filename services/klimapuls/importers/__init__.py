"""CSV files municipalities hold -> Klimapuls events (pure; no Kafka here).

Four layouts, each documented in `docs/import-<kind>.md`:

- `co2-account`: an Energi- og CO2-regnskabet export, one row per
  municipality, year, sector (and subsector) -> `co2_account.v1`;
- `traffic-count`: site, time, mode, count (+ municipality) ->
  `mobility_count.v1`;
- `fleet-list`: one row per bus with its propulsion -> `fleet_status.v1`
  per operator, contract/garage and date (counts by propulsion);
- `vip-status`: the VIP status table -> `initiative_status.v1` per
  initiative and round; empty cells are skipped (missing is derived).

Files may use `,` or `;` between cells (Danish spreadsheets export `;`);
headers match case-insensitively, in Danish or English. A number with a
decimal comma is read the Danish way (`1.234,5` = 1234.5). Every problem is
an `ImportIssue` naming the file row (the header is row 1) and the column;
the converted events are validated against their schema here too, and a
schema issue is reported at the row and column the field came from.
"""

from __future__ import annotations

from collections.abc import Iterator

from klimapuls.importers.co2_account import _CO2_COLUMNS, _co2_row
from klimapuls.importers.fleet_list import _FLEET_COLUMNS, _fleet
from klimapuls.importers.table import (
    Envelope,
    ImportedEvent,
    ImportIssue,
    ImportOptions,
    _Columns,
    _per_row,
    _read,
    _validated,
)
from klimapuls.importers.traffic_count import _TRAFFIC_COLUMNS, _traffic_rows
from klimapuls.importers.vip_status import _VIP_COLUMNS, _round_of, _vip

__all__ = [
    "IMPORT_KINDS",
    "ImportIssue",
    "ImportOptions",
    "ImportedEvent",
    "convert",
]

#: Import layouts and the event family each produces.
IMPORT_KINDS: dict[str, str] = {
    "co2-account": "co2_account",
    "traffic-count": "mobility_count",
    "fleet-list": "fleet_status",
    "vip-status": "initiative_status",
}


def convert(
    import_kind: str,
    text: str,
    envelope: Envelope,
    options: ImportOptions | None = None,
) -> Iterator[ImportedEvent]:
    """Convert a file's text; yields each event (validated) or its issues.

    `envelope(kind, event)` fills `schema`, `event_id`, `producer` and
    `reported_at` (the producer's `complete_envelope`). A header problem (a
    required column missing) is one issue at row 1 and nothing else.
    """
    if import_kind not in IMPORT_KINDS:
        raise ValueError(
            f"unknown import kind {import_kind!r}; one of {', '.join(IMPORT_KINDS)}"
        )
    options = options or ImportOptions()
    kind = IMPORT_KINDS[import_kind]
    header, rows = _read(text)
    wanted = {
        "co2-account": _CO2_COLUMNS,
        "traffic-count": _TRAFFIC_COLUMNS,
        "fleet-list": _FLEET_COLUMNS,
        "vip-status": _VIP_COLUMNS,
    }[import_kind]
    columns = _Columns(header, wanted)
    if import_kind == "vip-status" and not any(_round_of(h) for h in header):
        columns.issues.append(
            ImportIssue(
                1, "status_<month>_<year>", "no status column (e.g. status_oct_2023)"
            )
        )
    if columns.issues:
        yield ImportedEvent(kind, (1,), ",".join(header), None, tuple(columns.issues))
        return
    items: Iterator[ImportedEvent]
    if import_kind == "co2-account":
        items = _per_row(kind, columns, rows, options, _co2_row)
    elif import_kind == "traffic-count":
        items = _per_row(kind, columns, rows, options, _traffic_rows())
    elif import_kind == "fleet-list":
        items = _fleet(columns, rows, options, kind)
    else:
        items = _vip(header, columns, rows, kind)
    for item in items:
        yield _validated(item, envelope)
