"""The `vip-status` layout (`docs/import-vip-status.md`).

The VIP status table -> `initiative_status.v1` per initiative and round;
empty cells are skipped (missing is derived). A row's `tovholdere` and
`tovholder fra` cells say who holds the initiative *now*: they go with the
row's newest reported round only, and older rounds' reports leave them out
(the set stays as reported then), so a later table with more rounds adds
hand-overs instead of moving older ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from klimapuls.core.initiatives import PROGRAMME_INFRASTRUCTURE, initiative_id
from klimapuls.importers.table import (
    ImportedEvent,
    ImportIssue,
    _checked,
    _Column,
    _Columns,
    _date,
    _lookup,
    _norm,
    _number,
    _Row,
    _RowError,
)

# -- vip-status ------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "januar", "january"),
            ("feb", "februar", "february"),
            ("mar", "marts", "march"),
            ("apr", "april"),
            ("maj", "may"),
            ("jun", "juni", "june"),
            ("jul", "juli", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("okt", "oct", "oktober", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_STATUS = {
    _norm(k): v
    for k, v in {
        "modtaget": "received",
        "received": "received",
        "ja": "confirmed",
        "bekræftet": "confirmed",
        "confirmed": "confirmed",
        "på sporet": "on_track",
        "i gang": "on_track",
        "on track": "on_track",
        "forsinket": "delayed",
        "delayed": "delayed",
        "stoppet": "stopped",
        "stopped": "stopped",
        "afsluttet": "completed",
        "gennemført": "completed",
        "completed": "completed",
        "ikke startet": "not_started",
        "not started": "not_started",
    }.items()
}
_MISSING_CELLS = {"", "-", "mangler", "missing"}

_VIP_COLUMNS = (
    _Column("project", ("projekt", "initiativ", "initiative")),
    _Column("group", ("gruppe",), required=False),
    _Column("tovholdere", ("tovholder",)),
    _Column("estimate_dkk_m", ("overslag", "overslag mio kr", "estimate"), False),
    _Column("note", ("bemærkning", "note"), required=False),
    _Column("effective_date", ("tovholder fra", "tovholdere fra"), required=False),
)


def _round_of(header: str) -> str | None:
    """`status_oct_2022` / `status okt 2022` / `status_2022-10` -> `2022-10`."""
    name = _norm(header)
    if not name.startswith("status "):
        return None
    rest = name.removeprefix("status ").split()
    if len(rest) == 2 and rest[0] in _MONTHS and rest[1].isdigit():
        return f"{int(rest[1]):04d}-{_MONTHS[rest[0]]:02d}"
    if len(rest) == 2 and rest[0].isdigit() and rest[1].isdigit():
        return f"{int(rest[0]):04d}-{int(rest[1]):02d}"
    return None


def _vip(
    header: Sequence[str],
    columns: _Columns,
    rows: Iterator[_Row],
    kind: str,
) -> Iterator[ImportedEvent]:
    rounds = {h: r for h in header if (r := _round_of(h)) is not None}
    for row in rows:
        try:
            row.check()
            name = columns.need(row, "project")
            try:
                ident = initiative_id(name)
            except ValueError as exc:
                raise _RowError(columns.header("project"), str(exc)) from None
            tovholdere = [
                t.strip()
                for t in columns.get(row, "tovholdere").split(";")
                if t.strip()
            ]
            estimate_text = columns.get(row, "estimate_dkk_m")
            estimate = (
                _number(estimate_text, columns.header("estimate_dkk_m"))
                if estimate_text
                else None
            )
            effective_text = columns.get(row, "effective_date")
            effective = (
                _date(effective_text, columns.header("effective_date"))
                if effective_text
                else None
            )
        except _RowError as exc:
            issue = ImportIssue(row.number, exc.column, exc.reason)
            yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
            continue
        reported = [
            round_
            for column, round_ in rounds.items()
            if _norm(row.cells.get(column, "")) not in _MISSING_CELLS
        ]
        newest = max(reported, default=None)
        for column, round_ in rounds.items():
            cell = row.cells.get(column, "")
            if _norm(cell) in _MISSING_CELLS:
                continue  # a missing report is derived, never sent
            try:
                status = _lookup(cell, _STATUS, column, "status")
            except _RowError as exc:
                issue = ImportIssue(row.number, exc.column, exc.reason)
                yield ImportedEvent(kind, (row.number,), row.raw, None, (issue,))
                continue
            event: dict[str, Any] = {
                "initiative_id": ident,
                "initiative_name": name,
                "programme": PROGRAMME_INFRASTRUCTURE,
                "round": round_,
                "status": status,
            }
            if round_ == newest:
                # Who holds it now: not who held it in an older round.
                event["tovholdere"] = tovholdere
            group = columns.get(row, "group")
            if group:
                event["group"] = group
            if estimate is not None:
                event["estimate_dkk_m"] = estimate
            note = columns.get(row, "note")
            if note:
                event["note"] = note
            if effective is not None and round_ == newest:
                event["effective_date"] = effective.isoformat()
            fields = {
                "initiative_id": columns.header("project"),
                "initiative_name": columns.header("project"),
                "group": columns.header("group"),
                "round": column,
                "status": column,
                "tovholdere": columns.header("tovholdere"),
                "estimate_dkk_m": columns.header("estimate_dkk_m"),
                "note": columns.header("note"),
                "effective_date": columns.header("effective_date"),
            }
            yield _checked(kind, (row.number,), row.raw, event, fields)
