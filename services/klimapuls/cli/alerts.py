"""`klimapuls alerts` and `klimapuls contacts`: what fires, for whom; who hears.

- `alerts [list] [--all] [--json]`: open alerts from DATABASE_URL (what
  fires now, for whom, since when); `alerts ack ID [--by NAME]`: acknowledge
  (the CLI writes `alert_acknowledgement`; the alerts service moves the alert
  on and stops its escalation).
- `alerts --offline FILE... [--json] [--as-of DATE] [--contacts FILE]`: the
  same rules on event files without servers (`klimapuls.core.alert_offline`),
  each alert with its recipients, to dry-run a rule change.
- `contacts add/list/remove/import`: the contacts in the database (the CLI
  is the one writer of `alert_contact`).

Exit codes: 0 fine; 1 invalid input lines (offline), a bad contact file, or
database trouble; 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from klimapuls.cli.common import command_settings, offline_lines, plural
from klimapuls.core.alert_offline import OfflineAlerts, alert_json
from klimapuls.core.alert_state import Alert, Contact, contact, parse_contacts
from klimapuls.core.alerting import CONTACT_TOPICS, AlertRules, producer_of
from klimapuls.core.errors import KlimapulsError
from klimapuls.core.identity import Verdict
from klimapuls.importers.table import FileEncodingError
from klimapuls.storage import alerts as alert_store
from klimapuls.storage import contacts as contact_store
from klimapuls.storage.db import create_db_engine, in_transaction

__all__ = [
    "database_alerts",
    "load_contact_file",
    "offline_alerts",
    "register",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _yaml_text(path: Path) -> str:
    """A YAML file's text: UTF-8 only; binary or other bytes are named."""
    data = path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise FileEncodingError(
            f"{path}: line {line}: binary data (byte 0x00): this is not a text file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileEncodingError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02X} is not UTF-8 "
            "(a contacts file must be UTF-8; save it as UTF-8)"
        ) from None


def load_contact_file(path: Path) -> list[Contact]:
    """Contacts from a YAML file; a `ContactError` names the bad field."""
    try:
        data = yaml.safe_load(_yaml_text(path))
    except (OSError, yaml.YAMLError) as exc:
        raise KlimapulsError(f"{path}: cannot read contacts: {exc}") from None
    try:
        return parse_contacts(data)
    except KlimapulsError as exc:
        raise KlimapulsError(f"{path}: {exc}") from None


def offline_alerts(
    files: Sequence[Path], now: datetime, rules: AlertRules
) -> tuple[OfflineAlerts, list[str]]:
    """Fold every file as one delivery and evaluate; (result, skipped lines)."""
    offline = OfflineAlerts(rules, now)
    issues: list[str] = []
    for path in files:
        for line in offline_lines(path):
            error = line.error
            verdict = None
            if error is None and line.kind is not None and line.event is not None:
                judgement = offline.fold.judge(line.kind, line.event)
                verdict = judgement.verdict
                if verdict is Verdict.REJECTED:
                    error = judgement.error
            offline.count(producer_of(line.raw), verdict)
            if error is not None:
                issues.extend(
                    f"{path}:{line.number}: {i.field}: {i.reason}" for i in error.issues
                )
        offline.delivered()
    return offline, issues


def database_alerts(
    engine: Engine, everything: bool = False, people: Sequence[Contact] | None = None
) -> list[dict[str, Any]]:
    """Alerts from the database in the `alerts --json` shape, with who heard."""

    def work(conn: Any) -> list[dict[str, Any]]:
        found = alert_store.alert_rows(conn, everything)
        known = contact_store.contacts(conn) if people is None else list(people)
        heard = alert_store.deliveries_of(
            conn, [a.alert_id for a in found if a.alert_id is not None]
        )
        rows = []
        for a in found:
            row = alert_json(a, known)
            row["notified"] = heard.get(a.alert_id or 0, [])
            row["acknowledged_by"] = a.acknowledged_by
            rows.append(row)
        return rows

    return in_transaction(engine, work)


_STATE_STYLE = {"firing": "bold red", "pending": "yellow", "acknowledged": "cyan"}


