"""The one settings object, read from environment variables.

Settings are built only in entry points (CLI commands, service `__main__`s)
and passed down; nothing reads the environment at import time.

Variables (the README has the same list):

- `KAFKA_BOOTSTRAP_SERVERS`: `host:port,...`; required by services.
  `klimapuls up` starts an embedded broker when it is unset.
- `KAFKA_SECURITY_PROTOCOL` (`PLAINTEXT`), `KAFKA_SASL_MECHANISM`,
  `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, `KAFKA_SSL_CAFILE`: TLS/SASL.
- `DATABASE_URL`: `postgresql+psycopg://...`; required by services.
  `klimapuls up` starts an embedded PostgreSQL when it is unset.
- `GRAFANA_URL`, `GRAFANA_TOKEN` (or `GRAFANA_USER` / `GRAFANA_PASSWORD`): a
  Grafana for `klimapuls grafana provision` / `push`.
- `GRAFANA_DB_HOST` (`postgres:5432`), `GRAFANA_DB_NAME` (`klimapuls`),
  `GRAFANA_DB_USER` (`klimapuls_grafana`): where Grafana's datasource reads
  (provisioning file and `klimapuls grafana provision`).
- `GRAFANA_DB_PASSWORD`: the password of `klimapuls_grafana`, the read-only
  database role Grafana's PostgreSQL datasource reads `board.*` with
  (`klimapuls db upgrade` sets it as a SCRAM digest; the provisioning file
  and `klimapuls grafana provision` use it).
- `KLIMAPULS_TOPIC_PREFIX` (empty): prefix of every topic name.
- `KLIMAPULS_TOPIC_PARTITIONS` (6): partitions of topics `up` creates.
- `KLIMAPULS_GROUP_PREFIX` (`klimapuls`): prefix of consumer group ids.
- `KLIMAPULS_DATA_DIR` (`./.klimapuls`): folder of the embedded stack.
- `KLIMAPULS_BATCH_SIZE` (5000), `KLIMAPULS_BATCH_SECONDS` (0.5): the most
  events per database transaction, and the longest wait to fill a batch.
  Only a backlog fills a batch (live traffic is handled as it comes), and
  there a large one costs less per event: a backlog of counts drained
  about 25 % faster at 5,000 than at 500 (`klimapuls bench`).
- `KLIMAPULS_KAFKA_SESSION_TIMEOUT_S`, `KLIMAPULS_KAFKA_HEARTBEAT_S` (client
  defaults): only the embedded dev broker needs them, as its JoinGroup waits
  half the session timeout.
- `KLIMAPULS_LOG_LEVEL` (`info`): services' log level.
- `KLIMAPULS_MOBILITY_WORKERS` (one per core, at most the partitions): the
  batch worker processes the mobility service forks.
- `KLIMAPULS_DERIVE_SECONDS` (1): the series owners' derive window (rollups,
  board rows, series notices) while a worker keeps up; 0 derives every batch.
- `KLIMAPULS_BACKLOG_DERIVE_SECONDS` (15): the derive window while a worker
  reads a backlog (its batches come full, or end below the broker's high
  watermark), a new worker's first derive included; it derives once caught
  up.
- `KLIMAPULS_PROGRESS_SECONDS` (5): the targets service's recompute window
  for series notices.
- `KLIMAPULS_REFRESH_SECONDS` (3600): how often services recompute target
  progress without new events (statuses also change with time).
- `KLIMAPULS_GATEWAY_HOST` (`127.0.0.1`), `KLIMAPULS_GATEWAY_PORT` (8080 for
  `klimapuls gateway`; `up` picks a free port when unset): where the HTTP
  gateway listens (`0.0.0.0` inside containers).
- `KLIMAPULS_GATEWAY_MAX_BODY_BYTES` (1 MiB): larger request bodies get 413.
- `KLIMAPULS_GATEWAY_RATE_LIMIT` (`20/second`): requests one token may send,
  in the `limits` notation (`100/minute`, `5 per second`); more get 429.
- `KLIMAPULS_GATEWAY_SEND_TIMEOUT_S` (10): longest wait for the broker's
  acknowledgement before the gateway answers 503.
- `KLIMAPULS_GATEWAY_REFRESH_SECONDS` (5): how often the gateway reloads
  tokens and grants (a revoked token is refused within this time).
- Alerts (the README lists defaults and meaning): `KLIMAPULS_SMTP_HOST`
  (unset: e-mails wait, unsent, until it is set), `KLIMAPULS_SMTP_PORT`,
  `KLIMAPULS_SMTP_USER`, `KLIMAPULS_SMTP_PASSWORD`, `KLIMAPULS_SMTP_STARTTLS`,
  `KLIMAPULS_ALERT_FROM`, `KLIMAPULS_BOARD_URL` (the link base of the
  Grafana boards in notices), `KLIMAPULS_ALERT_HOLD_SECONDS`,
  `KLIMAPULS_ALERT_ESCALATE_SECONDS`, `KLIMAPULS_ALERT_DIGEST_SECONDS`,
  `KLIMAPULS_ALERT_FORECAST_WORSEN_PCT`, `KLIMAPULS_ALERT_CO2_MAX_LAG_YEARS`,
  `KLIMAPULS_ALERT_SITE_MAX_SILENCE_HOURS`,
  `KLIMAPULS_ALERT_FLEET_MAX_SILENCE_DAYS`,
  `KLIMAPULS_ALERT_DEAD_LETTER_MAX_PCT`,
  `KLIMAPULS_ALERT_DEAD_LETTER_MIN_EVENTS`,
  `KLIMAPULS_ALERT_REPORT_GRACE_DAYS`,
  `KLIMAPULS_ALERT_RESTATEMENT_DAYS`,
  `KLIMAPULS_ALERT_EVALUATE_SECONDS`, `KLIMAPULS_ALERT_SEND_SECONDS`.
"""

