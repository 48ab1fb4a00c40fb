"""Start the platform: embedded servers where no URL is given, then services.

`SERVICES` is the one list of processes `klimapuls up` starts and
supervises, each as `python -m klimapuls.NAME` forked from a launcher
that has imported what they share (`klimapuls.stack.launcher`); a new
service (or any other long-running process, such as an HTTP gateway) is
added there by name, and to `CONSUMES` if it reads topics, so a user's
stop also drains them.

Supervision: a process that dies is restarted with back-off (1 s, 2 s, 4 s,
... at most 30 s; the count resets once it has run a minute), and each
death and restart is reported. A dead embedded broker is restarted on the
same address. Only the user stops the stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from klimapuls.core.errors import KlimapulsError
from klimapuls.settings import Settings
from klimapuls.stack.broker import EmbeddedBroker, free_port
from klimapuls.stack.children import describe_exit
from klimapuls.stack.database import EmbeddedPostgres
from klimapuls.stack.drain import DrainReport, drain_topics
from klimapuls.stack.launcher import (
    ServiceProcess,
    ensure_launcher,
    launch,
    stop_launcher,
)
from klimapuls.stack.state import StackState, process_matches
from klimapuls.stack.topics import ensure_topics
from klimapuls.storage import prepare_database

__all__ = ["CONSUMES", "SERVICES", "Stack"]

#: The processes `klimapuls up` runs and supervises, each `python -m klimapuls.NAME`.
SERVICES: tuple[str, ...] = (
    "alerts",
    "co2",
    "deadletter",
    "fleet",
    "gateway",
    "initiatives",
    "mobility",
    "targets",
)

#: The topics (`Topics` attribute names) each service's consumer group reads;
#: a user's stop waits until every group has committed past all of them.
CONSUMES: dict[str, tuple[str, ...]] = {
    "co2": ("co2_account",),
    "deadletter": ("dead_letter",),
    "fleet": ("fleet_status",),
    "initiatives": ("initiative_status",),
    "mobility": ("mobility_count",),
    "targets": ("target", "series_change"),
    "alerts": ("target_status",),
}

# Tansu's JoinGroup waits half the session timeout: keep it short, dev only.
_DEV_SESSION_TIMEOUT_S = 6
_DEV_HEARTBEAT_S = 1
_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
#: Services `close_intake` signals (SIGUSR1): they start with it blocked.
_DRAINS_ON_SIGUSR1 = frozenset({"gateway"})
_STABLE_S = 60.0

Note = Callable[[str], None]


@dataclass
class _Backoff:
    """Restarts in a row of one supervised thing, and when to try the next."""

    restarts: int = 0
    restart_at: float | None = None

    def schedule(self, now: float) -> float:
        """Set when to restart (later for each restart in a row); the delay."""
        delay = _BACKOFF_S[min(self.restarts, len(_BACKOFF_S) - 1)]
        self.restart_at = now + delay
        return delay

    def restarting(self) -> None:
        """A restart is being made now."""
        self.restart_at = None
        self.restarts += 1


@dataclass
class _Supervised:
    """One supervised process and its restart bookkeeping."""

    name: str
    process: ServiceProcess
    started: float
    backoff: _Backoff = field(default_factory=_Backoff)


@contextmanager
def _stops_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back while a service is forked and recorded.

    A stop delivered between the launcher's fork and the record would leave
    a service that `stop` does not know of (on a bench's temporary folder,
    one that dies on its missing log, with a traceback); held, it comes a
    moment later, once the service is one to stop. The launcher must be
    running already: multiprocessing's resource tracker, started with it,
    unblocks both signals.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@dataclass
class Stack:
    """The running platform; `stop()` shuts down what `start()` started."""

    settings: Settings
    broker: EmbeddedBroker | None = None
    database: EmbeddedPostgres | None = None
    supervised: dict[str, _Supervised] = field(default_factory=dict)
    stopping: bool = False
    #: Restarts of the embedded PostgreSQL in a row, and when to try next.
    database_backoff: _Backoff = field(default_factory=_Backoff)
    #: Whether `start_servers` started the services' launcher (`stop` ends it).
    owns_launcher: bool = False

    @property
    def processes(self) -> dict[str, ServiceProcess]:
        """The current process of every supervised service."""
        return {name: s.process for name, s in self.supervised.items()}

    @property
    def log_dir(self) -> Path:
        """Where the embedded servers and services write their logs."""
        return self.settings.data_dir / "logs"

    # -- starting -------------------------------------------------------------

    def reclaim_leftovers(self, note: Note) -> None:
        """Find what a crashed `up` of this data folder left, and deal with it.

        A running `up` for the same folder is an error; a broker or services
        of a dead one are stopped (found by pid and command line); a
        PostgreSQL left running is reused by `start_servers`.
        """
        state = StackState.read(self.settings.data_dir)
        if state is None:
            return
        if state.up_alive and state.up_pid != os.getpid():
            raise KlimapulsError(
                f"klimapuls up already runs for {self.settings.data_dir} "
                f"(pid {state.up_pid}); stop it first (Ctrl-C there, or "
                f"kill -TERM {state.up_pid})"
            )
        leftovers = [
            (f"service {n}", pid, f"klimapuls.{n}") for n, pid in state.services.items()
        ]
        if state.broker_pid:
            leftovers.append(("broker", state.broker_pid, "tansu"))
        for what, pid, marker in leftovers:
            if process_matches(pid, marker):
                _terminate_pid(pid)
                extra = (
                    "; the events it held in memory are lost"
                    if what == "broker"
                    else ""
                )
                note(
                    f"stopped a {what} left running by an earlier up (pid {pid}){extra}"
                )

    def start_servers(self, note: Note | None = None) -> Settings:
        """Start what is not configured; return settings pointing at both servers."""
        say = note or (lambda _text: None)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.reclaim_leftovers(say)
        # The services' launcher imports what they share while the servers start.
        ensure_launcher()
        self.owns_launcher = True
        previous = StackState.read(self.settings.data_dir)
        updates: dict[str, object] = {}
        kafka = self.settings.kafka
        if not kafka.bootstrap_servers:
            port = previous.broker_port if previous is not None else None
            self.broker = EmbeddedBroker(self.log_dir / "tansu.log", port=port)
            kafka = kafka.model_copy(update={"bootstrap_servers": self.broker.start()})
            if port is not None and self.broker.port != port:
                say(
                    f"broker port {port} of the earlier run is taken; using "
                    f"{self.broker.port} (producers need the new address)"
                )
            updates["kafka"] = kafka
            updates["kafka_session_timeout_s"] = _DEV_SESSION_TIMEOUT_S
            updates["kafka_heartbeat_s"] = _DEV_HEARTBEAT_S
        if self.settings.database_url is None:
            self.database = EmbeddedPostgres(self.settings.data_dir / "postgres")
            leftover = self.database.running_pid()
            if leftover is not None:
                say(
                    f"PostgreSQL left running by an earlier up (pid {leftover}) "
                    "found; reusing it"
                )
            updates["database_url"] = SecretStr(self.database.start())
        if self.settings.gateway_port is None:
            # A free port, so `up` never clashes with another gateway.
            updates["gateway_port"] = free_port()
        self.settings = self.settings.model_copy(update=updates)
        self.write_state()
        return self.settings

    def prepare(self) -> list[str]:
        """Migrate and seed the database, create missing topics."""
        prepare_database(self.settings.require_database_url())
        return ensure_topics(self.settings)

    def service_env(self) -> dict[str, str]:
        """Environment of a service process: the same settings, as variables."""
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": s.require_bootstrap_servers(),
                "DATABASE_URL": s.require_database_url(),
                "KLIMAPULS_TOPIC_PREFIX": s.topic_prefix,
                "KLIMAPULS_TOPIC_PARTITIONS": str(s.topic_partitions),
                "KLIMAPULS_GROUP_PREFIX": s.group_prefix,
                "KLIMAPULS_DATA_DIR": str(s.data_dir.resolve()),
                "KLIMAPULS_BATCH_SIZE": str(s.batch_size),
                "KLIMAPULS_BATCH_SECONDS": str(s.batch_seconds),
                # The gateway's settings (see README, Gateway).
                "KLIMAPULS_GATEWAY_HOST": s.gateway_host,
                "KLIMAPULS_GATEWAY_MAX_BODY_BYTES": str(s.gateway_max_body_bytes),
                "KLIMAPULS_GATEWAY_RATE_LIMIT": s.gateway_rate_limit,
                "KLIMAPULS_GATEWAY_SEND_TIMEOUT_S": str(s.gateway_send_timeout_s),
                "KLIMAPULS_GATEWAY_REFRESH_SECONDS": str(s.gateway_refresh_seconds),
            }
        )
        if s.gateway_port is not None:
            env["KLIMAPULS_GATEWAY_PORT"] = str(s.gateway_port)
        # This supervisor runs every batch worker there is, and restarts a
        # set whole: no group is needed to share the partitions out.
        env["KLIMAPULS_KAFKA_ASSIGNMENT"] = s.kafka_assignment or "static"
        if s.mobility_workers is not None:
            env["KLIMAPULS_MOBILITY_WORKERS"] = str(s.mobility_workers)
        if s.kafka_session_timeout_s is not None:
            env["KLIMAPULS_KAFKA_SESSION_TIMEOUT_S"] = str(s.kafka_session_timeout_s)
        if s.kafka_heartbeat_s is not None:
            env["KLIMAPULS_KAFKA_HEARTBEAT_S"] = str(s.kafka_heartbeat_s)
        env.update(s.alert_env())
        return env

    def _spawn(self, name: str) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The gateway keeps SIGUSR1 blocked until it has installed its
        # handler: a `close_intake` before that stays pending instead of
        # killing it.
        blocked = {signal.SIGUSR1} if name in _DRAINS_ON_SIGUSR1 else set()
        return launch(name, self.service_env(), self.log_dir / f"{name}.log", blocked)

    def start_services(self, names: Sequence[str] = SERVICES) -> None:
        """Start each service as its own process, logging to the data folder."""
        # Started first, outside the held stops: starting it lets them through.
        ensure_launcher()
        for name in names:
            with _stops_held():
                self.supervised[name] = _Supervised(
                    name, self._spawn(name), time.monotonic()
                )
        self.write_state()

    def write_state(self, *, running: bool = True) -> None:
        """Write `DATA_DIR/stack.json` (addresses and pids) for other commands."""
        s = self.settings
        StackState(
            up_pid=os.getpid(),
            database_url=(
                s.database_url.get_secret_value() if s.database_url else None
            ),
            bootstrap_servers=s.kafka.bootstrap_servers,
            broker_port=self.broker.port if self.broker is not None else None,
            broker_pid=self.broker.pid if self.broker is not None else None,
            embedded_database=self.database is not None,
            services={n: p.process.pid for n, p in self.supervised.items()},
            running=running,
        ).write(s.data_dir)

    # -- supervising ------------------------------------------------------------

    def supervise(self, note: Note) -> None:
        """Restart what died (with back-off), reporting each death and restart."""
        if self.stopping:
            return
        now = time.monotonic()
        self._supervise_broker(note)
        self._supervise_database(note, now)
        changed = False
        for item in self.supervised.values():
            code = item.process.poll()
            backoff = item.backoff
            if code is None:
                if backoff.restarts and now - item.started > _STABLE_S:
                    backoff.restarts = 0
                continue
            if backoff.restart_at is None:
                delay = backoff.schedule(now)
                note(
                    f"service {item.name} stopped ({item.process.describe_exit()}); "
                    f"restarting in {delay:.0f} s (log: "
                    f"{self.log_dir / (item.name + '.log')})"
                )
            elif now >= backoff.restart_at:
                with _stops_held():
                    item.process, item.started = self._spawn(item.name), now
                backoff.restarting()
                changed = True
                note(
                    f"service {item.name} restarted (pid {item.process.pid}, "
                    f"restart {backoff.restarts})"
                )
        if changed:
            self.write_state()

    def _supervise_broker(self, note: Note) -> None:
        broker = self.broker
        if broker is None:
            return
        code = broker.exit_code()
        if code is None:
            return
        port = broker.port
        broker.preferred_port = port
        broker.stop()
        broker.start()
        ensure_topics(self.settings)
        self.write_state()
        note(
            f"embedded broker stopped ({describe_exit(code)}); restarted at "
            f"127.0.0.1:{broker.port}; the events it held in memory are lost"
        )

    def _supervise_database(self, note: Note, now: float) -> None:
        database = self.database
        if database is None or database.running_pid() is not None:
            return
        backoff = self.database_backoff
        if backoff.restart_at is None:
            delay = backoff.schedule(now)
            note(
                f"embedded PostgreSQL stopped; restarting in {delay:.0f} s "
                f"(log: {database.data_dir / 'log'})"
            )
            return
        if now < backoff.restart_at:
            return
        backoff.restarting()
        try:
            url = database.restart()
        except (
            OSError,
            subprocess.SubprocessError,
            AssertionError,
            KlimapulsError,
        ) as exc:
            note(f"embedded PostgreSQL did not start again: {exc}; trying again")
            return
        note(
            f"embedded PostgreSQL restarted (pid {database.running_pid()}, "
            f"restart {backoff.restarts}); the services reconnect"
        )
        if url != self.settings.require_database_url():
            # Another socket folder: the services need the new address.
            self.settings = self.settings.model_copy(
                update={"database_url": SecretStr(url)}
            )
            for item in self.supervised.values():
                if item.process.poll() is None:
                    item.process.send_signal(signal.SIGTERM)
            note("the database address changed; restarting the services with it")
        self.write_state()

    def check_services(self) -> None:
        """Raise if a service process has died (for callers that do not supervise)."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                log = self.log_dir / f"{name}.log"
                raise KlimapulsError(
                    f"service {name} stopped ({process.describe_exit()}); see {log}"
                )

    # -- stopping ---------------------------------------------------------------

    def consumer_groups(self) -> Mapping[str, tuple[str, ...]]:
        """Group id -> topic names, for every running service that reads topics."""
        s = self.settings
        return {
            f"{s.group_prefix}-{s.topic_prefix}{name}": tuple(
                s.topics.for_kind(kind) for kind in CONSUMES.get(name, ())
            )
            for name in self.supervised
            if CONSUMES.get(name)
        }

    def close_intake(self) -> bool:
        """Tell the gateway the stack is stopping: it answers 503 from now on.

        The gateway (`SIGUSR1`, see `klimapuls.gateway.server`) keeps serving
        but accepts nothing more, so what is in the topics can be drained.
        Returns whether a gateway was told.
        """
        gateway = self.supervised.get("gateway")
        if gateway is None or gateway.process.poll() is not None:
            return False
        # Safe at any time: the gateway starts with SIGUSR1 blocked (`_spawn`)
        # and unblocks it once its handler is installed (`serve`).
        gateway.process.send_signal(signal.SIGUSR1)
        return True

    def drain(
        self,
        timeout_s: float,
        on_progress: Callable[[Mapping[str, int], float], None] | None = None,
    ) -> DrainReport:
        """Wait (at most `timeout_s`) until the services took all in their topics."""
        return drain_topics(
            self.settings, self.consumer_groups(), timeout_s, on_progress
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop services (SIGTERM, then wait), then the embedded servers."""
        self.stopping = True
        processes = list(self.processes.values())
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.supervised.clear()
        if self.owns_launcher:
            self.owns_launcher = False  # once, even if a Ctrl-C cuts it short
            stop_launcher()
        if self.broker is not None:
            self.broker.stop()
        if self.database is not None:
            self.database.stop()
            self.database = None
        if self.broker is not None or StackState.read(self.settings.data_dir):
            self.write_state(running=False)
        self.broker = None


def _terminate_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`, a process that is not our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process_matches(pid, ""):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
