"""`crisismon api`: the dashboard, the API and /metrics in a process of their own, beside workers
run with `api_view` off, on the real broker the suite starts."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

from devtools.broker import Broker
from services.backtest.run import run_backtest
from services.core import EngineConfig
from tests.live import CRISISMON, WorkerProcess, by_dyad, clean_env, eventually, replay, wait_processed
from tests.synthetic import write_events

EVENTS = 400
STOP_SECONDS = 30


def test_the_api_on_its_own_serves_what_a_worker_with_the_view_serves(
    kafka_broker: Broker, kafka_namespace: str, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Every dyad, alert and event the workers produced, read from the topics; what it is sent
    goes to crisis.events for the workers; SIGTERM stops it at once, cleanly."""
    events = write_events(tmp_path / "events.jsonl", EVENTS)
    processing = worker("processing", CRISISMON_API_VIEW="false")
    api = WorkerProcess(kafka_broker.bootstrap, kafka_namespace, tmp_path / "api", command="api").start()
    try:
        api.wait_for_web()
        replay(events, kafka_broker.bootstrap, kafka_namespace)
        wait_processed(kafka_broker.bootstrap, kafka_namespace, 180, processing)
        expected = run_backtest([events], EngineConfig())

        def served_alerts() -> dict[str, list[str]]:
            listed = api.get_json("/api/alerts?limit=10000")["alerts"]
            return {dyad: sorted(ids) for dyad, ids in by_dyad_ids(listed).items()}

        wanted = {dyad: sorted(ids) for dyad, ids in by_dyad(expected.alerts).items()}
        eventually(lambda: served_alerts() == wanted, 60, f"the API's alerts: {served_alerts()} != {wanted}")
        assert {each["dyad"] for each in api.get_json("/api/dyads")["dyads"]} == set(expected.dyads)
        assert api.get_json("/api/events?limit=1")["events"], api.log_text()
        with urllib.request.urlopen(f"{api.url}/metrics", timeout=5) as answer:
            assert b"crisismon_api_events_total" in answer.read()
        assert api.process is not None
        os.killpg(api.process.pid, signal.SIGTERM)
        assert api.process.wait(STOP_SECONDS) == 0, api.log_text()
        assert "Traceback" not in api.log_text()
    finally:
        api.stop()


def by_dyad_ids(alerts: list[dict[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for alert in alerts:
        grouped.setdefault(alert["dyad"], []).append(alert["alert_id"])
    return grouped


def test_an_api_whose_port_is_taken_is_one_line_and_exit_2(kafka_broker: Broker, tmp_path: Path) -> None:
    holder = WorkerProcess(kafka_broker.bootstrap, "taken", tmp_path / "first", command="api").start()
    try:
        holder.wait_for_web()
        done = subprocess.run(
            [CRISISMON, "api", "--bootstrap", kafka_broker.bootstrap, "--web-port", str(holder.web_port)],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=STOP_SECONDS * 2,
        )
    finally:
        holder.stop()
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"crisismon: error: cannot serve on 127.0.0.1:{holder.web_port}")
    )
    assert "Traceback" not in done.stderr
