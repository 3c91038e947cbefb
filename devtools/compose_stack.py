"""docker-compose.yml run for real, on a machine where no image can be pulled (the compose test).

`built_images` builds the images of `docker-compose.yml` with the override
`deploy/compose.host-network.yml`; `running_stack` starts the stack (every service on the host
network, on 127.0.0.1 at ports the caller chose) and takes it down again at the end. What they
need, they make once per machine and reuse:

- a Docker daemon: the one running, else `dockerd` started here (and stopped at the end);
- Docker Compose: `docker compose` or a `docker-compose` on PATH of `MINIMUM_COMPOSE` or newer,
  else one built from its Go module (`COMPOSE_VERSION`) into the cache;
- `LOCAL_BASE`, a Debian bookworm image made with debootstrap from the mirror apt uses, the base of
  every image built (deploy/local-images/ stands in for the images that cannot be pulled);
- the wheels the crisismon image installs, downloaded by this Python's pip and served on 127.0.0.1
  to the image build (which cannot reach PyPI: see deploy/Dockerfile's PIP_INSTALL_OPTIONS);
- the Kafka jars of the local broker (`devtools.broker.resolve_jars`), in the Kafka image's context.

Images stay after the run (the next build reuses their layers); containers, networks and volumes
of the project go.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from devtools.broker import DEPLOY_DIR as BROKER_DEPLOY_DIR
from devtools.broker import HOST, default_cache_dir, resolve_jars

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "deploy" / "compose.host-network.yml")
LOCAL_IMAGES = ROOT / "deploy" / "local-images"
LOCAL_BASE = "crisismon-local/debian:bookworm"
"""The base of every image the test builds (named in deploy/compose.host-network.yml too)."""
DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
COMPOSE_VERSION = "v2.40.3"
MINIMUM_COMPOSE = (2, 24, 4)
"""An installed Compose older than this is not used: the override needs `!reset` (2.18 on), and
the stack ran with `COMPOSE_VERSION`; versions between are taken on trust."""
COMPOSE_MODULE = "github.com/docker/compose/v2"

WHEELS_PORT = 47613
DAEMON_TIMEOUT = 60.0
BUILD_TIMEOUT = 1800.0
COMMAND_TIMEOUT = 600.0
OUTPUT_TAIL_LINES = 40


class ComposeStackError(RuntimeError):
    """A step of running the stack failed; the message says which, with its output's last lines."""


def run(
    command: list[str],
    what: str,
    timeout: float = COMMAND_TIMEOUT,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: IO[bytes] | None = None,
) -> str:
    """Runs `command`; its output (stdout and stderr together), or ComposeStackError saying `what` failed."""
    try:
        result = subprocess.run(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ComposeStackError(f"could not {what} within {timeout:.0f} s:\n{tail(error.output)}") from error
    except FileNotFoundError as error:
        raise ComposeStackError(f"could not {what}: {command[0]} is not installed") from error
    output = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        raise ComposeStackError(f"could not {what} (exit {result.returncode}):\n{tail(output)}")
    return output


def tail(output: str | bytes | None) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    return "\n".join(text.splitlines()[-OUTPUT_TAIL_LINES:])


# --- the daemon and the client ------------------------------------------------------------------


def daemon_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


@contextlib.contextmanager
def docker_daemon(log_file: Path) -> Iterator[None]:
    """A Docker daemon to talk to: the running one, or `dockerd` started now and stopped at the end."""
    if daemon_answers():
        yield
        return
    log.info("starting dockerd (log: %s)", log_file)
    with log_file.open("ab") as output:
        try:
            daemon = subprocess.Popen(
                ["dockerd"], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        except FileNotFoundError as error:
            raise ComposeStackError(
                "no Docker daemon runs and dockerd is not installed (apt: docker.io)"
            ) from error
    try:
        deadline = time.monotonic() + DAEMON_TIMEOUT
        while not daemon_answers():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise ComposeStackError(f"dockerd did not start:\n{tail(log_file.read_bytes())}")
            time.sleep(0.5)
        yield
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def compose_command(cache_dir: Path) -> list[str]:
    """How to call Docker Compose here: the CLI plugin or a `docker-compose` on PATH if either is
    `MINIMUM_COMPOSE` or newer, else one built once from its Go module."""
    installed: list[list[str]] = [["docker", "compose"]]
    if on_path := shutil.which("docker-compose"):
        installed.append([on_path])
    for command in installed:
        with contextlib.suppress(ComposeStackError):
            if (
                compose_version(run([*command, "version", "--short"], "ask Compose its version"))
                >= MINIMUM_COMPOSE
            ):
                return command
    built = cache_dir / f"compose-{COMPOSE_VERSION}" / "docker-compose"
    if not built.exists():
        build_compose(built)
    return [str(built)]


def compose_version(text: str) -> tuple[int, ...]:
    """(2, 40, 3) from "v2.40.3" or "2.40.3-desktop.1"; () when it names none."""
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(part) for part in found.groups()) if found else ()


def build_compose(binary: Path) -> None:
    """Builds Docker Compose from its Go module. Not `go install`: its go.mod has exclude directives,
    which only a main module may have, so it is built inside a copy of the module's source."""
    log.info(
        "building Docker Compose %s from Go modules (once per machine, about 2 minutes)", COMPOSE_VERSION
    )
    module = f"{COMPOSE_MODULE}@{COMPOSE_VERSION}"
    downloaded = json.loads(run(["go", "mod", "download", "-json", module], f"download {module}"))
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "compose"
        shutil.copytree(downloaded["Dir"], source)  # the module cache is read-only
        version_flag = f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
        partial = binary.with_suffix(".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            f"-s -w {version_flag}",
            "-o",
            str(partial),
            "./cmd",
        ]
        run(command, f"build Docker Compose {COMPOSE_VERSION}", timeout=BUILD_TIMEOUT, cwd=source)
    partial.replace(binary)


# --- what the images are built from -------------------------------------------------------------


def image_exists(name: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False).returncode == 0
    )


