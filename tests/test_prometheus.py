"""A real Prometheus (the Debian package) scrapes a real worker and evaluates the project's rules;
and what the worker's exposition holds for Prometheus to read."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import Broker
from schemas.outputs import IndexUpdate, Level
from services.web.metrics import WorkerMetrics
from tests.live import WorkerProcess, answers, eventually, latest_index, replay, wait_processed
from tests.ports import free_port
from tests.test_pipeline import ARTICLE

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "crisismon.rules.yml"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=10) as answer:
            result: list[dict[str, Any]] = json.load(answer)["data"]["result"]
            return result

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing, with their annotations."""
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=10) as answer:
            alerts: list[dict[str, Any]] = json.load(answer)["data"]["alerts"]
            return alerts

    def value(self, metric: str, dyad: str) -> float | None:
        """The dyad's sample of `metric` (None: no series), once Prometheus has scraped the dyad."""
        eventually(lambda: self.query(f'crisismon_level{{dyad="{dyad}"}}'), what=f"{dyad} to be scraped")
        samples = self.query(f'{metric}{{dyad="{dyad}"}}')
        if not samples:
            return None
        (sample,) = samples
        return float(sample["value"][1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[WorkerProcess], Prometheus]]:
    """Starts Prometheus scraping a worker every second, with the project's alerting rules."""
    binary = shutil.which("prometheus")
    assert binary, "the Debian package `prometheus` is missing (.ci/run installs it)"
    started: list[subprocess.Popen[bytes]] = []

    def start(target: WorkerProcess) -> Prometheus:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "crisismon-worker",
                            "static_configs": [{"targets": [f"127.0.0.1:{target.web_port}"]}],
                        }
                    ],
                }
            )
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        started.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        server = Prometheus(f"http://127.0.0.1:{port}")
        eventually(lambda: answers(f"{server.url}/-/ready"), timeout=60, what="Prometheus to answer")
        return server

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def quarrels(days: int = 42) -> str:
    """ARG-CHL's every day for six weeks: criticism, a visit, and criticism again on odd days.
    Enough events for a normal of its own on both indices, and no crisis: it is its normal."""
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    lines = []
    for day in range(days):
        for number, cameo in enumerate(("111", "042", "111")[: 2 + day % 2]):
            event = {
                "event_id": f"argchl-{day:02d}-{number}",
                "event_time": (start + timedelta(days=day, hours=number)).isoformat(),
                "source": {"code": "ARGGOV", "name": "Argentina (government)", "country": "ARG"},
                "target": {"code": "CHLGOV", "name": "Chile (government)", "country": "CHL"},
                "cameo_code": cameo,
                "provenance": {
                    "document": "tests",
                    "quote": "Argentina and Chile, as every day.",
                    "coded_by": "tests",
                },
            }
            lines.append(json.dumps(event) + "\n")
    return "".join(lines)


def test_prometheus_scrapes_the_indices_their_normals_and_the_crisis_and_fires_the_level_alert(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    prometheus: Callable[[WorkerProcess], Prometheus],
    tmp_path: Path,
) -> None:
    running = worker().wait_for_web()
    server = prometheus(running)
    # The article up to Pakistan's warning of 17 January: IRN-PAK stands at `warning`, a crisis
    # open. ARG-CHL quarrels daily: a normal of its own on both indices, no crisis.
    article = ARTICLE.read_text().splitlines(keepends=True)
    opening = tmp_path / "opening.jsonl"
    opening.write_text("".join(article[:7]) + quarrels())
    replay(opening, kafka_broker.bootstrap, kafka_namespace)
    wait_processed(kafka_broker.bootstrap, kafka_namespace)
    expected = latest_index(kafka_broker.bootstrap, kafka_namespace)
    crisis, busy = expected["IRN-PAK"], expected["ARG-CHL"]
    assert crisis.level is Level.WARNING
    assert crisis.crisis_since == datetime(2024, 1, 17, 12, tzinfo=UTC)
    assert busy.escalation_baseline > busy.de_escalation_baseline > 0 and busy.crisis_since is None

    (sample,) = eventually(
        lambda: server.query('crisismon_escalation_index{dyad="IRN-PAK"}'), what="the scraped index"
    )
    assert float(sample["value"][1]) == pytest.approx(crisis.escalation_index)
    assert sample["metric"]["job"] == "crisismon-worker"
    for update in (crisis, busy):
        for metric, value in [
            ("crisismon_escalation_index", update.escalation_index),
            ("crisismon_escalation_baseline", update.escalation_baseline),
            ("crisismon_de_escalation_baseline", update.de_escalation_baseline),
        ]:
            assert server.value(metric, update.dyad) == pytest.approx(value), (metric, update.dyad)
    opened = server.value("crisismon_crisis_since_timestamp_seconds", "IRN-PAK")
    assert opened == crisis.crisis_since.timestamp()
    assert server.value("crisismon_crisis_since_timestamp_seconds", "ARG-CHL") is None  # no series, not 0

    alerts = eventually(
        lambda: server.query('ALERTS{dyad="IRN-PAK", alertstate="firing"}'), what="the level alert"
    )
    assert {alert["metric"]["alertname"] for alert in alerts} == {"CrisisWarning"}
    (described,) = [alert for alert in server.alerts() if alert["labels"].get("dyad") == "IRN-PAK"]
    description = described["annotations"]["description"]
    assert "A crisis has been open since 2024-01-17 12:00:00 +0000 UTC" in description

    # The rest of the article: cooperation resolves the crisis (26 January), and its series goes.
    rest = tmp_path / "rest.jsonl"
    rest.write_text("".join(article[7:]))
    replay(rest, kafka_broker.bootstrap, kafka_namespace)
    wait_processed(kafka_broker.bootstrap, kafka_namespace)
    resolved = latest_index(kafka_broker.bootstrap, kafka_namespace)["IRN-PAK"]
    assert resolved.crisis_since is None and resolved.level is Level.WATCH  # resolved, not yet calm
    eventually(
        lambda: (
            server.value("crisismon_level", "IRN-PAK") == 1
            and server.value("crisismon_crisis_since_timestamp_seconds", "IRN-PAK") is None
        ),
        what="the resolved crisis's series to go",
    )
    assert server.value("crisismon_escalation_baseline", "IRN-PAK") == pytest.approx(
        resolved.escalation_baseline
    )


