"""A real Prometheus (the Debian package) scrapes a real worker and evaluates the project's rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.broker import Broker
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


def test_prometheus_scrapes_the_escalation_index_and_fires_the_level_alert(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    prometheus: Callable[[WorkerProcess], Prometheus],
    tmp_path: Path,
) -> None:
    running = worker().wait_for_web()
    server = prometheus(running)
    # The article up to Pakistan's warning of 17 January: IRN-PAK stands at `warning`.
    opening = tmp_path / "opening.jsonl"
    opening.write_text("".join(ARTICLE.read_text().splitlines(keepends=True)[:7]))
    replay(opening, kafka_broker.bootstrap, kafka_namespace)
    wait_processed(kafka_broker.bootstrap, kafka_namespace)
    expected = latest_index(kafka_broker.bootstrap, kafka_namespace)["IRN-PAK"]
    assert expected.level.value == "warning"

    (sample,) = eventually(
        lambda: server.query('crisismon_escalation_index{dyad="IRN-PAK"}'), what="the scraped index"
    )
    assert float(sample["value"][1]) == pytest.approx(expected.escalation_index)
    assert sample["metric"]["job"] == "crisismon-worker"
    alerts = eventually(
        lambda: server.query('ALERTS{dyad="IRN-PAK", alertstate="firing"}'), what="the level alert"
    )
    assert {alert["metric"]["alertname"] for alert in alerts} == {"CrisisWarning"}