def apt_mirror() -> str:
    """The mirror apt uses here for Debian's `DEBIAN_SUITE` (enabled one-line or deb822 sources),
    else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for source in sources:
        with contextlib.suppress(OSError):
            for line in source.read_text().splitlines():
                # deb [options] URI SUITE COMPONENTS...
                if found := re.match(rf"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{DEBIAN_SUITE}\s", line):
                    return found.group(1)
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", source.read_text()):
                fields: dict[str, str] = dict(re.findall(r"(?m)^([\w-]+):\s*(.*)$", stanza))
                if fields.get("Enabled", "yes") != "no" and DEBIAN_SUITE in fields.get("Suites", "").split():
                    return fields.get("URIs", DEFAULT_MIRROR).split()[0]
    return DEFAULT_MIRROR


def ensure_base_image() -> None:
    """`LOCAL_BASE`, made once: debootstrap's minimal bookworm, imported as an image."""
    if image_exists(LOCAL_BASE):
        return
    mirror = apt_mirror()
    log.info("making %s with debootstrap from %s (once per machine, about a minute)", LOCAL_BASE, mirror)
    with tempfile.TemporaryDirectory() as scratch:
        rootfs = Path(scratch) / "rootfs"
        try:
            command = ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(rootfs), mirror]
            run(command, "debootstrap Debian", BUILD_TIMEOUT)
        finally:
            unmount_within(rootfs)  # an interrupted debootstrap leaves /proc and /sys mounted there
        import_image(rootfs, LOCAL_BASE)


def unmount_within(rootfs: Path) -> None:
    for mount in ("dev/pts", "proc", "sys"):
        if os.path.ismount(rootfs / mount):
            subprocess.run(["umount", "--lazy", str(rootfs / mount)], check=False)


def import_image(rootfs: Path, name: str) -> None:
    """`tar -c rootfs | docker import - name`, failing if either side does."""
    archive = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    try:
        with archive.stdout:  # closed here too, so that tar ends when the import does
            run(["docker", "import", "-", name], f"import {name}", stdin=archive.stdout)
    finally:
        if archive.wait(timeout=60) != 0:
            raise ComposeStackError(f"tar could not archive {rootfs} (exit {archive.returncode})")


