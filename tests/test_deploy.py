"""The container stack and the monitoring files, checked without Docker.

Nothing else runs docker-compose.yml, the Dockerfile, the Prometheus rules or the Grafana dashboard,
so a renamed command, setting or metric would break them silently. These tests tie each of them
to the code: the commands to the CLI, the variables to the settings, the metric names to the
worker's registry, the level alerts to the engine's levels.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import click
import jsonschema
import pytest
import yaml

from devtools.broker import KAFKA_VERSION_DEFAULT, KAFKA_VERSION_PREVIOUS
from schemas.outputs import IndexUpdate, Level
from services.cli import cli
from services.core.config import EngineConfig
from services.core.levels import Passage, Standing, step
from services.kafka.sensors import faust_sensors
from services.settings import Settings
from services.web.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = Path(__file__).parent / "reference" / "compose-spec.json"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "crisismon.rules.yml"
RULES_TEST = PROMETHEUS_DIR / "crisismon.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "crisismon.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "crisismon.yml"
CRISISMON = Path(sys.executable).parent / "crisismon"

METRIC_NAME = re.compile(r"\b(?:crisismon|faust)_[a-zA-Z0-9_]+")
"""Our metrics and Faust's (`crisismon-worker`, the job, has a hyphen and does not match)."""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def crisismon_services() -> dict[str, dict[str, Any]]:
    """The services that run our image (built from deploy/Dockerfile), whose ENTRYPOINT is `crisismon`."""
    (image,) = {
        service["image"]
        for service in services().values()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }
    return {name: service for name, service in services().items() if service["image"] == image}


# --- the Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: what the image is made of."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT or CMD (the shell form would need a shell)."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(item, str) for item in parsed), arguments
    return parsed


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in runtime_stage():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_command(service: dict[str, Any]) -> list[str]:
    """What runs after the ENTRYPOINT: the service's `command`, else the image's CMD."""
    command = service.get("command")
    if command is None:
        return image_cmd()
    assert isinstance(command, list), "exec form keeps each argument whole"
    return [str(item) for item in command]


def image_cmd() -> list[str]:
    return exec_form(next(arguments for keyword, arguments in runtime_stage() if keyword == "CMD"))


def image_paths() -> dict[PurePosixPath, Path]:
    """Where the runtime stage copies files from the build context: image path → repository path."""
    workdir = PurePosixPath("/")
    copies: dict[PurePosixPath, Path] = {}
    for keyword, arguments in runtime_stage():
        if keyword == "WORKDIR":
            workdir = workdir / arguments
        elif keyword == "COPY" and not arguments.startswith("--from"):
            source, destination = arguments.split()
            copies[workdir / destination] = ROOT / source
    return copies


def image_working_dir() -> PurePosixPath:
    workdir = PurePosixPath("/")
    for keyword, arguments in runtime_stage():
        if keyword == "WORKDIR":
            workdir = workdir / arguments
    return workdir