from __future__ import annotations

import logging
import ssl
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from klimapuls.core.errors import ConfigurationError

if TYPE_CHECKING:
    # Imported where used: every service reads its settings first, and the
    # batch workers join their group right after (the domain loads meanwhile).
    from klimapuls.core.alerting import AlertRules

__all__ = [
    "GrafanaSettings",
    "KafkaSettings",
    "Settings",
    "Topics",
    "load_settings",
    "service_settings",
    "settings_problem",
]


class KafkaSettings(BaseSettings):
    """Connection to a Kafka cluster; stock client defaults unless set."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    def kafka_python_options(self) -> dict[str, object]:
        """Connection options in kafka-python's spelling."""
        options: dict[str, object] = {
            "bootstrap_servers": (self.bootstrap_servers or "").split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.ssl_cafile:
            options["ssl_cafile"] = str(self.ssl_cafile)
        return options

    def aiokafka_options(self) -> dict[str, object]:
        """The same connection options in aiokafka's spelling (the gateway's).

        TLS gets a default context trusting `ssl_cafile` (or the system's
        CAs), as the services' faust credentials do.
        """
        options: dict[str, object] = {
            "bootstrap_servers": (self.bootstrap_servers or "").split(","),
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None
            )
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


class GrafanaSettings(BaseSettings):
    """A Grafana to provision boards and alert rules to (`klimapuls grafana`)."""

    model_config = SettingsConfigDict(env_prefix="GRAFANA_", extra="ignore")

    url: str | None = None
    token: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None
    #: Where Grafana's datasource reads: `GRAFANA_DB_HOST` (host:port),
    #: `GRAFANA_DB_NAME`, `GRAFANA_DB_USER` (the read-only role of migration 0017).
    db_host: str = "postgres:5432"
    db_name: str = "klimapuls"
    db_user: str = "klimapuls_grafana"
    #: Password of the read-only role `klimapuls_grafana` (`GRAFANA_DB_PASSWORD`;
    #: the older name `GRAFANA_DATASOURCE_PASSWORD` is still read).
    datasource_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "GRAFANA_DB_PASSWORD", "GRAFANA_DATASOURCE_PASSWORD"
        ),
    )

    def datasource_variables(self) -> dict[str, str]:
        """The datasource file's placeholders and their values."""
        return {
            "GRAFANA_DB_HOST": self.db_host,
            "GRAFANA_DB_NAME": self.db_name,
            "GRAFANA_DB_USER": self.db_user,
        }