def download_wheels(into: Path) -> None:
    """The wheels of the project's dependencies, of what compiles its core and of its build
    backend, for Debian's Python 3.11."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    wanted = [
        *project["dependencies"],
        *project["optional-dependencies"]["compile"],
        *pyproject["build-system"]["requires"],
    ]
    into.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(into)]
    command += ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    command += [option for tag in image_platforms() for option in ("--platform", tag)]
    command += ["--constraint", str(ROOT / "constraints.txt"), *wanted]
    run(command, "download the wheels of the crisismon image", BUILD_TIMEOUT)


def image_platforms() -> list[str]:
    """The wheel platforms bookworm's glibc (2.36) runs, on this machine's architecture."""
    arch = platform.machine()
    manylinux = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)]
    return [
        *manylinux,
        f"manylinux2014_{arch}",
        f"manylinux2010_{arch}",
        f"manylinux1_{arch}",
        f"linux_{arch}",
    ]


@contextlib.contextmanager
def served(directory: Path) -> Iterator[str]:
    """`directory` over HTTP on 127.0.0.1 (a pip --find-links page), for as long as the context lasts.

    On `WHEELS_PORT` if it is free: the address is a build argument of the crisismon image, and
    the image's layers are reused only while it stays the same."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    try:
        server = http.server.ThreadingHTTPServer((HOST, WHEELS_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="wheel-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug("wheel server: " + format, *args)


def kafka_build_context(version: str, into: Path) -> Path:
    """deploy/local-images/kafka.Dockerfile's context: its scripts, the broker's log4j files, the jars."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copytree(resolve_jars(version), into / "libs", dirs_exist_ok=True)
    for name in ("kafka.Dockerfile", "kafka-entrypoint.sh", "kafka-broker-api-versions.sh"):
        shutil.copy2(LOCAL_IMAGES / name, into / name)
    for name in ("log4j.properties", "log4j2.properties"):
        shutil.copy2(BROKER_DEPLOY_DIR / name, into / name)
    return into


def write_prometheus_config(path: Path, worker_ports: list[int], interval_seconds: int = 2) -> Path:
    """Prometheus' file for the host network: the workers' ports (no Docker DNS to find them),
    the repository's rules (mounted beside it), and short intervals so a test need not wait."""
    config = {
        "global": {"scrape_interval": f"{interval_seconds}s", "evaluation_interval": f"{interval_seconds}s"},
        "rule_files": ["crisismon.rules.yml"],
        "scrape_configs": [
            {
                "job_name": "crisismon-worker",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"{HOST}:{port}" for port in worker_ports]}],
            }
        ],
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    return path


# --- the stack ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackPorts:
    """Where each service listens on 127.0.0.1."""

    kafka: int
    controller: int
    worker: int
    worker_2: int
    api: int
    dashboard: int
    prometheus: int


UNCHOSEN_PORTS = StackPorts(0, 0, 0, 0, 0, 0, 0)
"""What the override's port variables hold while images are built (nothing listens then)."""


@dataclass(frozen=True)
class ComposeStack:
    """One compose project of docker-compose.yml and the host-network override."""

    compose: list[str]
    project: str
    ports: StackPorts
    environment: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.ports.kafka}"

    def run(self, *args: str, what: str, timeout: float = COMMAND_TIMEOUT) -> str:
        files = [option for path in COMPOSE_FILES for option in ("--file", str(path))]
        command = [
            *self.compose,
            "--project-name",
            self.project,
            "--project-directory",
            str(ROOT),
            *files,
            *args,
        ]
        return run(command, what, timeout, env={**os.environ, **self.environment}, cwd=ROOT)

    def build(self) -> None:
        self.run("build", what="build the stack's images", timeout=BUILD_TIMEOUT)

    def up(self) -> None:
        """Starts the stack and waits until every service is healthy (or done, for `topics`)."""
        self.run("up", "--detach", "--wait", "--no-build", what="start the stack")

    def replay(self) -> str:
        """Runs the `replay` profile's one-shot service to its end; its output."""
        return self.run("--profile", "replay", "run", "--rm", "replay", what="replay the article's crisis")

    def down(self, volumes: bool = False) -> None:
        self.run(
            "--profile",
            "replay",
            "down",
            "--remove-orphans",
            *(["--volumes"] if volumes else []),
            what="stop the stack",
        )

    def logs(self) -> str:
        """Every service's log, for a test that failed."""
        try:
            return self.run("logs", "--no-color", "--timestamps", what="read the stack's logs")
        except ComposeStackError as error:
            return str(error)


