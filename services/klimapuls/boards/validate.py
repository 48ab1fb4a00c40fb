"""Checks of the boards and rules without a Grafana server.

Two kinds:

- **static rules** (`static_problems`): unique panel ids, every template
  variable used is declared, every datasource reference is the provisioned
  uid, every chart has a unit and an axis label, every panel says
  "syntetisk", panels read only `board.*` views, and the files under
  `grafana/` are what the code generates;
- **queries** (`run_queries`): every panel and alert query, with Grafana's
  macros expanded, against a database, returning the expected columns and
  at least one row;
- **Grafana's own schema** (`schema_problems`): each dashboard is checked
  as `Dashboard` from `@grafana/schema`, each alert rule as `Rule` from
  `@grafana/grafana-foundation-sdk`'s alerting types (the same build as the
  Python SDK that generates them), with TypeScript's compiler (`tsc`),
  installed from npm into a cache folder on first use.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from klimapuls.boards.alert_rules import alert_rules, provisioning_file, rule_payloads
from klimapuls.boards.catalogue import generated_files
from klimapuls.boards.macros import TimeRange, expand
from klimapuls.boards.panels import DATASOURCE_UID, SYNTHETIC_NOTE, Board, PanelQuery
from klimapuls.core.errors import ConfigurationError

__all__ = [
    "NPM_PACKAGES",
    "PENDING_VIEWS",
    "GrafanaFiles",
    "QueryCheck",
    "ensure_schema_tools",
    "foreign_relations",
    "load_files",
    "run_queries",
    "schema_problems",
    "static_problems",
]

#: Pinned so the check is repeatable; @grafana/schema 13.x is Grafana 13's
#: schema, the foundation SDK's TypeScript build matches the Python one.
NPM_PACKAGES = (
    "typescript@7.0.2",
    "@grafana/schema@13.2.3",
    "@grafana/grafana-foundation-sdk@11.6.0-cogv0.0.x.1769699379",
)
_CHARTS = frozenset({"timeseries", "barchart"})
_BUILTIN = re.compile(r"\$__\w+")
_VARIABLE = re.compile(r"\$\{?(\w+)")
# A relation after FROM/JOIN; `extract(epoch FROM now() ...)` is a call, not one.
_RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w.]*)\b(?!\s*\()", re.IGNORECASE)
_CTE = re.compile(r"\b(\w+)\s+AS\s*\(", re.IGNORECASE)
_SERVER_EXPRESSIONS = "__expr__"


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                yield str(value.get("uid"))
            else:
                yield from _datasource_uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_uids(item)


def foreign_relations(sql: str) -> list[str]:
    """Relations a query reads that are neither `board.*` views nor its CTEs."""
    ctes = {name.lower() for name in _CTE.findall(sql)}
    return [
        relation
        for relation in _RELATION.findall(sql)
        if not relation.startswith("board.") and relation.lower() not in ctes
    ]


def _panel_problems(board: Board, panel: dict[str, Any]) -> Iterator[str]:
    where = f"{board.uid} panel {panel.get('id')} ({panel.get('title')})"
    if panel.get("type") in _CHARTS:
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if not defaults.get("unit"):
            yield f"{where}: a chart without a unit"
        if not defaults.get("custom", {}).get("axisLabel"):
            yield f"{where}: a chart without an axis label"
    if SYNTHETIC_NOTE not in panel.get("description", ""):
        yield f"{where}: does not say that demo data are synthetic"
    declared = {v["name"] for v in board.json.get("templating", {}).get("list", [])}
    for target in panel.get("targets", []):
        sql = _BUILTIN.sub("", str(target.get("rawSql", "")))
        for name in sorted(set(_VARIABLE.findall(sql)) - declared):
            yield f"{where}: template variable ${name} is not declared"
        for relation in foreign_relations(str(target.get("rawSql", ""))):
            yield f"{where}: reads {relation}, not a board.* view"


def _board_problems(board: Board) -> Iterator[str]:
    ids = [panel.get("id") for panel in _panels(board.json)]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        yield f"{board.uid}: panel id {duplicate} is used twice"
    for uid in set(_datasource_uids(board.json)):
        if uid != DATASOURCE_UID:
            yield f"{board.uid}: datasource uid {uid!r} is not {DATASOURCE_UID!r}"
    if "syntetisk" not in board.json.get("description", ""):
        yield f"{board.uid}: the description does not say 'syntetisk'"
    for panel in _panels(board.json):
        yield from _panel_problems(board, panel)


def _rule_problems(payload: dict[str, Any]) -> Iterator[str]:
    where = f"alert rule {payload.get('uid')}"
    data = payload.get("data")
    if not isinstance(data, list) or not all(isinstance(q, dict) for q in data):
        yield f"{where}: has no queries (data)"
        return
    refs = {query.get("refId") for query in data}
    if payload.get("condition") not in refs:
        yield f"{where}: condition {payload.get('condition')} is not a query"
    for query in data:
        uid = query.get("datasourceUid")
        if uid not in (DATASOURCE_UID, _SERVER_EXPRESSIONS):
            yield f"{where}: datasource uid {uid!r} is not {DATASOURCE_UID!r}"
        sql = query.get("model", {}).get("rawSql")
        if sql is not None:
            for relation in foreign_relations(sql):
                yield f"{where}: reads {relation}, not a board.* view"


def static_problems(
    boards: Iterable[Board],
    grafana_dir: Path | None,
    rules: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Every static rule broken by `boards`, the rules and the files on disk.

    `rules` are alert rule payloads (default: the generated ones).
    """
    boards = list(boards)
    payloads = rule_payloads() if rules is None else rules
    problems = [p for board in boards for p in _board_problems(board)]
    uids = [board.uid for board in boards]
    problems += [f"board uid {u} is used twice" for u in set(uids) if uids.count(u) > 1]
    rule_uids = [payload.get("uid") for payload in payloads]
    problems += [
        f"alert rule uid {u} is used twice"
        for u in set(rule_uids)
        if rule_uids.count(u) > 1
    ]
    problems += [p for payload in payloads for p in _rule_problems(payload)]
    if grafana_dir is not None:
        for name, text in generated_files().items():
            path = grafana_dir / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                problems.append(
                    f"grafana/{name} is not what the code generates: run "
                    "`klimapuls grafana generate`"
                )
    return problems