class Topics:
    """Topic names, one per event family plus the derived streams."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def co2_account(self) -> str:
        """CO2 account updates (`co2_account.v1`)."""
        return self._name("co2-account")

    @property
    def target(self) -> str:
        """Target definitions and revisions (`target.v1`)."""
        return self._name("target")

    @property
    def fleet_status(self) -> str:
        """Bus fleet figures (`fleet_status.v1`)."""
        return self._name("fleet-status")

    @property
    def mobility_count(self) -> str:
        """Traffic and passenger counts (`mobility_count.v1`)."""
        return self._name("mobility-count")

    @property
    def initiative_status(self) -> str:
        """Initiative status reports (`initiative_status.v1`)."""
        return self._name("initiative-status")

    @property
    def dead_letter(self) -> str:
        """Rejected events with the reason."""
        return self._name("dead-letter")

    @property
    def target_status(self) -> str:
        """Target status changes (`target_status.v1`), for alerts."""
        return self._name("target-status")

    @property
    def series_change(self) -> str:
        """Notices that a measured series changed (`series_change.v1`)."""
        return self._name("series-change")

    def for_kind(self, kind: str) -> str:
        """The topic of an event family (`co2_account`, `target`, ...)."""
        return str(getattr(self, kind))

    def all(self) -> list[str]:
        """Every topic the platform uses."""
        return [
            self.co2_account,
            self.target,
            self.fleet_status,
            self.mobility_count,
            self.initiative_status,
            self.dead_letter,
            self.target_status,
            self.series_change,
        ]


class Settings(BaseSettings):
    """Everything a Klimapuls process can be configured with.

    Build it with `load_settings()` (commands) or `service_settings()`
    (services) in an entry point; pass it down from there.
    """

    model_config = SettingsConfigDict(env_prefix="KLIMAPULS_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL")
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1)
    group_prefix: str = "klimapuls"
    data_dir: Path = Path(".klimapuls")
    batch_size: int = Field(default=5000, ge=1)
    batch_seconds: float = Field(default=0.5, gt=0)
    kafka_session_timeout_s: float | None = None
    kafka_heartbeat_s: float | None = None
    #: How a batch worker (co2, fleet, mobility, dead letters) gets its
    #: partitions: "group" from its consumer group (join and rebalances, for
    #: replicas that come and go), "static" by its place in its set (worker i
    #: of n reads every n-th partition from the i-th, no join: reading starts
    #: at once). None: "static" under `klimapuls up`, whose supervisor runs
    #: every worker there is, and "group" otherwise.
    kafka_assignment: Literal["group", "static"] | None = None
    log_level: Literal["crit", "error", "warn", "info", "debug"] = "info"
    refresh_seconds: float = Field(default=3600.0, gt=0)
    derive_seconds: float = Field(default=1.0, ge=0)
    backlog_derive_seconds: float = Field(default=15.0, ge=0)
    mobility_workers: int | None = Field(default=None, ge=1, le=64)
    progress_seconds: float = Field(default=5.0, ge=0)
    gateway_host: str = "127.0.0.1"
    gateway_port: int | None = Field(default=None, ge=0, le=65535)
    gateway_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    gateway_rate_limit: str = "20/second"
    gateway_send_timeout_s: float = Field(default=10.0, gt=0)
    gateway_refresh_seconds: float = Field(default=5.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    alert_from: str = "Klimapuls <klimapuls@localhost>"
    board_url: str = "http://localhost:3000"
    alert_hold_seconds: float = Field(default=3600.0, ge=0)
    alert_escalate_seconds: float = Field(default=3 * 86400.0, gt=0)
    alert_digest_seconds: float = Field(default=300.0, ge=0)
    alert_forecast_worsen_pct: float = Field(default=10.0, gt=0)
    alert_co2_max_lag_years: int = Field(default=2, ge=0)
    alert_site_max_silence_hours: float = Field(default=48.0, gt=0)
    alert_fleet_max_silence_days: float = Field(default=45.0, gt=0)
    alert_dead_letter_max_pct: float = Field(default=5.0, ge=0, le=100)
    alert_dead_letter_min_events: int = Field(default=20, ge=1)
    alert_report_grace_days: float = Field(default=30.0, ge=0)
    alert_restatement_days: float = Field(default=365.0, gt=0)
    alert_evaluate_seconds: float = Field(default=60.0, gt=0)
    alert_send_seconds: float = Field(default=5.0, gt=0)

    def alert_rules(self) -> AlertRules:
        """The alert rules' thresholds and timings from these settings."""
        from klimapuls.core.alerting import AlertRules

        return AlertRules(
            hold=timedelta(seconds=self.alert_hold_seconds),
            escalate_after=timedelta(seconds=self.alert_escalate_seconds),
            digest_window=timedelta(seconds=self.alert_digest_seconds),
            forecast_worsen_pct=self.alert_forecast_worsen_pct,
            co2_max_lag_years=self.alert_co2_max_lag_years,
            site_max_silence=timedelta(hours=self.alert_site_max_silence_hours),
            fleet_max_silence=timedelta(days=self.alert_fleet_max_silence_days),
            dead_letter_max_pct=self.alert_dead_letter_max_pct,
            dead_letter_min_events=self.alert_dead_letter_min_events,
            report_grace=timedelta(days=self.alert_report_grace_days),
            restatement_window=timedelta(days=self.alert_restatement_days),
        )

    def alert_env(self) -> dict[str, str]:
        """The alert and SMTP settings that differ from the defaults, as variables.

        `klimapuls up` passes them to the service processes it starts.
        """
        names = [
            n for n in type(self).model_fields if n.startswith(("smtp_", "alert_"))
        ]
        names.append("board_url")
        env = {}
        defaults = type(self).model_fields
        for name in names:
            value = getattr(self, name)
            if value == defaults[name].default:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, bool):
                value = str(value).lower()
            env[f"KLIMAPULS_{name.upper()}"] = str(value)
        return env

    @property
    def topics(self) -> Topics:
        """Topic names under this deployment's prefix."""
        return Topics(self.topic_prefix)

    def mobility_worker_count(self, cores: int | None) -> int:
        """`KLIMAPULS_MOBILITY_WORKERS`, or one per core, at most the partitions."""
        return self.mobility_workers or min(cores or 1, self.topic_partitions)

    def require_database_url(self) -> str:
        """The database URL, or a `ConfigurationError` naming the variable."""
        if self.database_url is None:
            raise ConfigurationError(
                "DATABASE_URL is not set: give a SQLAlchemy URL such as "
                "postgresql+psycopg://user:pass@host:5432/klimapuls"
            )
        return self.database_url.get_secret_value()

    def require_bootstrap_servers(self) -> str:
        """The Kafka bootstrap list, or a `ConfigurationError` naming it."""
        if not self.kafka.bootstrap_servers:
            raise ConfigurationError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: give host:port[,host:port]"
            )
        return self.kafka.bootstrap_servers


