"""All settings in one place: flags, then a --config file, then CRISISMON_* variables, then defaults."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from replay.readers.base import PlayOrder, ReaderOptions
from schemas.events import MAX_WITNESSES
from schemas.kafka import (
    OUTAGE_TIMEOUT_SECONDS,
    KafkaConnection,
    SaslLogin,
    SaslMechanism,
    SecurityProtocol,
    TlsOptions,
)
from services.core.config import Duration, EngineConfig


class Settings(BaseSettings, EngineConfig):
    """The engine's configuration plus what the services need; env vars are CRISISMON_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="CRISISMON_",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,  # a refused login setting would show the whole input: the password too
    )

    log_level: str = "INFO"
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", pattern=r"^[\w.-]+:\d+$")
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (a login over TLS)"
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512", description="SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (SASL_* protocols)"
    )
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = Field(default=None, description="never logged or shown")
    kafka_ssl_cafile: FilePath | None = Field(
        default=None,
        description="the CA certificates (PEM) the brokers' must chain to; default: the system's",
    )
    kafka_ssl_certfile: FilePath | None = Field(
        default=None, description="mutual TLS: the client's certificate chain (PEM), the key may be in it"
    )
    kafka_ssl_keyfile: FilePath | None = Field(
        default=None, description="mutual TLS: the client's private key (PEM), if not in the certfile"
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="whether a broker's certificate must name the host it was reached at"
    )
    namespace: str = Field(
        default="", pattern=r"^[a-z0-9_-]*$", max_length=40, description="topic prefix: <ns>.crisis.events"
    )
    kafka_version: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+\.\d+$",
        description="the local broker's Apache Kafka version (default: devtools.broker's)",
    )
    web_host: str = Field(
        default="127.0.0.1", description="the web server's address; 0.0.0.0 only inside a container"
    )
    web_port: int = Field(default=6066, ge=1, le=65535)
    api_view: bool = Field(
        default=True,
        description="read the topics into the API's view and serve the dashboard and /api; off, the"
        " worker serves /metrics and /health only (of several workers, one with the view is enough)",
    )
    api_token: SecretStr | None = Field(
        default=None, description="when set, the dashboard and /api need it as a bearer token"
    )
    api_max_events: int = Field(default=50_000, ge=100, description="events the API keeps for lookup")
    api_max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="the largest body POST /api/events takes; a bigger one is refused (413) unread",
    )
    api_max_stream_clients: int = Field(
        default=100, ge=1, description="/api/stream clients at once; one more is refused (503)"
    )
    api_history_per_dyad: int = Field(
        default=5_000, ge=10, description="index updates the API keeps per dyad"
    )
    api_max_updates: int = Field(
        default=50_000,
        ge=100,
        description="index updates the API keeps over all dyads; past it, the dyads holding the most"
        " give up their oldest",
    )
    metrics_max_dyads: int = Field(
        default=200, ge=1, description="dyads labelled in /metrics (the most recently active)"
    )
    repeats: Literal["merge", "rows"] = Field(
        default="merge",
        description="GDELT/ICEWS rows of one day, actors and event code: one event, or each its own",
    )
    full_weight_sources: int = Field(
        default=5,
        ge=1,
        le=MAX_WITNESSES,
        description="sources at which a GDELT/ICEWS event weighs as much as a hand-coded one",
    )
    max_future_skew: Duration = Field(
        default=timedelta(days=1),
        description="event times further ahead of the clock are refused: dead-lettered or bad rows",
    )
    backtest_jobs: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="processes a backtest plays its dyads in (--jobs); default: one per CPU, at most 8",
    )
    follow_poll: Duration = Field(
        default=timedelta(minutes=15),
        gt=timedelta(0),
        description="how often `follow` looks for new files (GDELT publishes every 15 minutes)",
    )
    follow_attempts: int = Field(
        default=5, ge=1, description="tries to fetch and read a file before `follow` reports it and moves on"
    )
    follow_backoff: Duration = Field(
        default=timedelta(seconds=2),
        gt=timedelta(0),
        description="the wait after a failed try, doubled (with jitter) after each, at most 5 minutes",
    )
    follow_timeout: Duration = Field(
        default=timedelta(seconds=60),
        gt=timedelta(0),
        description="the longest `follow` waits for one download, or for a server to say anything",
    )
    follow_settle: Duration = Field(
        default=timedelta(seconds=5),
        ge=timedelta(0),
        description="`follow dir`: a file is complete once its size and time stay unchanged this long",
    )
    follow_metrics_port: int = Field(
        default=6067, ge=0, le=65535, description="`follow`'s own /metrics port (0: none)"
    )
    data_dir: Path = Field(default=Path(".crisismon"), description="the worker's RocksDB tables")
    store: str = Field(default="rocksdb://", pattern=r"^(rocksdb|memory)://$")
    kafka_outage_timeout: Duration = Field(
        default=timedelta(seconds=OUTAGE_TIMEOUT_SECONDS),
        gt=timedelta(0),
        description="how long the worker, `replay` and `follow` wait for a broker that went away"
        " before they give up (the worker exits 75; a record not delivered counts as failed)",
    )
    worker_stall_timeout: Duration = Field(
        default=timedelta(seconds=60),
        gt=timedelta(0),
        description="a worker stuck this long (no partitions, records waiting but none processed, a"
        " blocked event loop) reports it; twice this long, it exits non-zero for its supervisor",
    )
    worker_topics_timeout: Duration = Field(
        default=timedelta(seconds=30),
        gt=timedelta(0),
        description="a topic the worker reads or writes missing from the broker this long is"
        " reported (a broker just restarted may not list it for a few seconds); twice this long,"
        " the worker exits non-zero so that a restart creates it again",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init values (from load_settings: the flags over the --config file) win over CRISISMON_*
        variables, and nothing else is read: no .env file, no secrets directory."""
        return init_settings, env_settings

    @model_validator(mode="after")
    def _skew_within_lateness(self) -> Self:
        """A future event that was let in must not push the events that follow it out of the
        lateness horizon (which is measured back from a dyad's latest event)."""
        if not timedelta(0) <= self.max_future_skew < self.lateness / 2:
            raise ValueError("max_future_skew must be at least 0 and under half of lateness")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        """Each Kafka security setting goes with a protocol that uses it: a login or a CA file the
        protocol would ignore is a mistake to say, not a silent plain-text connection."""
        protocol = self.kafka_security_protocol
        login = {
            "kafka_sasl_username": self.kafka_sasl_username,
            "kafka_sasl_password": self.kafka_sasl_password,
        }
        files = {
            "kafka_ssl_cafile": self.kafka_ssl_cafile,
            "kafka_ssl_certfile": self.kafka_ssl_certfile,
            "kafka_ssl_keyfile": self.kafka_ssl_keyfile,
        }
        if protocol.startswith("SASL_") and (missing := [name for name, value in login.items() if not value]):
            raise ValueError(f"kafka_security_protocol {protocol} needs {' and '.join(missing)}")
        if not protocol.startswith("SASL_") and (given := [name for name, value in login.items() if value]):
            raise ValueError(
                f"{' and '.join(given)} set, but kafka_security_protocol {protocol} does not log in:"
                " use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if not protocol.endswith("SSL") and (given := [name for name, value in files.items() if value]):
            raise ValueError(
                f"{' and '.join(given)} set, but kafka_security_protocol {protocol} is not TLS:"
                " use SSL or SASL_SSL"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("kafka_ssl_keyfile needs kafka_ssl_certfile (the certificate of that key)")
        if (tls := self._kafka_tls()) is not None:
            tls.context()  # files that exist but do not load: a ValueError naming the file
        return self

    def kafka_connection(self) -> KafkaConnection:
        """What every Kafka client of the services is made from."""
        sasl = None
        if self.kafka_sasl_username and self.kafka_sasl_password:  # with a SASL_* protocol: validated
            sasl = SaslLogin(self.kafka_sasl_mechanism, self.kafka_sasl_username, self.kafka_sasl_password)
        return KafkaConnection(self.kafka_bootstrap, sasl, self._kafka_tls())

    def _kafka_tls(self) -> TlsOptions | None:
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        return TlsOptions(
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
            self.kafka_ssl_check_hostname,
        )

    def backtest_processes(self) -> int:
        """`backtest_jobs`, or one per CPU this process may use (at most DEFAULT_MAX_JOBS)."""
        return self.backtest_jobs or min(usable_cpus(), DEFAULT_MAX_JOBS)

    def reader_options(self, now: datetime, order: PlayOrder = "event-time") -> ReaderOptions:
        """`now`: the clock when a run starts; rows dated past it by max_future_skew are bad rows."""
        return ReaderOptions(self.repeats, self.full_weight_sources, now, self.max_future_skew, order)

    def engine_config(self) -> EngineConfig:
        """Only what decides indices and alerts (and so goes into the config hash)."""
        return EngineConfig.model_validate(self.model_dump(include=set(EngineConfig.model_fields)))


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may run on, or fewer when its cgroup's CPU quota allows less (cgroup
    v2's `cpu.max`, "QUOTA PERIOD" or "max PERIOD": a container run with `--cpus`), rounded up."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()
        return cpus if quota == "max" else max(1, min(cpus, -(-int(quota) // int(period))))
    except (OSError, ValueError):  # no cgroup v2 here, or a file not as the kernel writes it
        return cpus


DEFAULT_MAX_JOBS = 8
"""Every part reads the whole input and runs an interpreter of its own (~80 MB): past a few
parts, more CPUs gain less and cost more memory, so more is asked for, never defaulted to."""
MAX_CONFIG_BYTES = 1 << 20
"""A settings file is a few lines; pydantic-settings reads a file whole, so a bigger one is refused
before it is opened."""


class _YamlSettings(YamlConfigSettingsSource):
    """pydantic-settings' YAML source (it uses yaml.safe_load: a tag such as !!python/object is
    refused, never run) with its errors on one line."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            return _mapping(super()._read_file(file_path))
        except yaml.YAMLError as error:
            raise ValueError(f"not valid YAML: {_yaml_problem(error)}") from error


class _JsonSettings(JsonConfigSettingsSource):
    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        return _mapping(super()._read_file(file_path))


def _mapping(values: object) -> dict[str, Any]:
    """The sources would take a list of pairs (even `- ab`) as settings: only a mapping is one."""
    if not isinstance(values, dict):
        raise ValueError("expected a mapping of settings")
    return values


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        return f"{error.problem} (line {error.problem_mark.line + 1})"
    return str(error).splitlines()[0]


_SOURCES: dict[str, Callable[[type[BaseSettings], Path], InitSettingsSource]] = {
    ".toml": TomlConfigSettingsSource,  # TOML is always a table
    ".json": _JsonSettings,
}


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML (.toml), JSON (.json) or else YAML file, read by pydantic-settings'
    source for it; ValueError (one line, naming the file) when it is not a settings file."""
    status = path.stat()  # a missing file: OSError (the library would skip it without a word)
    if not stat.S_ISREG(status.st_mode):  # /dev/zero, a pipe: the library would skip these too
        raise ValueError(f"{path}: not a regular file")
    if status.st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: over {MAX_CONFIG_BYTES} bytes, not a settings file")
    try:
        return _SOURCES.get(path.suffix, _YamlSettings)(Settings, path)()
    except ValueError as error:  # also bad TOML or JSON, and bytes that are not UTF-8
        raise ValueError(f"{path}: {error}") from error


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Flags given (not None) win over the file, which wins over the environment."""
    from_file = read_config_file(config_file) if config_file else {}
    return Settings(**{**from_file, **{k: v for k, v in flags.items() if v is not None}})
