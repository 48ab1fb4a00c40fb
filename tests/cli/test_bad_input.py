"""Every `klimapuls` command against a battery of bad inputs (issue 10).

Missing servers, bad URLs, bad files (missing, a folder, empty, not UTF-8,
binary, a wrong ending) and bad options: each must end with a short error
naming the problem, exit code 1 or 2, and no traceback or Python exception
name. The battery is a table, command -> bad invocations; a command that has
no entry (say, one added later) fails `test_every_command_has_a_battery_entry`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from klimapuls.cli import cli_command, main
from tests.helpers import co2_event


@dataclass(frozen=True)
class Bad:
    """One bad invocation: arguments, environment, what the error must name."""

    args: tuple[str, ...]
    names: str
    env: dict[str, str] = field(default_factory=dict)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEAD = _dead_port()
NO_BROKER = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{DEAD}"}
BAD_BROKER = {"KAFKA_BOOTSTRAP_SERVERS": "not a url"}
BAD_PORT = {"KAFKA_BOOTSTRAP_SERVERS": "localhost:notaport"}
NO_DB = {"DATABASE_URL": f"postgresql+psycopg://u:p@127.0.0.1:{DEAD}/klimapuls"}
BAD_DB = {"DATABASE_URL": "not-a-url"}
SQLITE_DB = {"DATABASE_URL": "sqlite:///x.db"}
BAD_HOLD = {"KLIMAPULS_ALERT_HOLD_SECONDS": "soon"}


def _file_cases(command: tuple[str, ...], ending: str) -> list[Bad]:
    """The bad files every file-reading command must name (checked, not sent)."""
    return [
        Bad((*command, "{missing}", "--dry-run"), "missing"),
        Bad((*command, "{folder}", "--dry-run"), "folder"),
        Bad((*command, "{empty}" + ending, "--dry-run"), "no events in"),
        Bad((*command, "{binary}" + ending, "--dry-run"), "binary"),
    ]


#: Command path -> bad invocations. Add an entry with every new command.
BATTERY: dict[str, list[Bad]] = {
    "up": [
        Bad(("up", "--timeout", "-1"), "--timeout"),
        Bad(("up", "--timeout", "0"), "--timeout"),
        Bad(("up", "--demo-days", "0"), "--demo-days"),
        Bad(("up", "--demo-days", "-2"), "--demo-days"),
        Bad(("up", "--demo-days", "100000"), "--demo-days"),
        Bad(("up", "--drain-timeout", "-5"), "--drain-timeout"),
        Bad(("up", "--data-dir", "{empty}.jsonl"), "data-dir"),
        Bad(("up",), "cannot reach the Kafka broker", NO_BROKER),
        Bad(("up",), "is not host:port", BAD_BROKER),
        Bad(("up",), "is not a database URL", BAD_DB),
        Bad(("up",), "cannot reach the database", NO_DB),
    ],
    "produce": [
        Bad(("produce", "weather", "{good}.jsonl", "--dry-run"), "unknown kind"),
        *_file_cases(("produce", "co2_account"), ".jsonl"),
        Bad(("produce", "co2_account", "{latin1}.jsonl", "--dry-run"), "not UTF-8"),
        Bad(("produce", "co2_account", "{binary}.csv", "--dry-run"), "binary"),
        Bad(("produce", "co2_account", "{good}.txt"), "unknown file type"),
        Bad(("produce", "co2_account", "{good}.jsonl"), "KAFKA_BOOTSTRAP_SERVERS"),
        Bad(("produce", "co2_account", "{good}.jsonl"), "cannot reach", NO_BROKER),
        Bad(("produce", "co2_account", "{good}.jsonl"), "host:port", BAD_BROKER),
        Bad(("produce", "co2_account", "{good}.jsonl"), "host:port", BAD_PORT),
        Bad(("produce", "co2_account", "{good}.jsonl", "--bogus"), "--bogus"),
    ],
    "progress": [
        Bad(("progress",), "--offline"),
        Bad(("progress",), "is not a database URL", BAD_DB),
        Bad(("progress",), "cannot reach the database", NO_DB),
        Bad(("progress",), "needs PostgreSQL", SQLITE_DB),
        Bad(("progress", "--offline", "{missing}"), "not found"),
        Bad(("progress", "--offline", "{folder}"), "folder"),
        Bad(("progress", "--offline", "{empty}.jsonl"), "no events in"),
        Bad(("progress", "--offline", "{binary}.jsonl"), "binary"),
        Bad(("progress", "--offline", "{latin1}.jsonl"), "not UTF-8"),
        Bad(("progress", "--offline", "{csv}.csv"), "not valid JSON"),
        Bad(("progress", "--offline"), "give at least one"),
        Bad(("progress", "--offline", "{good}.jsonl", "--as-of", "soon"), "not a date"),
        Bad(("progress", "--offline", "{good}.jsonl", "--scope", "999"), "scope"),
        Bad(("progress", "--offline", "{good}.jsonl", "--target", "nope"), "target"),
        Bad(("progress", "{good}.jsonl"), "--offline"),
    ],
    "import": [
        Bad(("import", "weather", "{csv}.csv", "--dry-run"), "unknown layout"),
        *_file_cases(("import", "co2-account"), ".csv"),
        Bad(("import", "co2-account", "{good}.jsonl"), "expected a .csv"),
        Bad(("import", "co2-account", "{csv}.csv", "--vintage", "soon"), "YYYY-MM-DD"),
        Bad(("import", "co2-account", "{csv}.csv"), "KAFKA_BOOTSTRAP_SERVERS"),
        Bad(("import", "co2-account", "{csv}.csv"), "cannot reach", NO_BROKER),
        Bad(("import", "traffic-count", "{csv}.csv", "--sites", "{missing}"), "sites"),
        Bad(
            ("import", "traffic-count", "{csv}.csv", "--sites", "{binary}.csv"),
            "binary",
        ),
    ],
    "simulate": [
        Bad(("simulate", "--rate", "0"), "--rate"),
        Bad(("simulate", "--duration", "-1"), "--duration"),
        Bad(("simulate", "--start", "soon"), "--start"),
        Bad(("simulate", "--seed", "x"), "--seed"),
        Bad(("simulate", "--duration", "1"), "KAFKA_BOOTSTRAP_SERVERS"),
        Bad(("simulate", "--duration", "1"), "cannot reach", NO_BROKER),
        Bad(("simulate", "--duration", "1"), "host:port", BAD_BROKER),
    ],
    "db wait": [
        Bad(("db", "wait"), "DATABASE_URL"),
        Bad(("db", "wait"), "is not a database URL", BAD_DB),
        Bad(("db", "wait", "--timeout", "1"), "gave up after 1 s", NO_DB),
        Bad(("db", "wait", "--timeout", "-1"), "--timeout"),
    ],
    "healthcheck": [
        Bad(("healthcheck",), "DATABASE_URL"),
        Bad(("healthcheck", "--http", "nope"), "not an http"),
        Bad(("healthcheck", "--http", f"http://127.0.0.1:{DEAD}/"), "did not answer"),
    ],
    "db upgrade": [
        Bad(("db", "upgrade"), "DATABASE_URL"),
        Bad(("db", "upgrade"), "is not a database URL", BAD_DB),
        Bad(("db", "upgrade"), "cannot reach the database", NO_DB),
        Bad(("db", "upgrade"), "needs PostgreSQL", SQLITE_DB),
    ],
    "topics create": [
        Bad(("topics", "create"), "KAFKA_BOOTSTRAP_SERVERS"),
        Bad(("topics", "create"), "cannot reach", NO_BROKER),
        Bad(("topics", "create"), "host:port", BAD_BROKER),
        Bad(("topics", "create", "--replication-factor", "0"), "--replication-factor"),
    ],
    "gateway": [
        Bad(("gateway",), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("gateway",), "DATABASE_URL"),
        Bad(("gateway",), "is not a database URL", BAD_DB),
        Bad(("gateway",), "needs PostgreSQL", SQLITE_DB),
    ],
    "tokens create": [
        Bad(("tokens", "create"), "--producer"),
        Bad(
            ("tokens", "create", "--producer", "147", "--scope", "147"),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
        Bad(
            ("tokens", "create", "--producer", "147", "--scope", "147"), "DATABASE_URL"
        ),
        Bad(
            ("tokens", "create", "--producer", "147", "--scope", "147"),
            "is not a database URL",
            BAD_DB,
        ),
    ],
    "tokens grant": [
        Bad(("tokens", "grant"), "Missing option"),
        Bad(
            ("tokens", "grant", "--producer", "147", "--scope", "147"),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
    ],
    "tokens list": [
        Bad(("tokens", "list"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("tokens", "list"), "DATABASE_URL"),
        Bad(("tokens", "list"), "is not a database URL", BAD_DB),
    ],
    "tokens revoke": [
        Bad(("tokens", "revoke", "x"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("tokens", "revoke", "x"), "DATABASE_URL"),
        Bad(("tokens", "revoke"), "TOKEN_ID"),
    ],
    "alerts": [
        Bad(("alerts", "--json"), "DATABASE_URL"),
        Bad(("alerts", "--json"), "is not a database URL", BAD_DB),
        Bad(("alerts", "--json"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("alerts", "ack", "1"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("alerts", "--offline", "{missing}"), "readable"),
        Bad(("alerts", "--offline", "{good}.jsonl"), "KLIMAPULS_ALERT_HOLD", BAD_HOLD),
        Bad(("alerts", "--offline", "{binary}.jsonl"), "binary"),
        Bad(("alerts", "--offline", "{latin1}.jsonl"), "not UTF-8"),
        Bad(
            ("alerts", "--offline", "{good}.jsonl", "--contacts", "{binary}.jsonl"),
            "binary",
        ),
        Bad(
            ("alerts", "--offline", "{good}.jsonl", "--contacts", "{latin1}.jsonl"),
            "not UTF-8",
        ),
    ],
    "contacts add": [
        Bad(("contacts", "add", "x"), "--party"),
        Bad(
            (
                "contacts",
                "add",
                "x",
                "--party",
                "101",
                "--topic",
                "co2",
                "--email",
                "a@b.dk",
            ),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
    ],
    "contacts import": [
        Bad(("contacts", "import", "{missing}"), "readable"),
        Bad(("contacts", "import", "{binary}.jsonl"), "binary"),
        Bad(("contacts", "import", "{latin1}.jsonl"), "not UTF-8"),
    ],
    "contacts list": [
        Bad(("contacts", "list"), "DATABASE_URL"),
        Bad(("contacts", "list"), "is not a database URL", BAD_DB),
        Bad(("contacts", "list"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
    ],
    "contacts remove": [
        Bad(("contacts", "remove", "1"), "DATABASE_URL"),
        Bad(("contacts", "remove", "1"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
    ],
    "changes": [
        Bad(
            ("changes", "--since", "2024-01-01"),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
        Bad(("changes", "--since", "soon"), "not a date"),
        Bad(("changes", "--since", "2024-01-01"), "DATABASE_URL"),
        Bad(("changes", "--since", "2024-01-01"), "is not a database URL", BAD_DB),
        Bad(
            ("changes", "--offline", "{missing}", "--since", "2024-01-01"),
            "readable",
        ),
    ],
    "report": [
        Bad(
            ("report", "--html", "{empty}.html"),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
        Bad(("report", "--html", "{empty}.html"), "DATABASE_URL"),
        Bad(
            ("report", "--html", "{empty}.html", "--offline", "{missing}"),
            "readable",
        ),
        Bad(("report", "--html", "{empty}.html", "--offline"), "at least one"),
        Bad(("report", "--html", "{empty}.html", "{good}.jsonl"), "with --offline"),
        Bad(
            (
                "report",
                "--html",
                "{empty}.html",
                "--municipality",
                "999",
                "--offline",
                "{good}.jsonl",
            ),
            "unknown municipality",
        ),
    ],
    "grafana generate": [
        Bad(("grafana", "generate", "--bogus"), "--bogus"),
    ],
    "grafana validate": [
        Bad(
            ("grafana", "validate", "--no-schema"),
            "KLIMAPULS_ALERT_HOLD_SECONDS",
            BAD_HOLD,
        ),
        Bad(("grafana", "validate", "--no-schema", "--database"), "DATABASE_URL"),
        Bad(("grafana", "validate", "--no-schema", "{missing}"), "does not exist"),
        Bad(("grafana", "validate", "--no-schema", "{folder}"), "holds no boards"),
        Bad(("grafana", "validate", "--no-schema", "{good}.txt"), "is not a board"),
    ],
    "grafana provision": [
        Bad(("grafana", "provision"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("grafana", "provision"), "GRAFANA_URL"),
        Bad(("grafana", "provision", "--url", "notaurl"), "not an http"),
        Bad(
            ("grafana", "provision", "--url", f"http://127.0.0.1:{DEAD}"),
            "did not answer",
        ),
    ],
    "bench": [
        Bad(("bench", "--events", "5"), "--events"),
        Bad(("bench", "--live-rate", "0"), "--live-rate"),
        Bad(("bench", "--queries", "--sites", "0"), "--sites"),
        Bad(("bench", "--queries", "--days", "400"), "--days"),
        Bad(("bench", "--queries", "--runs", "x"), "--runs"),
        Bad(("bench", "--backfill", "5"), "--backfill"),
    ],
    "grafana push": [
        Bad(("grafana", "push"), "KLIMAPULS_ALERT_HOLD_SECONDS", BAD_HOLD),
        Bad(("grafana", "push"), "GRAFANA_URL"),
        Bad(("grafana", "push"), "not an http", {"GRAFANA_URL": "not a url"}),
        Bad(
            ("grafana", "push"),
            "did not answer",
            {"GRAFANA_URL": f"http://127.0.0.1:{DEAD}"},
        ),
    ],
}

#: Python spellings a user must never see.
_PYTHON = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception|Interrupt|Exit)\b")


def _commands(command: object, prefix: tuple[str, ...] = ()) -> list[str]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [" ".join(prefix)]
    paths: list[str] = []
    for name, sub in subs.items():
        if getattr(sub, "hidden", False):
            continue
        paths.extend(_commands(sub, (*prefix, name)))
    return paths


def test_a_malformed_setting_is_exit_2_for_every_command_that_reads_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every battery case with a malformed variable: one line naming it, exit 2."""
    files = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    cases = [bad for cases in BATTERY.values() for bad in cases if bad.env == BAD_HOLD]
    assert len(cases) >= 15
    for bad in cases:
        with monkeypatch.context() as env:
            env.setenv("KLIMAPULS_ALERT_HOLD_SECONDS", "soon")
            with pytest.raises(SystemExit) as exited:
                main([a.format(**files) for a in bad.args])
        out, err = capsys.readouterr()
        assert exited.value.code == 2, (bad.args, out + err)
        [line] = err.strip().splitlines()
        assert line.startswith("error: KLIMAPULS_ALERT_HOLD_SECONDS='soon': "), line