def _variable(model: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable of an error's location in a settings class."""
    name = str(loc[0]) if loc else "?"
    if name.isupper():  # a validation alias such as DATABASE_URL
        return name
    prefix = str(model.model_config.get("env_prefix") or "")
    return f"{prefix}{name}".upper()


def load_settings() -> Settings:
    """`Settings()`, with a malformed variable as one `ConfigurationError` line.

    The line names each variable, its value and the reason (pydantic's
    message), never a traceback; commands and services build their settings
    through this (or `service_settings`).
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(settings_problem(exc)) from None


def settings_problem(exc: ValidationError) -> str:
    """One line naming each variable a settings `ValidationError` is about.

    `KLIMAPULS_GATEWAY_PORT='abc': input should be a valid integer, ...`.
    """
    models: dict[str, type[BaseSettings]] = {
        m.__name__: m for m in (Settings, KafkaSettings, GrafanaSettings)
    }
    model = models.get(exc.title, Settings)
    problems = []
    for error in exc.errors():
        value = error.get("input")
        shown = f"={value[:80]!r}" if isinstance(value, str) else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(
            f"{_variable(model, tuple(error['loc']))}{shown}: "
            f"{message[:1].lower()}{message[1:]}"
        )
    return "; ".join(problems)


def service_settings(service: str) -> Settings:
    """The settings of a service's `__main__` (`python -m klimapuls.SERVICE`).

    A malformed variable, or a missing database URL or broker list (every
    service needs both), is one log line naming it and exit code 2, never a
    traceback: the supervisor's log then says what to fix.
    """
    try:
        settings = load_settings()
        settings.require_database_url()
        settings.require_bootstrap_servers()
        return settings
    except ConfigurationError as exc:
        logging.basicConfig(
            format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
        )
        logging.getLogger(f"klimapuls.{service}").critical(
            "%s cannot start: %s", service, exc
        )
        logging.shutdown()
        raise SystemExit(2) from None
