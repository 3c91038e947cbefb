"""A local single-node Apache Kafka broker (KRaft: broker and controller in one JVM) from Maven Central jars.

For development and tests on machines with Java and Maven but no Docker and no Kafka tarball:

- `resolve_jars` copies `org.apache.kafka:kafka_2.13:<version>`, its dependencies and a logging backend
  (listed in `deploy/broker/pom.xml`) into a cache outside the work tree, once per version and machine;
- `start` writes `server.properties` into the broker's data dir, formats the KRaft storage once, launches
  `kafka.Kafka` detached (its own session; stdout and stderr to `broker.log`; pid in `broker.pid`) and waits
  until it answers a metadata request;
- `stop` ends it (SIGTERM to its process group, SIGKILL after a timeout); `status` reports on it.

Everything listens on 127.0.0.1 only. Besides its PLAINTEXT listener, a broker can have a SASL_SSL one
(`SaslSslListener`), to test clients that log in with SCRAM over TLS.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

KAFKA_VERSION_DEFAULT = "4.1.1"
KAFKA_VERSION_PREVIOUS = "3.9.1"
"""The last 3.x line: still tested in CI (`make test`), for clusters not yet on 4."""
DEFAULT_PORT = 9092
HOST = "127.0.0.1"
NODE_ID = 1

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "broker"
MAVEN_TIMEOUT = 900.0
TOOL_TIMEOUT = 120.0
BROKER_HEAP = "512m"
TOOL_HEAP = "256m"
LOG_TAIL_LINES = 25
MAX_ERROR_LINES = 6
_MARKER = ".complete"
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_ERROR_LINE = re.compile(rb"^\[[^]]*\] (ERROR|FATAL) |^Caused by: |^Exception in thread ")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")

# The brokers this process launched: polling them reaps them, so that a stopped child is not taken
# for a running one (a zombie still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The broker or its jars could not be had; the message says why (with the log's last lines)."""


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/crisismon`, else `~/.cache/crisismon`: outside the work tree, shared by all runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crisismon"


def default_data_dir(port: int, cache_dir: Path | None = None) -> Path:
    """Where the CLI's broker on `port` keeps its files."""
    return (cache_dir or default_cache_dir()) / f"broker-{port}"


def uses_log4j2(version: str) -> bool:
    """Kafka 4.x logs through log4j2; 3.x through the log4j 1.x API (reload4j)."""
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 4


@dataclass(frozen=True)
class SaslSslListener:
    """A second listener, for clients that log in with SCRAM (SHA-256 or SHA-512) over TLS.

    The broker's own traffic (controller, inter-broker) stays on PLAINTEXT: there is one node, on
    loopback, and the point is the clients' side. The users are written into the metadata when the
    storage is formatted, so a data dir formatted without them does not learn them later.
    """

    port: int
    keystore: Path
    """PEM: the server's private key (unencrypted PKCS#8, `BEGIN PRIVATE KEY`), then its certificate
    chain; Kafka reads it as `ssl.keystore.type=PEM`."""
    users: Mapping[str, str] = field(repr=False)
    """SCRAM users: name → password (letters, digits, `_`, `.`, `-`: they go on a command line)."""

    def __post_init__(self) -> None:
        for word in (*self.users, *self.users.values()):
            if not _SCRAM_WORD.match(word):
                raise ValueError("SCRAM user names and passwords take letters, digits, `_`, `.` and `-` only")

    def scram_arguments(self) -> list[str]:
        """StorageTool format's arguments that create the users, for every SCRAM mechanism."""
        return [
            f"--add-scram={mechanism}=[name={name},password={password}]"
            for name, password in self.users.items()
            for mechanism in SCRAM_MECHANISMS
        ]


@dataclass
class Broker:
    """One local broker: its ports, its files and the Kafka version it runs."""

    port: int
    controller_port: int
    data_dir: Path
    version: str = KAFKA_VERSION_DEFAULT
    cache_dir: Path = field(default_factory=default_cache_dir)
    properties: dict[str, str] = field(default_factory=dict)
    """Extra or overriding server.properties entries."""
    sasl_ssl: SaslSslListener | None = None

    @classmethod
    def local(
        cls,
        port: int = DEFAULT_PORT,
        *,
        controller_port: int | None = None,
        data_dir: Path | None = None,
        version: str | None = None,
        cache_dir: Path | None = None,
    ) -> Broker:
        """The CLI's defaults: controller on port + 1, files in `<cache>/broker-<port>`, and
        KAFKA_VERSION_DEFAULT unless a version is given."""
        cache = cache_dir or default_cache_dir()
        return cls(
            port=port,
            controller_port=port + 1 if controller_port is None else controller_port,
            data_dir=data_dir or default_data_dir(port, cache),
            version=version or KAFKA_VERSION_DEFAULT,
            cache_dir=cache,
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str | None:
        """The SASL_SSL listener's address, when the broker has one."""
        return f"{HOST}:{self.sasl_ssl.port}" if self.sasl_ssl else None

    @property
    def server_properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def kraft_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool


# --- jars ---------------------------------------------------------------------------------------------


def resolve_jars(version: str = KAFKA_VERSION_DEFAULT, cache_dir: Path | None = None) -> Path:
    """The directory of the broker's jars for `version`, downloaded through Maven on the first call.

    Cached in `cache_dir/kafka-<version>/libs`; a marker written after a complete copy makes later calls
    free, and a copy that was interrupted is redone. Concurrent callers wait for each other.
    """
    cache = cache_dir or default_cache_dir()
    home = cache / f"kafka-{version}"
    libs = home / "libs"
    marker = home / _MARKER
    if _jars_complete(libs, marker, version):
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"kafka-{version}.lock"):
        if _jars_complete(libs, marker, version):
            return libs
        marker.unlink(missing_ok=True)
        staging = home / f"libs.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        log.info("Resolving Kafka %s jars with Maven into %s (first time only)", version, libs)
        _run_maven(version, staging)
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if f"kafka_2.13-{version}.jar" not in jars:
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven finished but kafka_2.13-{version}.jar is not among the copied jars")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text("".join(f"{name}\n" for name in jars), encoding="utf-8")
        log.info("Resolved %d jars for Kafka %s in %.1f s", len(jars), version, time.monotonic() - started)
    return libs


def _jars_complete(libs: Path, marker: Path, version: str) -> bool:
    return marker.is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()


def _run_maven(version: str, output_dir: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed to fetch the Kafka jars; install it (apt-get install maven)")
    pom = _deploy_file("pom.xml")
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        f"-Dkafka.logging={'log4j2' if uses_log4j2(version) else 'reload4j'}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
    ]
    log.debug("Running %s", " ".join(command))
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BrokerError(
            f"Maven did not finish resolving Kafka {version} in {MAVEN_TIMEOUT:.0f} s"
        ) from error
    if result.returncode != 0:
        output = _tail_text(result.stdout + result.stderr)
        raise BrokerError(f"Maven could not resolve Kafka {version} (exit {result.returncode}):\n{output}")


def _deploy_file(name: str) -> Path:
    path = DEPLOY_DIR / name
    if not path.is_file():
        raise BrokerError(f"{path} is missing (the broker needs the project's deploy/broker files)")
    return path


# --- start / stop / status ----------------------------------------------------------------------------


def start(broker: Broker, timeout: float = 90) -> None:
    """Start the broker unless it already runs; return once it answers a metadata request.

    Raises BrokerError, with the last lines of broker.log, when it exits or does not answer within
    `timeout` seconds (after its jars are resolved); a broker that failed is not left running.
    """
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    with _locked(broker.data_dir / ".lock"):
        pid = _running_pid(broker)
        if pid is not None:
            log.info("Kafka broker already running (pid %d) at %s", pid, broker.bootstrap)
            _await_answer(broker, pid, timeout)
            return
        broker.pid_file.unlink(missing_ok=True)
        _check_ports_free(broker)
        libs = resolve_jars(broker.version, broker.cache_dir)
        write_server_properties(broker)
        _format_storage(broker, libs)
        pid = _launch(broker, libs)
        try:
            _await_answer(broker, pid, timeout)
        except BaseException:
            _terminate(pid, grace=5.0)
            broker.pid_file.unlink(missing_ok=True)
            raise
    log.info("Kafka %s broker running (pid %d) at %s", broker.version, pid, broker.bootstrap)


def stop(broker: Broker, timeout: float = 30) -> bool:
    """Stop the broker: SIGTERM to its process group, SIGKILL after `timeout`. True if one was running."""
    pid = _running_pid(broker)
    if pid is None:
        broker.pid_file.unlink(missing_ok=True)
        return False
    log.info("Stopping Kafka broker (pid %d) at %s", pid, broker.bootstrap)
    _terminate(pid, grace=timeout)
    broker.pid_file.unlink(missing_ok=True)
    return True


def status(broker: Broker, probe_timeout: float = 5.0) -> BrokerStatus:
    """Whether the broker from this data dir runs, and whether it answers a metadata request."""
    pid = _running_pid(broker)
    answering = pid is not None and answers(broker.bootstrap, probe_timeout)
    return BrokerStatus(running=pid is not None, pid=pid, bootstrap=broker.bootstrap, answering=answering)


def server_properties(broker: Broker) -> dict[str, str]:
    """One node, broker and controller in one process, on loopback, sized for development."""
    listeners = f"PLAINTEXT://{HOST}:{broker.port},CONTROLLER://{HOST}:{broker.controller_port}"
    values = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # A static voter set (not --standalone's dynamic one): nothing about the controller's address is
        # written into the metadata log, so an existing data dir keeps working if the ports change.
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{broker.controller_port}",
        "listeners": listeners,
        "advertised.listeners": f"PLAINTEXT://{HOST}:{broker.port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(broker.kraft_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    if uses_log4j2(broker.version):
        values["share.coordinator.state.topic.replication.factor"] = "1"
        values["share.coordinator.state.topic.min.isr"] = "1"
    if broker.sasl_ssl is not None:
        values.update(sasl_ssl_properties(broker.sasl_ssl))
        for key in ("listeners", "advertised.listeners"):
            values[key] += f",SASL_SSL://{HOST}:{broker.sasl_ssl.port}"
        values["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
    values.update(broker.properties)
    return values


def sasl_ssl_properties(listener: SaslSslListener) -> dict[str, str]:
    """The SASL_SSL listener's TLS identity and SCRAM logins (its address is added to the listeners)."""
    prefix = "listener.name.sasl_ssl."
    values = {
        f"{prefix}ssl.keystore.type": "PEM",
        f"{prefix}ssl.keystore.location": str(listener.keystore),
        f"{prefix}sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
    }
    for mechanism in SCRAM_MECHANISMS:
        values[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    return values


def write_server_properties(broker: Broker) -> Path:
    lines = ["# Written by devtools/broker.py; rewritten at every start.\n"]
    lines += [f"{key}={value}\n" for key, value in server_properties(broker).items()]
    broker.server_properties.write_text("".join(lines), encoding="utf-8")
    return broker.server_properties


def _java_command(broker: Broker, libs: Path, heap: str) -> list[str]:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise BrokerError("Java (17 or newer) is needed to run the Kafka broker; `java` was not found")
    if uses_log4j2(broker.version):
        logging_option = f"-Dlog4j2.configurationFile={_deploy_file('log4j2.properties')}"
    else:
        logging_option = f"-Dlog4j.configuration=file:{_deploy_file('log4j.properties')}"
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={broker.logs_dir}",
        logging_option,
        "-cp",
        f"{libs}/*",
    ]


def _format_storage(broker: Broker, libs: Path) -> None:
    """Give the KRaft log dir a cluster id, once: skipped when meta.properties exists."""
    if (broker.kraft_dir / "meta.properties").is_file():
        return
    # Without meta.properties nothing can have run here: whatever an interrupted format left goes.
    shutil.rmtree(broker.kraft_dir, ignore_errors=True)
    broker.logs_dir.mkdir(parents=True, exist_ok=True)
    java = _java_command(broker, libs, TOOL_HEAP)
    output = _run_tool([*java, "kafka.tools.StorageTool", "random-uuid"], "generate a cluster id")
    lines = output.strip().splitlines()
    cluster_id = lines[-1].strip() if lines else ""
    if not _CLUSTER_ID.match(cluster_id):
        raise BrokerError(f"StorageTool random-uuid printed no cluster id:\n{_tail_text(output)}")
    format_command = ["format", "-t", cluster_id, "-c", str(broker.server_properties)]
    users = broker.sasl_ssl.scram_arguments() if broker.sasl_ssl else []
    _run_tool([*java, "kafka.tools.StorageTool", *format_command, *users], "format the KRaft storage")
    log.info("Formatted %s for cluster %s", broker.kraft_dir, cluster_id)


def _run_tool(command: list[str], what: str) -> str:
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BrokerError(f"Kafka's StorageTool did not {what} within {TOOL_TIMEOUT:.0f} s") from error
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise BrokerError(
            f"Kafka's StorageTool could not {what} (exit {result.returncode}):\n{_tail_text(output)}"
        )
    return result.stdout


def _launch(broker: Broker, libs: Path) -> int:
    command = [*_java_command(broker, libs, BROKER_HEAP), "kafka.Kafka", str(broker.server_properties)]
    broker.logs_dir.mkdir(parents=True, exist_ok=True)
    if broker.log_file.exists():
        broker.log_file.replace(broker.log_file.with_name(broker.log_file.name + ".1"))
    log.debug("Launching %s", " ".join(command))
    with broker.log_file.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=broker.data_dir,
            start_new_session=True,
            close_fds=True,
        )
    _children[process.pid] = process
    broker.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
    return process.pid


def _await_answer(broker: Broker, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(pid):
            code = _exit_code(pid)
            how = f" with code {code}" if code is not None else ""
            raise BrokerError(
                f"Kafka broker (pid {pid}) exited{how} before answering at {broker.bootstrap}; "
                f"last lines of {broker.log_file}:\n{log_tail(broker)}"
            )
        remaining = deadline - time.monotonic()
        if _port_accepts(broker.port) and answers(broker.bootstrap, min(3.0, max(remaining, 1.0))):
            return
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"Kafka broker (pid {pid}) did not answer at {broker.bootstrap} within {timeout:.0f} s; "
                f"last lines of {broker.log_file}:\n{log_tail(broker)}"
            )
        time.sleep(0.25)


def answers(bootstrap: str, timeout: float) -> bool:
    """Whether a Kafka broker at `bootstrap` answers a metadata request listing at least one broker."""

    def probe() -> bool:
        return asyncio.run(asyncio.wait_for(_describe_cluster(bootstrap, timeout), timeout))

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return probe()
        # Called from async code: asyncio.run needs a thread without a running loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(probe).result()
    except Exception as error:  # any failure means "not (yet) answering"
        log.debug("No metadata from %s yet: %r", bootstrap, error)
        return False


async def _describe_cluster(bootstrap: str, timeout: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    request_ms = max(int(timeout * 1000), 1000)
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_ms)
    try:
        await client.start()
        cluster = await client.describe_cluster()
        return bool(cluster.get("brokers"))
    finally:
        await client.close()


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def _check_ports_free(broker: Broker) -> None:
    ports = [("broker", broker.port), ("controller", broker.controller_port)]
    if broker.sasl_ssl is not None:
        ports.append(("SASL_SSL", broker.sasl_ssl.port))
    for name, port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the JVM binds: with SO_REUSEADDR, so only a live socket (not TIME_WAIT) is in the way.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError as error:
                raise BrokerError(
                    f"cannot start the Kafka broker: the {name} port {HOST}:{port} is already in use "
                    f"({error.strerror}); stop whatever listens there or choose another port"
                ) from error


# --- processes ----------------------------------------------------------------------------------------


def _running_pid(broker: Broker) -> int | None:
    """The pid of the live broker process of this data dir: from broker.pid, else found in /proc."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(broker.pid_file.read_text(encoding="utf-8").strip())
        if _alive(pid) and _is_our_broker(pid, broker):
            return pid
    for pid in _proc_pids():
        if _alive(pid) and _is_our_broker(pid, broker):
            with contextlib.suppress(OSError):
                broker.pid_file.write_text(f"{pid}\n", encoding="utf-8")
            return pid
    return None


def _proc_pids() -> Iterator[int]:
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                yield int(entry.name)


def _is_our_broker(pid: int, broker: Broker) -> bool:
    """Guards against a stale pid file naming some other process: the command line must be ours."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return not Path("/proc").is_dir()  # no procfs: trust the pid file
    return b"kafka.Kafka" in argv and os.fsencode(str(broker.server_properties)) in argv


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _exit_code(pid: int) -> int | None:
    child = _children.get(pid)
    return child.poll() if child is not None else None


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `grace` seconds, and wait for the end."""
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, grace):
        return
    log.warning("Kafka broker (pid %d) did not stop within %.0f s; killing it", pid, grace)
    _signal_group(pid, signal.SIGKILL)
    if not _wait_gone(pid, 10.0):
        raise BrokerError(f"Kafka broker (pid {pid}) survived SIGKILL")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    _children.pop(pid, None)
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- logs ---------------------------------------------------------------------------------------------


def log_tail(broker: Broker, lines: int = LOG_TAIL_LINES) -> str:
    """The first ERROR lines of broker.log (the cause often precedes a long shutdown), then its last lines."""
    try:
        with broker.log_file.open("rb") as handle:
            errors: list[bytes] = []
            for line in handle:
                if len(errors) < MAX_ERROR_LINES and _ERROR_LINE.search(line):
                    errors.append(line)
            handle.seek(0)
            tail = _tail_lines(handle, lines)
    except OSError:
        return f"({broker.log_file} does not exist)"
    if not errors:
        return tail
    first = b"".join(errors).decode("utf-8", "replace").rstrip()
    return f"first errors:\n{first}\nlast lines:\n{tail}"


def _tail_lines(handle: IO[bytes], lines: int) -> str:
    tail: deque[bytes] = deque(handle, maxlen=lines)
    return b"".join(tail).decode("utf-8", "replace").rstrip() or "(empty)"


def _tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"