SERVICES = [
    "co2",
    "targets",
    "initiatives",
    "alerts",
    "fleet",
    "deadletter",
    "mobility",
    "gateway",
]


def _run_service(service: str, settings: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `python -m klimapuls.SERVICE` given only `settings`: exit code, output."""
    import os
    import subprocess
    import sys

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KAFKA_", "KLIMAPULS_")) and name != "DATABASE_URL"
    }
    env.update(settings)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "services")
    done = subprocess.run(
        [sys.executable, "-m", f"klimapuls.{service}"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=100,
    )
    return done.returncode, done.stdout + done.stderr


def _service_line(service: str, settings: dict[str, str], cwd: Path) -> str:
    """The one line a service given only `settings` logs; it must exit 2."""
    code, output = _run_service(service, settings, cwd)
    assert code == 2, output
    assert not _PYTHON.search(output), output
    [line] = output.strip().splitlines()
    return line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", SERVICES)
def test_a_service_with_a_malformed_setting_logs_one_line_and_exits_2(
    service: str, tmp_path: Path
) -> None:
    line = _service_line(service, {"KLIMAPULS_ALERT_HOLD_SECONDS": "soon"}, tmp_path)
    assert "KLIMAPULS_ALERT_HOLD_SECONDS='soon'" in line
    assert f"{service} cannot start" in line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("DATABASE_URL", "DATABASE_URL is not set"),
        ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS is not set"),
    ],
)
def test_a_service_without_its_database_or_broker_logs_one_line_and_exits_2(
    service: str, missing: str, named: str, tmp_path: Path
) -> None:
    # The other one given (unreachable: the check comes before any connection).
    settings = {
        "DATABASE_URL": "postgresql+psycopg://klimapuls@127.0.0.1:1/klimapuls",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    }
    del settings[missing]
    line = _service_line(service, settings, tmp_path)
    assert f"{service} cannot start: {named}" in line


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", ["co2", "fleet", "deadletter", "mobility"])
def test_a_batch_service_whose_broker_is_away_says_so_in_one_line(
    service: str, tmp_path: Path
) -> None:
    """No traceback: exit 1, and its supervisor starts it again later."""
    settings = {
        "DATABASE_URL": "postgresql+psycopg://klimapuls@127.0.0.1:1/klimapuls",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{DEAD}",
        "KLIMAPULS_MOBILITY_WORKERS": "2",  # the set's workers say it too
    }
    code, output = _run_service(service, settings, tmp_path)
    assert code == 1, output
    assert "Traceback" not in output, output
    said = f"batch worker stopped: no Kafka broker answers at 127.0.0.1:{DEAD}"
    assert output.count(said) == (2 if service == "mobility" else 1), output


def test_every_command_has_a_battery_entry() -> None:
    commands = set(_commands(cli_command()))
    missing = sorted(commands - set(BATTERY))
    assert not missing, f"add bad-input cases to BATTERY for: {', '.join(missing)}"
    assert all(BATTERY[c] for c in commands)


def _files(folder: Path) -> dict[str, str]:
    good = json.dumps(co2_event("101", 2022, "energy", 10.0)) + "\n"
    (folder / "good.jsonl").write_text(good)
    (folder / "good.txt").write_text(good)
    (folder / "empty.jsonl").write_text("")
    (folder / "empty.csv").write_text("")
    (folder / "latin1.jsonl").write_bytes('{"source": "København"}\n'.encode("latin-1"))
    binary = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    (folder / "binary.jsonl").write_bytes(binary)
    (folder / "binary.csv").write_bytes(binary)
    (folder / "csv.csv").write_text("kommune;aar;sektor;ton\nKøbenhavn;2022;energi;1\n")
    (folder / "a folder").mkdir()
    return {
        "good": str(folder / "good"),
        "empty": str(folder / "empty"),
        "latin1": str(folder / "latin1"),
        "binary": str(folder / "binary"),
        "csv": str(folder / "csv"),
        "missing": str(folder / "missing.jsonl"),
        "folder": str(folder / "a folder"),
    }


CASES = [
    # The dead port is random: ids name it `DEAD`, the same in every process
    # collecting them (parallel workers compare their collections).
    pytest.param(
        command,
        bad,
        id=f"{command}:{' '.join(bad.args)}:{bad.names}".replace(str(DEAD), "DEAD"),
    )
    for command, cases in BATTERY.items()
    for bad in cases
] + [
    pytest.param(
        command,
        Bad((*command.split(), "--no-such-option"), "--no-such-option"),
        id=f"{command}:unknown option",
    )
    for command in BATTERY
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("command", "bad"), CASES)
def test_bad_input_gets_one_clear_line_and_exit_1_or_2(
    command: str,
    bad: Bad,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    for name in list(os.environ):
        if (
            name.startswith(("KAFKA_", "GRAFANA_", "KLIMAPULS_"))
            or name == "DATABASE_URL"
        ):
            monkeypatch.delenv(name)
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stack of `klimapuls up` to find here
    files = _files(tmp_path)
    args = [a.format(**files) for a in bad.args]
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    output = out + err
    assert exited.value.code in (1, 2), output
    assert bad.names.lower() in output.lower(), output
    assert not _PYTHON.search(output), output
    assert err.strip(), "the error goes to stderr"
    assert not err.startswith("\n"), "no blank first line"
    assert len(err.strip().splitlines()) <= 8, err


class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet


@pytest.fixture(scope="module")
def not_kafka() -> Iterator[dict[str, str]]:
    """Two open ports that are not Kafka: an HTTP server, and one that is silent."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield {
            "http": f"127.0.0.1:{http.server_address[1]}",
            "silent": f"127.0.0.1:{silent.getsockname()[1]}",
        }
    finally:
        http.shutdown()
        http.server_close()
        silent.close()