@dataclass(frozen=True)
class GrafanaFiles:
    """Boards and alert rule files read from a folder or one file.

    `problems` are the files that could not be read (one line each).
    """

    boards: list[Board]
    rule_files: list[dict[str, Any]]
    problems: list[str]

    @property
    def rules(self) -> list[dict[str, Any]]:
        """Every alert rule of every rule file."""
        return [
            rule
            for data in self.rule_files
            for group in data.get("groups") or []
            if isinstance(group, dict)
            for rule in group.get("rules") or []
            if isinstance(rule, dict)
        ]


def _board_of(data: dict[str, Any]) -> Board:
    uid = str(data.get("uid", ""))
    queries = tuple(
        PanelQuery(
            uid,
            int(panel.get("id") or 0),
            str(panel.get("title", "")),
            str(target.get("refId", "")),
            str(target["rawSql"]),
            (),
        )
        for panel in _panels(data)
        for target in panel.get("targets") or []
        if isinstance(target, dict) and target.get("rawSql")
    )
    variables = {
        str(v["name"]): str(v.get("current", {}).get("value", ""))
        for v in data.get("templating", {}).get("list", [])
        if isinstance(v, dict) and "name" in v and isinstance(v.get("current"), dict)
    }
    return Board(uid, str(data.get("title", "")), data, queries, variables)


_BOARD_SUFFIXES = (".json",)
_RULE_SUFFIXES = (".yaml", ".yml")
#: Other provisioning files (datasources, board providers): read, not checked.
_PROVISIONING_KEYS = frozenset({"datasources", "providers"})