def test_image_runs_crisismon_as_a_non_root_user() -> None:
    stage = runtime_stage()
    assert exec_form(next(a for k, a in stage if k == "ENTRYPOINT")) == ["crisismon"]
    user = next(a for k, a in stage if k == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    base = stage[0][1].split()[0]
    assert base == "${PYTHON_IMAGE}"
    pinned = next(a for k, a in dockerfile_instructions() if k == "ARG" and a.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", pinned)


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".crisismon", "**/__pycache__"} <= ignored
    needed = {"pyproject.toml", "constraints.txt", "setup.py", "schemas", "services", "replay"}
    assert not needed & ignored


def test_the_package_data_holds_every_data_file() -> None:
    """The image installs the project from a wheel (not editable): a data file that no package-data
    pattern names is missing there, and the engine fails in the container only."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["*"]
    missing = [
        str(path.relative_to(ROOT))
        for package in ("schemas", "services", "replay")
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc", ".so"}
        and "__pycache__" not in path.parts
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
    ]
    assert not missing


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))
    errors = [
        f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(compose())
    ]
    assert not errors
    # The schema is strict enough to catch a misspelled key, so the check above means something.
    assert not validator.is_valid({"services": {"worker": {"imgae": "crisismon:local"}}})


def leaf_command(arguments: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """Splits `topics create --bootstrap kafka:9092` into (["topics", "create"], the click command,
    the rest), following click's groups."""
    path: list[str] = []
    command: click.Command = cli
    rest = list(arguments)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    return path, command, rest


def crisismon_command_lines() -> Iterator[tuple[str, list[str]]]:
    for name, service in crisismon_services().items():
        yield name, image_command(service)
    yield "Dockerfile CMD", image_cmd()


@pytest.mark.parametrize(("where", "arguments"), list(crisismon_command_lines()))
def test_every_crisismon_command_that_the_stack_runs_exists(
    where: str, arguments: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, command, rest = leaf_command(arguments)
    assert path, f"{where}: {arguments} names no crisismon command"
    assert not isinstance(command, click.Group), f"{where}: `crisismon {' '.join(path)}` needs a subcommand"
    run = subprocess.run([CRISISMON, *path, "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # The whole command line parses (options, their values, the arguments) without running it,
    # from the repository root, which is the image's working directory.
    monkeypatch.chdir(ROOT)
    with command.make_context(" ".join(path), list(rest)):
        pass


def test_files_the_stack_reads_are_in_the_image() -> None:
    """`replay replay/data/...` runs in the image's working directory: the file must be copied there."""
    copies = image_paths()
    workdir = image_working_dir()
    for name, service in crisismon_services().items():
        _, command, rest = leaf_command(image_command(service))
        context = command.make_context(name, list(rest), resilient_parsing=True)
        for value in context.params.get("paths") or ():
            in_image = workdir / PurePosixPath(value)
            sources = [
                source / in_image.relative_to(destination)
                for destination, source in copies.items()
                if in_image.is_relative_to(destination)
            ]
            assert sources and all(source.is_file() for source in sources), f"{name}: {in_image}"


def crisismon_variables() -> Iterator[tuple[str, str, str]]:
    """(where, name, value) of every CRISISMON_* variable the stack sets."""
    for name, value in dockerfile_env().items():
        if name.startswith("CRISISMON_"):
            yield "Dockerfile", name, value
    for service_name, service in services().items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for name, value in environment.items():
            if name.startswith("CRISISMON_"):
                yield service_name, name, str(value)


def test_every_crisismon_variable_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = list(crisismon_variables())
    assert any(name == "CRISISMON_WEB_HOST" for _, name, _ in variables), (
        "the worker must listen beyond 127.0.0.1"
    )
    for where, name, value in variables:
        field = name.removeprefix("CRISISMON_").lower()
        assert field in Settings.model_fields, f"{where}: {name} is not a setting"
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("CRISISMON_") and name not in {n for _, n, _ in variables}:
            monkeypatch.delenv(name)
    Settings()  # the values are valid too


def test_every_crisismon_service_is_told_where_kafka_is() -> None:
    """The address comes from a shared `environment:`; a service's own would replace it silently."""
    for name, service in crisismon_services().items():
        assert service.get("environment", {}).get("CRISISMON_KAFKA_BOOTSTRAP") == "kafka:9092", name


def test_workers_scale() -> None:
    """`docker compose up --scale worker=3` needs replicas without a fixed name or host port."""
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert not any("/var/lib/crisismon" in str(volume) for volume in worker.get("volumes", []))


def test_the_dashboard_is_the_api_services_and_the_workers_serve_no_view() -> None:
    """`crisismon api` serves the dashboard and the API; the workers, with no view to read the
    topics into, spend their time on their partitions."""
    compose = services()
    assert compose["api"]["command"] == ["api"]
    assert compose["dashboard"]["command"][-1] == f"TCP:api:{Settings().web_port}"
    assert compose["worker"]["environment"]["CRISISMON_API_VIEW"] == "false"
    assert compose["worker"]["environment"]["CRISISMON_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_the_worker_port_is_the_one_prometheus_and_the_healthcheck_use() -> None:
    port = Settings.model_fields["web_port"].default
    worker = services()["worker"]
    assert str(port) in map(str, worker["expose"])
    assert f"127.0.0.1:{port}/health" in " ".join(worker["healthcheck"]["test"])
    (job,) = [
        job
        for job in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]
        if "dns_sd_configs" in job
    ]
    assert job["job_name"] == "crisismon-worker"
    assert job["metrics_path"] == "/metrics"
    (dns,) = job["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["type"] == "A" and dns["port"] == port


def test_kafka_is_a_version_the_suite_tests() -> None:
    """The compose stack stays on 3.9 until its Kafka stand-in fetches 4.x's kafka-tools jars."""
    image, _, tag = services()["kafka"]["image"].partition(":")
    assert image == "apache/kafka"
    assert tag in (KAFKA_VERSION_DEFAULT, KAFKA_VERSION_PREVIOUS)


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        if name in crisismon_services():
            continue
        _, _, tag = service["image"].partition(":")
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(\.\d+)?(@sha256:[0-9a-f]{64})?", tag), (
            f"{name}: {service['image']}"
        )


def host_path(service: str, container_path: str) -> Path:
    """The repository file that a bind mount of the service shows at container_path."""
    for volume in services()[service].get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith(".") and PurePosixPath(container_path).is_relative_to(target):
            return ROOT / source / PurePosixPath(container_path).relative_to(target)
    raise AssertionError(f"{service} mounts nothing from the repository at {container_path}")


def test_mounted_configuration_is_where_the_services_look() -> None:
    (config_flag,) = [
        flag for flag in services()["prometheus"]["command"] if flag.startswith("--config.file=")
    ]
    assert host_path("prometheus", config_flag.partition("=")[2]) == PROMETHEUS_DIR / "prometheus.yml"
    assert host_path("grafana", "/etc/grafana/provisioning/datasources/prometheus.yml") == DATASOURCES
    (provider,) = load_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert host_path("grafana", provider["options"]["path"]) == DASHBOARD.parent
    home = services()["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path("grafana", home) == DASHBOARD


# --- Prometheus -----------------------------------------------------------------------------------


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    if executable is None:
        pytest.fail("promtool is missing: install Debian's `prometheus` package (.ci/run does)")
    return subprocess.run(
        [executable, *map(str, arguments)], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", RULES.name],
        ["test", "rules", RULES_TEST.name],
    ],
    ids=" ".join,
)
def test_promtool(arguments: list[str]) -> None:
    run = promtool(*arguments)
    assert run.returncode == 0, run.stdout + run.stderr


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def test_level_alerts_are_the_engines_levels() -> None:
    """One alert per level above normal, firing on the level the engine exported; no threshold of
    the engine is repeated in PromQL."""
    by_name = {rule["alert"]: rule for rule in rules()}
    for level in Level:
        name = f"Crisis{level.value.capitalize()}"
        if level is Level.NORMAL:
            assert name not in by_name
            continue
        assert re.search(rf"\(crisismon_level == {level.rank}\)", by_name[name]["expr"]), name
        assert by_name[name]["labels"]["level"] == level.value
    for rule in rules():
        assert not re.search(r"crisismon_(de_)?escalation_index\s*[<>]", rule["expr"]), rule["alert"]


def series_values(notation: str) -> list[float | None]:
    """promtool's plain notation only ("0 10 17"; `_` no sample, `stale` a series that left the
    scrape, both None): the story's steps are spelled out."""
    return [None if value in {"_", "stale"} else float(value) for value in notation.split()]


def story_series() -> dict[str, dict[str, list[float | None]]]:
    """The hysteresis story's input series: metric name → dyad → samples."""
    (story,) = [test for test in load_yaml(RULES_TEST)["tests"] if "hysteresis" in test["name"]]
    series: dict[str, dict[str, list[float | None]]] = {}
    for item in story["input_series"]:
        name, labels = item["series"].split("{", 1)
        (dyad,) = re.findall(r'dyad="([A-Z]{3}-[A-Z]{3})"', labels)
        series.setdefault(name, {})[dyad] = series_values(item["values"])
    return series


def samples(series: dict[str, list[float | None]], dyad: str, steps: int) -> list[float | None]:
    """A dyad's samples over the story's `steps`, None where it has none: one series the worker
    omits (the open crisis, when none is) is missing, or ends early on `stale`."""
    found = series.get(dyad, [])
    return found + [None] * (steps - len(found))


def test_the_hysteresis_story_is_what_the_engine_computes() -> None:
    """The levels and open crises in the promtool story are what the engine's levels
    (`services.core.levels.step`) make of its indices and baselines, each sample a week of event
    time after the last, within the crisis memory. The story's indices are what each week stood
    at, not a decay between events, so it is told without the dwell."""
    series = story_series()
    config = EngineConfig(min_dwell="0s")
    week = timedelta(days=7).total_seconds()
    dyads = set(series["crisismon_escalation_index"])
    assert {"IRN-PAK", "ISR-LBN"} <= dyads
    for dyad in dyads:
        steps = len(series["crisismon_escalation_index"][dyad])
        columns = [
            [value or 0.0 for value in samples(series.get(name, {}), dyad, steps)]
            for name in (
                "crisismon_escalation_index",
                "crisismon_de_escalation_index",
                "crisismon_escalation_baseline",
                "crisismon_de_escalation_baseline",
            )
        ]
        standing, levels, crises = Standing(), [], []
        for number, (escalation, de_escalation, baseline, de_baseline) in enumerate(
            zip(*columns, strict=True)
        ):
            indices = (escalation, de_escalation)
            # each sample stands for its whole event time
            passage = Passage(escalation, de_escalation, (number - 1) * week) if number else None
            standing, _ = step(
                standing, number * week, indices, passage, (baseline, de_baseline), True, config
            )
            levels.append(float(standing.level.rank))
            crises.append(standing.crisis_since is not None)
        assert samples(series["crisismon_level"], dyad, steps) == levels, dyad
        crisis = samples(series["crisismon_crisis_since_timestamp_seconds"], dyad, steps)
        assert [since is not None for since in crisis] == crises, dyad
    assert series["crisismon_escalation_index"]["IRN-PAK"] == [0, 10, 17, 12, 5, 2]
    assert any(series["crisismon_escalation_baseline"]["ISR-LBN"]), "a dyad judged against its own normal"
    assert any(series["crisismon_crisis_since_timestamp_seconds"]["IRN-PAK"]), "a crisis that opens"


# --- metric names ---------------------------------------------------------------------------------


@cache
def exported_metric_names() -> frozenset[str]:
    """The sample names the worker's registry exports, Faust's sensor included."""
    metrics = WorkerMetrics(max_dyads=10)
    faust_sensors(metrics.registry)
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    return frozenset(
        family.name + suffix for family in metrics.registry.collect() for suffix in suffixes[family.type]
    )


def unknown_metrics(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text)) - exported_metric_names()


def test_unknown_metrics_are_noticed() -> None:
    assert unknown_metrics("rate(crisismon_events_total[5m]) + crisismon_level") == set()
    assert unknown_metrics("crisismon_events + crisismon_escalation_idx") == {
        "crisismon_events",
        "crisismon_escalation_idx",
    }
    assert unknown_metrics("faust_consumer_commit_latency_bucket faust_rebalances") == {"faust_rebalances"}


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query


def test_dashboard_uses_only_metrics_the_worker_exports() -> None:
    queries = list(dashboard_queries())
    used = set().union(*(METRIC_NAME.findall(expr) for _, expr in queries))
    assert {"crisismon_escalation_index", "crisismon_level", "crisismon_consumer_lag_records"} <= used
    for where, expr in queries:
        assert not unknown_metrics(expr), f"{where}: {expr}"


def per_dyad_gauges() -> set[str]:
    """The gauges the worker exports per dyad, from an index update with a normal and a crisis."""
    metrics = WorkerMetrics(max_dyads=10)
    crisis_since = datetime(2024, 1, 17, 12, tzinfo=UTC)
    update = IndexUpdate(
        dyad="IRN-PAK",
        as_of=crisis_since,
        escalation_index=20.0,
        de_escalation_index=3.0,
        level=Level.WARNING,
        triggered_by="pkir24-007",
        events_in_window=5,
        escalation_baseline=4.0,
        de_escalation_baseline=2.0,
        crisis_since=crisis_since,
        scale="gdelt",
        scale_version="v1",
        config_hash="0",
    )
    metrics.observe_index(update, partition=0)
    return {
        family.name
        for family in metrics.registry.collect()
        if family.type == "gauge" and any("dyad" in sample.labels for sample in family.samples)
    }


def test_dashboard_shows_every_per_dyad_gauge() -> None:
    """A gauge added per dyad (the indices, their normals, the level, the open crisis) is drawn."""
    gauges = per_dyad_gauges()
    assert {
        "crisismon_escalation_baseline",
        "crisismon_de_escalation_baseline",
        "crisismon_crisis_since_timestamp_seconds",
    } <= gauges
    used = set().union(*(METRIC_NAME.findall(expr) for _, expr in dashboard_queries()))
    assert gauges - used == set()


def test_rules_use_only_metrics_the_worker_exports() -> None:
    """Expressions, annotation templates and the series the rule tests feed in."""
    texts = [RULES.read_text(encoding="utf-8")]
    texts += [item["series"] for test in load_yaml(RULES_TEST)["tests"] for item in test["input_series"]]
    for text in texts:
        assert not unknown_metrics(text), text[:200]


def test_dashboard_queries_are_promql(tmp_path: Path) -> None:
    """promtool parses each query, with Grafana's variables replaced by what Grafana would send."""
    grafana_variables = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h", "$dyad": ".*"}
    recording = []
    for number, (_, expr) in enumerate(dashboard_queries()):
        if expr.startswith("label_values("):
            continue  # Grafana's own function, not PromQL
        for variable, value in grafana_variables.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        recording.append({"record": f"dashboard:query{number}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}), encoding="utf-8")
    run = promtool("check", "rules", path)
    assert run.returncode == 0, run.stdout + run.stderr


# --- Grafana --------------------------------------------------------------------------------------


def panel_titled(title: str) -> dict[str, Any]:
    panels: list[dict[str, Any]] = [panel for panel in dashboard()["panels"] if panel["title"] == title]
    (panel,) = panels
    return panel


def test_the_surge_panel_is_the_index_above_its_normal_with_the_engines_thresholds() -> None:
    """The surge is what the levels follow; its dashed lines are the engine's default thresholds."""
    panel = panel_titled("Escalation surge")
    (target,) = panel["targets"]
    assert re.search(r"crisismon_escalation_index\{[^}]*\} - crisismon_escalation_baseline\b", target["expr"])
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "dashed"
    config = EngineConfig()
    assert [threshold["value"] for threshold in defaults["thresholds"]["steps"]] == [
        None,
        *(config.threshold(level) for level in list(Level)[1:]),
    ]


def test_the_indices_are_drawn_with_their_normal_dashed() -> None:
    for title, baseline in [
        ("Escalation index", "crisismon_escalation_baseline"),
        ("De-escalation index", "crisismon_de_escalation_baseline"),
    ]:
        panel = panel_titled(title)
        (normal,) = [target for target in panel["targets"] if baseline in target["expr"]]
        (override,) = [
            override
            for override in panel["fieldConfig"]["overrides"]
            if override["matcher"] == {"id": "byFrameRefID", "options": normal["refId"]}
        ]
        styles = {prop["id"]: prop["value"] for prop in override["properties"]}
        assert styles["custom.lineStyle"]["fill"] == "dash", title


def test_the_open_crises_table_shows_since_when_as_a_date() -> None:
    """Grafana's date units read milliseconds: the seconds the worker exports are multiplied."""
    panel = panel_titled("Dyads in an open crisis")
    targets = {target["refId"]: target for target in panel["targets"]}
    assert all(target["instant"] and target["format"] == "table" for target in targets.values())
    assert re.search(r"crisismon_crisis_since_timestamp_seconds\{[^}]*\}\) \* 1000$", targets["A"]["expr"])
    for ref in set(targets) - {"A"}:  # the other columns only for the dyads in a crisis
        assert targets[ref]["expr"].endswith("and on (dyad) crisismon_crisis_since_timestamp_seconds")
    (organize,) = [change for change in panel["transformations"] if change["id"] == "organize"]
    since = organize["options"]["renameByName"]["Value #A"]
    (unit,) = [
        prop["value"]
        for override in panel["fieldConfig"]["overrides"]
        if override["matcher"] == {"id": "byName", "options": since}
        for prop in override["properties"]
        if prop["id"] == "unit"
    ]
    assert unit == "dateTimeAsIso"
    assert panel["options"]["sortBy"] == [{"displayName": since, "desc": False}]


def test_panels_use_the_provisioned_datasource() -> None:
    provisioned = {source["uid"]: source for source in load_yaml(DATASOURCES)["datasources"]}
    assert provisioned["crisismon-prometheus"]["url"] == "http://prometheus:9090"
    assert "prometheus" in services()
    used = [panel.get("datasource") for panel in dashboard()["panels"] if panel["type"] != "row"]
    used += [target["datasource"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]
    used += [variable["datasource"] for variable in dashboard()["templating"]["list"]]
    assert used
    for datasource in used:
        assert datasource["uid"] in provisioned
        assert datasource["type"] == provisioned[datasource["uid"]]["type"]


def test_dashboard_shows_the_engines_levels_by_name() -> None:
    """Every panel that shows crisismon_level names the levels (in its defaults or in the override
    of its level column)."""
    panels = [
        panel for panel in dashboard()["panels"] if "crisismon_level" in json.dumps(panel.get("targets"))
    ]
    assert len(panels) >= 2  # the timeline and the table of open crises
    for panel in panels:
        field_config = panel["fieldConfig"]
        mappings = [field_config["defaults"].get("mappings", [])] + [
            prop["value"]
            for override in field_config["overrides"]
            for prop in override["properties"]
            if prop["id"] == "mappings"
        ]
        (mapping,) = [mapping for found in mappings for mapping in found]
        assert {int(value): option["text"] for value, option in mapping["options"].items()} == {
            level.rank: level.value for level in Level
        }, panel["title"]
    (dyad,) = [variable for variable in dashboard()["templating"]["list"] if variable["name"] == "dyad"]
    assert dyad["definition"] == "label_values(crisismon_escalation_index, dyad)"
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