NOT_KAFKA_COMMANDS = [
    ("produce", "co2_account", "{good}.jsonl"),
    ("import", "co2-account", "{csv}.csv"),
    ("topics", "create"),
    ("simulate", "--duration", "1"),
    ("up",),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", ["http", "silent"])
@pytest.mark.parametrize("args", NOT_KAFKA_COMMANDS, ids=" ".join)
def test_a_port_that_is_not_kafka_fails_fast_in_one_line(
    args: tuple[str, ...],
    server: str,
    not_kafka: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", "KLIMAPULS_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", not_kafka[server])
    monkeypatch.chdir(tmp_path)
    files = _files(tmp_path)
    began = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main([a.format(**files) for a in args])
    elapsed = time.monotonic() - began
    out, err = capsys.readouterr()
    assert exited.value.code == 1, out + err
    [line] = err.strip().splitlines()
    assert "does not answer as a Kafka broker" in line
    assert not_kafka[server] in line
    assert not _PYTHON.search(out + err), out + err
    assert elapsed < 10, f"{elapsed:.1f} s"


#: A usage error and our own errors, each naming a file deep in a long path.
LONG_PATH_CASES = [
    pytest.param(("produce", "co2_account", "{long}/events.txt"), 2, id="file type"),
    pytest.param(("produce", "co2_account", "{long}/missing.jsonl"), 2, id="missing"),
    pytest.param(("progress", "--offline", "{long}/empty.jsonl"), 1, id="own error"),
    pytest.param(("alerts", "--offline", "{long}/latin1.jsonl"), 1, id="own line"),
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize(("args", "code"), LONG_PATH_CASES)
def test_no_error_line_is_cut_however_long_the_path(
    args: tuple[str, ...],
    code: int,
    terminal: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`error: FILE: /a/long/path/events.txt: ...` whole, in one plain line."""
    long = tmp_path / ("a-rather-long-folder-name-" * 3) / ("and-another-one-" * 4)
    long.mkdir(parents=True)
    assert len(str(long / "events.txt")) > 100
    (long / "events.txt").write_text(json.dumps(co2_event("101", 2022, "x", 1.0)))
    (long / "empty.jsonl").write_text("")
    (long / "latin1.jsonl").write_bytes('{"source": "København"}\n'.encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # An 80-column terminal, as rich sees it (or a pipe).
    monkeypatch.setenv("TTY_COMPATIBLE", "1" if terminal else "0")
    argv = [a.format(long=long) for a in args]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    err = _ANSI.sub("", err)
    assert exited.value.code == code, out + err
    named = next(a for a in argv if str(long) in a)
    [line] = [line for line in err.splitlines() if named in line]
    if code == 2:
        assert line.startswith("error: "), err
        assert "Try 'klimapuls" in err
    assert not re.search("[╭╮╰╯│─]", err), err
    assert len(err.strip().splitlines()) <= 3, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", NOT_KAFKA_COMMANDS, ids=" ".join)
def test_one_server_not_kafka_and_one_refusing_are_both_named(
    args: tuple[str, ...],
    not_kafka: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", "KLIMAPULS_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    refusing = f"127.0.0.1:{DEAD}"
    servers = f"{not_kafka['http']},{refusing}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers)
    monkeypatch.chdir(tmp_path)
    files = _files(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main([a.format(**files) for a in args])
    out, err = capsys.readouterr()
    assert exited.value.code == 1, out + err
    [line] = err.strip().splitlines()
    assert f"{not_kafka['http']} does not answer as a Kafka broker" in line, line
    assert f"cannot reach {refusing} (Connection refused)" in line, line
    assert not _PYTHON.search(out + err), out + err


def test_an_unreachable_database_is_named_with_the_drivers_reason_alone(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """The URL (password hidden) and why, without libpq's repeat of host and port."""
    monkeypatch.setenv("DATABASE_URL", NO_DB["DATABASE_URL"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["db", "upgrade"])
    _, err = capsys.readouterr()
    assert exited.value.code == 1
    [line] = err.strip().splitlines()
    assert line == (
        f"error: cannot reach the database at postgresql+psycopg://u:***@127.0.0.1:"
        f"{DEAD}/klimapuls (DATABASE_URL): Connection refused"
    )


def test_each_of_several_database_hosts_is_named_with_its_reason() -> None:
    """libpq tries every host of the list: each attempt gets its reason."""
    from klimapuls.cli.common import check_database
    from klimapuls.core.errors import KlimapulsError

    url = f"postgresql+psycopg://u:p@/klimapuls?host=127.0.0.1,127.0.0.1&port={DEAD},1"
    with pytest.raises(KlimapulsError) as raised:
        check_database(url)
    said = str(raised.value)
    assert said.endswith(
        f"(DATABASE_URL): 127.0.0.1:{DEAD}: Connection refused; "
        "127.0.0.1:1: Connection refused"
    ), said