def _read(path: Path, found: GrafanaFiles) -> None:
    try:
        text_ = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        found.problems.append(f"{path}: not UTF-8 text")
        return
    except OSError as exc:
        found.problems.append(f"{path}: cannot be read ({exc.strerror})")
        return
    try:
        if path.suffix == ".json":
            data = json.loads(text_)
        else:
            data = yaml.safe_load(text_)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        found.problems.append(f"{path}: not valid {kind}: {first}")
        return
    if path.suffix == ".json":
        if isinstance(data, dict) and isinstance(data.get("panels"), list):
            found.boards.append(_board_of(data))
        else:
            found.problems.append(f"{path}: not a Grafana board (no panels)")
    elif isinstance(data, dict) and isinstance(data.get("groups"), list):
        found.rule_files.append(data)
    elif not (isinstance(data, dict) and _PROVISIONING_KEYS & set(data)):
        found.problems.append(f"{path}: not a Grafana alert rules file (no groups)")


def load_files(path: Path) -> GrafanaFiles:
    """The boards (`*.json`) and alert rule files (`*.yaml`) at `path`.

    `path` is a folder (searched recursively) or one file. A path that does
    not exist, a file of another kind, or a folder without any of them is a
    `ConfigurationError` (one line).
    """
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist")
    if path.is_file():
        if path.suffix not in (*_BOARD_SUFFIXES, *_RULE_SUFFIXES):
            raise ConfigurationError(
                f"{path} is not a board (.json) or an alert rules file (.yaml)"
            )
        files = [path]
    else:
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in (*_BOARD_SUFFIXES, *_RULE_SUFFIXES)
        )
        if not files:
            raise ConfigurationError(
                f"{path} holds no boards (.json) or alert rules files (.yaml)"
            )
    found = GrafanaFiles([], [], [])
    for file in files:
        _read(file, found)
    return found