def _table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=escape(title), title_justify="left")
    for name in ("id", "state", "alert", "since", "for whom"):
        table.add_column(name)
    for r in rows:
        state = r["state"]
        if r["inhibited_by"]:
            state += f"\nheld back by\n{r['inhibited_by']}"
        who = [f"{c['name']} <{c['address']}>" for c in r["recipients"]]
        who = who or [
            f"nobody: no contact for {', '.join(r['parties'])} ({r['topic']})"
        ]
        # A message refused for good is shown with its reason.
        who += [n for n in r.get("notified", ()) if ", failed: " in n]
        table.add_row(
            str(r["alert_id"] or "—"),
            f"[{_STATE_STYLE.get(r['state'], '')}]{escape(state)}[/]",
            escape(f"{r['title']}\n{r['key']} ({r['severity']})"),
            r["since"][:16].replace("T", " "),
            escape("\n".join(who)),
        )
    return table


def _print(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(_table(rows, title))
    console.print(f"{len(rows)} alerts", highlight=False)


def _engine() -> Engine:
    return create_db_engine(command_settings().require_database_url())


def _find_alert(engine: Engine, ident: str) -> Alert:
    def work(conn: Any) -> Alert | None:
        for a in alert_store.alert_rows(conn, everything=True):
            if str(a.alert_id) == ident or a.key == ident:
                return a
        return None

    found = in_transaction(engine, work)
    if found is None:
        raise KlimapulsError(f"no alert {ident!r} (see `klimapuls alerts list --all`)")
    return found


def run_ack(engine: Engine, ident: str, by: str, note: str | None) -> str:
    """Acknowledge an alert by id or key; returns what was done."""
    alert = _find_alert(engine, ident)
    if alert.state != "firing":
        raise KlimapulsError(
            f"alert {alert.alert_id} is {alert.state}: only a firing alert can be "
            "acknowledged"
        )
    alert_id = alert.alert_id or 0
    in_transaction(
        engine,
        lambda conn: contact_store.acknowledge(
            conn, alert_id, by, datetime.now(UTC), note
        ),
    )
    return (
        f"acknowledged alert {alert.alert_id} ({alert.key}); the alerts service "
        "stops its escalation"
    )


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint="--as-of"
        ) from None


def _run_offline(
    files: Sequence[Path], as_of: date | None, people: Path | None, as_json: bool
) -> int:
    from klimapuls.cli import err_console

    for path in files:
        if not path.is_file():
            raise typer.BadParameter(
                f"{path} is not a readable file", param_hint="FILE"
            )
    known = load_contact_file(people) if people is not None else []
    now = (
        datetime.combine(as_of, time(12), tzinfo=UTC)
        if as_of is not None
        else datetime.now(UTC)
    )
    rules = command_settings(quiet=True, discover=False).alert_rules()
    result, issues = offline_alerts(files, now, rules)
    for issue in issues:
        err_console.print(
            issue, markup=False, emoji=False, highlight=False, soft_wrap=True
        )
    rows = [alert_json(a, known) for a in result.alerts()]
    _print(
        rows,
        as_json,
        f"Alerts as of {now.date()} (offline, {plural(len(files), 'file')})",
    )
    return EXIT_INVALID if issues else EXIT_OK