# --- what the worker exposes ----------------------------------------------------------------------


def index_update(dyad: str, crisis_since: datetime | None, baselines: tuple[float, float]) -> IndexUpdate:
    return IndexUpdate(
        dyad=dyad,
        as_of=datetime(2024, 1, 26, 12, tzinfo=UTC),
        escalation_index=20.0,
        de_escalation_index=3.0,
        level=Level.NORMAL if crisis_since is None else Level.WARNING,
        triggered_by="pkir24-007",
        events_in_window=5,
        escalation_baseline=baselines[0],
        de_escalation_baseline=baselines[1],
        crisis_since=crisis_since,
        scale="gdelt",
        scale_version="v1",
        config_hash="0",
    )


def exposed(metrics: WorkerMetrics) -> dict[tuple[str, str], float]:
    """(sample name, dyad) → value, as Prometheus parses the worker's /metrics."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, sample.labels["dyad"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "dyad" in sample.labels
    }


def test_the_normals_and_the_open_crisis_are_series_of_the_dyad_and_go_with_it() -> None:
    metrics = WorkerMetrics(max_dyads=2)
    opened = datetime(2024, 1, 17, 12, tzinfo=UTC)
    metrics.observe_index(index_update("IRN-PAK", opened, (4.5, 2.25)), partition=1)
    metrics.observe_index(index_update("ARG-CHL", None, (19.5, 9.25)), partition=2)
    samples = exposed(metrics)
    assert samples["crisismon_escalation_baseline", "IRN-PAK"] == 4.5
    assert samples["crisismon_de_escalation_baseline", "IRN-PAK"] == 2.25
    assert samples["crisismon_escalation_baseline", "ARG-CHL"] == 19.5
    assert samples["crisismon_de_escalation_baseline", "ARG-CHL"] == 9.25
    assert samples["crisismon_crisis_since_timestamp_seconds", "IRN-PAK"] == 1705492800.0
    assert ("crisismon_crisis_since_timestamp_seconds", "ARG-CHL") not in samples  # absent, not 0

    # The crisis closes: its series goes, the dyad's others stay.
    metrics.observe_index(index_update("IRN-PAK", None, (4.5, 2.25)), partition=1)
    samples = exposed(metrics)
    assert ("crisismon_crisis_since_timestamp_seconds", "IRN-PAK") not in samples
    assert samples["crisismon_escalation_baseline", "IRN-PAK"] == 4.5

    # A dyad pushed out of the label budget, or whose partition moved, loses every series.
    metrics.observe_index(index_update("IRN-PAK", opened, (4.5, 2.25)), partition=1)
    metrics.observe_index(index_update("ISR-LBN", opened, (0.0, 0.0)), partition=3)
    assert {dyad for _, dyad in exposed(metrics)} == {"IRN-PAK", "ISR-LBN"}  # ARG-CHL evicted
    metrics.forget_partitions("crisis.events", {1})
    samples = exposed(metrics)
    assert {dyad for _, dyad in samples} == {"ISR-LBN"}
    assert samples["crisismon_crisis_since_timestamp_seconds", "ISR-LBN"] == 1705492800.0
    assert samples["crisismon_escalation_baseline", "ISR-LBN"] == 0.0  # no normal of its own: 0