def ensure_schema_tools(folder: Path) -> Path:
    """`folder` with TypeScript and Grafana's schema packages from npm."""
    marker = folder / ".installed"
    wanted = "\n".join(NPM_PACKAGES)
    if marker.exists() and marker.read_text(encoding="utf-8") == wanted:
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigurationError(
            "npm is not installed: it fetches Grafana's schema (@grafana/schema)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - fixed arguments, no user input
        [npm, "install", "--silent", "--no-audit", "--no-fund", *NPM_PACKAGES],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise ConfigurationError(
            f"npm install of {', '.join(NPM_PACKAGES)} failed: "
            f"{(result.stderr or result.stdout).strip()[:300]}"
        )
    marker.write_text(wanted, encoding="utf-8")
    return folder


def _typescript(boards: Iterable[Board], files: GrafanaFiles | None = None) -> str:
    lines = [
        'import type { Dashboard } from "@grafana/schema";',
        "import type { Query, Rule as ApiRule }",
        '    from "@grafana/grafana-foundation-sdk/alerting";',
        "// A query's model is the datasource's own (the SDK types it as a marker).",
        'type Rule = Omit<ApiRule, "data"> & {',
        '  data: (Omit<Query, "model"> & { model: Record<string, unknown> })[];',
        "};",
        "// The file-provisioning format: the API's rule without its placement.",
        'type FileRule = Omit<Rule, "folderUID" | "ruleGroup" | "orgID">;',
        "type FileGroup = {",
        "  orgId: number; name: string; folder: string; interval: string;",
        "  rules: FileRule[];",
        "};",
        "type AlertingFile = { apiVersion: number; groups: FileGroup[] };",
    ]
    for index, board in enumerate(boards):
        body = json.dumps(board.json, ensure_ascii=False)
        lines.append(f"// {board.uid}\nexport const board{index}: Dashboard = {body};")
    if files is not None:
        for index, data in enumerate(files.rule_files):
            body = json.dumps(data, ensure_ascii=False)
            lines.append(f"export const file{index}: AlertingFile = {body};")
        return "\n".join(lines) + "\n"
    for index, payload in enumerate(rule_payloads()):
        body = json.dumps(payload, ensure_ascii=False)
        lines.append(f"// {payload['uid']}\nexport const rule{index}: Rule = {body};")
    body = json.dumps(provisioning_file(), ensure_ascii=False)
    lines.append(f"export const file: AlertingFile = {body};")
    return "\n".join(lines) + "\n"


def schema_problems(
    boards: Iterable[Board], tools: Path, files: GrafanaFiles | None = None
) -> list[str]:
    """What TypeScript's compiler says against Grafana's schema; empty: fine.

    With `files`, its alert rule files are checked instead of the generated
    rules.
    """
    source = tools / "klimapuls_boards.ts"
    source.write_text(_typescript(boards, files), encoding="utf-8")
    tsc = tools / "node_modules" / ".bin" / "tsc"
    result = subprocess.run(  # noqa: S603 - fixed arguments, no user input
        [
            str(tsc),
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            source.name,
        ],
        cwd=tools,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode == 0:
        return []
    output = (result.stdout + result.stderr).strip()
    return [line for line in output.splitlines() if line.strip()]


#: Views other branches add; a query on one that does not exist yet is skipped.
PENDING_VIEWS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class QueryCheck:
    """One query run against a database: what it is and what it answered."""

    where: str
    sql: str
    columns: tuple[str, ...]
    problem: str | None = None
    skipped: str | None = None


def _queries(boards: Iterable[Board]) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for board in boards:
        for query in board.queries:
            yield (
                f"{board.uid} panel {query.panel_id} ({query.panel_title}) "
                f"query {query.ref_id}",
                query.raw_sql,
                query.columns,
            )


def _variable_queries(
    boards: Iterable[Board],
) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for board in boards:
        for variable in board.json.get("templating", {}).get("list", []):
            yield (
                f"{board.uid} variable ${variable['name']}",
                str(variable["query"]),
                ("__value", "__text"),
            )


def _rule_queries() -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for rule in alert_rules():
        columns = (*rule.label_columns, rule.value_column)
        yield f"alert rule {rule.uid}", rule.sql, columns


def _missing_pending(conn: Connection, sql: str) -> str | None:
    for view in sorted(PENDING_VIEWS):
        if view in sql:
            found = conn.execute(text("SELECT to_regclass(:v)"), {"v": view}).scalar()
            if found is None:
                return view
    return None


def _file_rule_queries(
    rules: list[dict[str, Any]],
) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for rule in rules:
        for query in rule.get("data") or []:
            if not isinstance(query, dict):
                continue
            sql = query.get("model", {}).get("rawSql")
            if sql:
                yield f"alert rule {rule.get('uid')}", str(sql), ()


def run_queries(
    conn: Connection,
    boards: Iterable[Board],
    now: datetime,
    rules: list[dict[str, Any]] | None = None,
) -> list[QueryCheck]:
    """Run every panel, variable and alert query with Grafana's macros expanded.

    A query passes when it returns the columns its panel expects and at
    least one row (a query read from a file, whose columns are not known,
    only has to answer with a row). A query on a view of `PENDING_VIEWS` that
    does not exist yet is skipped, naming the view. `rules` are alert rule
    payloads read from files (default: the generated rules).
    """
    boards = list(boards)
    spans = {board.uid: (TimeRange.of(board.json, now), board) for board in boards}
    checks = []
    ruled = _rule_queries() if rules is None else _file_rule_queries(rules)
    found = [*_queries(boards), *_variable_queries(boards), *ruled]
    for where, sql, columns in found:
        span, variables = TimeRange(now - timedelta(hours=1), now), {}
        uid = where.split(" ", 1)[0]
        if uid in spans:
            span, board = spans[uid]
            variables = board.variables
        missing = _missing_pending(conn, sql)
        if missing is not None:
            checks.append(
                QueryCheck(where, sql, columns, skipped=f"{missing} does not exist")
            )
            continue
        expanded = expand(sql, span, variables)
        try:
            with conn.begin_nested():
                result = conn.execute(text(expanded))
                rows = result.all()
                keys = tuple(result.keys())
        except SQLAlchemyError as exc:
            first = str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0]
            checks.append(QueryCheck(where, expanded, columns, problem=first))
            continue
        problem = None
        if columns and keys != columns:
            problem = f"returns columns {list(keys)}, expected {list(columns)}"
        elif not rows:
            problem = "returns no rows"
        checks.append(QueryCheck(where, expanded, columns, problem=problem))
    return checks