def stack_environment(
    ports: StackPorts, kafka_version: str, kafka_context: Path, wheels_url: str, prometheus_config: Path
) -> dict[str, str]:
    """The variables deploy/compose.host-network.yml asks for, and the classic builder (BuildKit
    would pull its Dockerfile frontend and needs a builder for host-network builds)."""
    return {
        "DOCKER_BUILDKIT": "0",
        "COMPOSE_PROFILES": "",  # the caller's would add services (grafana) that cannot run here
        "CRISISMON_COMPOSE_KAFKA_PORT": str(ports.kafka),
        "CRISISMON_COMPOSE_CONTROLLER_PORT": str(ports.controller),
        "CRISISMON_COMPOSE_WORKER_PORT": str(ports.worker),
        "CRISISMON_COMPOSE_WORKER_2_PORT": str(ports.worker_2),
        "CRISISMON_COMPOSE_API_PORT": str(ports.api),
        "CRISISMON_COMPOSE_DASHBOARD_PORT": str(ports.dashboard),
        "CRISISMON_COMPOSE_PROMETHEUS_PORT": str(ports.prometheus),
        "CRISISMON_COMPOSE_PROMETHEUS_CONFIG": str(prometheus_config),
        "CRISISMON_COMPOSE_KAFKA_VERSION": kafka_version,
        "CRISISMON_COMPOSE_KAFKA_CONTEXT": str(kafka_context),
        "CRISISMON_COMPOSE_WHEELS_URL": wheels_url,
    }


def compose_kafka_version() -> str:
    """The Kafka version of docker-compose.yml's image (apache/kafka:<version>): the stand-in's."""
    image: str = yaml.safe_load(COMPOSE_FILES[0].read_text(encoding="utf-8"))["services"]["kafka"]["image"]
    return image.rpartition(":")[2]


@dataclass(frozen=True)
class StackImages:
    """The stack's images, built: what starting a project of them needs."""

    compose: list[str]
    environment: Callable[[StackPorts], dict[str, str]]
    """The variables of deploy/compose.host-network.yml for the given ports."""
    work_dir: Path


@contextlib.contextmanager
def built_images(work_dir: Path) -> Iterator[StackImages]:
    """The daemon answering, Compose found or built, the Debian base made and the images built.

    A daemon started here and the wheel server stay until the context ends. The build is the slow
    part of a first run (minutes); tests/compose_fixtures.py runs it beside the rest of a session."""
    cache_dir = default_cache_dir()
    kafka_version = compose_kafka_version()
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(docker_daemon(work_dir / "dockerd.log"))
        compose = compose_command(cache_dir)
        ensure_base_image()
        download_wheels(cache_dir / "wheels")
        environment = functools.partial(
            stack_environment,
            kafka_version=kafka_version,
            kafka_context=kafka_build_context(kafka_version, work_dir / "kafka-image"),
            wheels_url=cleanup.enter_context(served(cache_dir / "wheels")),
            prometheus_config=work_dir / "prometheus.yml",
        )
        ComposeStack(compose, "crisismon-build", UNCHOSEN_PORTS, environment(UNCHOSEN_PORTS)).build()
        yield StackImages(compose, environment, work_dir)


@contextlib.contextmanager
def running_stack(
    images: StackImages, project: str, choose_ports: Callable[[], StackPorts]
) -> Iterator[ComposeStack]:
    """The stack up (every service healthy); down with its volumes at the end.

    The ports are chosen now, once the images are built: a first build takes minutes, and a port
    found free before it may not be free after."""
    ports = choose_ports()
    write_prometheus_config(images.work_dir / "prometheus.yml", [ports.worker, ports.worker_2])
    stack = ComposeStack(images.compose, project, ports, images.environment(ports))
    with contextlib.ExitStack() as cleanup:
        cleanup.push(functools.partial(take_down, stack))
        try:
            stack.up()
        except ComposeStackError as error:
            raise ComposeStackError(f"{error}\n--- the stack's logs ---\n{tail(stack.logs())}") from error
        yield stack


def take_down(stack: ComposeStack, *exception: object) -> None:
    """`down --volumes` at the end; if it fails while another error is on its way, that one is
    the news (this one is logged), else this one is raised."""
    try:
        stack.down(volumes=True)
    except ComposeStackError:
        if exception[1] is None:
            raise
        log.exception("could not take the stack down after an earlier error")