def register(app: typer.Typer) -> None:
    """Add `klimapuls alerts` and `klimapuls contacts`."""

    @app.command(no_args_is_help=False)
    def alerts(
        args: Annotated[
            list[str] | None,
            typer.Argument(
                help="`list` (default), `ack ID`, or with --offline: JSONL files.",
                show_default=False,
            ),
        ] = None,
        offline: Annotated[
            bool,
            typer.Option("--offline", help="Run the rules on FILE... (no servers)."),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        as_of: Annotated[
            str | None,
            typer.Option(
                "--as-of", metavar="DATE", help="Offline: evaluate on this date."
            ),
        ] = None,
        contacts: Annotated[
            Path | None,
            typer.Option(
                "--contacts", metavar="FILE", help="Offline: contacts (YAML)."
            ),
        ] = None,
        everything: Annotated[
            bool, typer.Option("--all", help="list: also resolved and cleared.")
        ] = False,
        by: Annotated[
            str, typer.Option("--by", help="ack: who acknowledges.")
        ] = "klimapuls-cli",
        note: Annotated[str | None, typer.Option("--note", help="ack: a note.")] = None,
    ) -> None:
        """What fires now, for whom, since when; acknowledge; or dry-run offline.

        `klimapuls alerts list`, `klimapuls alerts ack ID`, and
        `klimapuls alerts --offline FILE... --json [--as-of DATE] [--contacts
        FILE]` (each file is one delivery; the hold time is taken as passed).
        """
        from klimapuls.cli import console

        words = list(args or [])
        day = _day(as_of)
        if offline:
            if not words:
                raise typer.BadParameter(
                    "give at least one JSONL file", param_hint="FILE"
                )
            raise typer.Exit(
                _run_offline([Path(w) for w in words], day, contacts, as_json)
            )
        action = words[0] if words else "list"
        if action == "list" and len(words) <= 1:
            engine = _engine()
            try:
                rows = database_alerts(engine, everything)
            finally:
                engine.dispose()
            _print(rows, as_json, "Alerts (database)")
            return
        if action == "ack" and len(words) == 2:
            engine = _engine()
            try:
                console.print(run_ack(engine, words[1], by, note), markup=False)
            finally:
                engine.dispose()
            return
        raise typer.BadParameter(
            "use `alerts list`, `alerts ack ID` or `alerts --offline FILE...`",
            param_hint="ARGS",
        )

    contacts_app = typer.Typer(
        help="Who hears of alerts: contacts per party and topic.", no_args_is_help=True
    )
    app.add_typer(contacts_app, name="contacts")

    @contacts_app.command("add")
    def contacts_add(
        name: Annotated[str, typer.Argument(help="Who (a person or a team).")],
        party: Annotated[
            str,
            typer.Option(
                help="Municipality (name or code), 'Region Hovedstaden' or "
                "'Klimaalliancen'."
            ),
        ],
        topic: Annotated[
            list[str],
            typer.Option(help=f"Topic(s): {', '.join(CONTACT_TOPICS)}."),
        ],
        email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
        webhook: Annotated[str | None, typer.Option(help="Webhook URL.")] = None,
    ) -> None:
        """Add a contact (one per topic and channel given)."""
        from klimapuls.cli import console

        channels = [("email", email), ("webhook", webhook)]
        if email is None and webhook is None:
            raise typer.BadParameter("give --email or --webhook")
        people = [
            contact(name, party, t, channel, address)
            for t in topic
            for channel, address in channels
            if address is not None
        ]
        engine = _engine()
        try:
            added = in_transaction(
                engine, lambda conn: contact_store.add_contacts(conn, people)
            )
        finally:
            engine.dispose()
        console.print(f"{added} contacts added ({len(people) - added} known already)")

    @contacts_app.command("list")
    def contacts_list(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List every contact."""
        engine = _engine()
        try:
            people = in_transaction(engine, contact_store.contacts)
        finally:
            engine.dispose()
        if as_json:
            out = [{"id": c.contact_id, **c.as_json()} for c in people]
            sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
            return
        table = Table(title="Contacts", title_justify="left")
        for column in ("id", "name", "party", "topic", "channel", "address"):
            table.add_column(column)
        for c in people:
            table.add_row(
                str(c.contact_id),
                *(escape(v) for v in (c.name, c.party, c.topic, c.channel, c.address)),
            )
        (Console() if sys.stdout.isatty() else Console(width=160)).print(table)

    @contacts_app.command("remove")
    def contacts_remove(
        which: Annotated[str, typer.Argument(help="A contact id, or an address.")],
    ) -> None:
        """Remove a contact by id, or every contact with an address."""
        from klimapuls.cli import console

        contact_id = int(which) if which.isdigit() else None
        address = None if contact_id is not None else which
        engine = _engine()
        try:
            removed = in_transaction(
                engine,
                lambda conn: contact_store.remove_contacts(conn, contact_id, address),
            )
        finally:
            engine.dispose()
        if not removed:
            raise KlimapulsError(
                f"no contact {which!r} (see `klimapuls contacts list`)"
            )
        console.print(f"{removed} contacts removed")

    @contacts_app.command("import")
    def contacts_import(
        file: Annotated[Path, typer.Argument(help="A YAML file with `contacts:`.")],
    ) -> None:
        """Add the contacts of a YAML file (known ones are kept as they are)."""
        from klimapuls.cli import console

        if not file.is_file():
            raise typer.BadParameter(
                f"{file} is not a readable file", param_hint="FILE"
            )
        people = load_contact_file(file)
        engine = _engine()
        try:
            added = in_transaction(
                engine, lambda conn: contact_store.add_contacts(conn, people)
            )
        finally:
            engine.dispose()
        console.print(f"{added} contacts added from {file} ({len(people)} in the file)")
