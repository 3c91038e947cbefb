"""`crisismon demo` (what `make run` runs): the whole local stack replaying the article's crisis.

A local broker (started if none answers), the worker in a subprocess, the article replayed at
a watchable speed, and the alerts printed as they arrive.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools import broker as local_broker
from replay.producer import replay
from schemas.outputs import Alert, Level
from services.kafka.lag import wait_until_caught_up
from services.kafka.tail import tail_alerts
from services.kafka.topics import Topics, ensure_topics
from services.settings import Settings

ARTICLE = Path(__file__).resolve().parents[1] / "replay" / "data" / "pakistan-iran-2024.jsonl"


@dataclass
class Summary:
    """Per dyad: the highest level reached and the alerts, de-duplicated by id."""

    alerts: dict[str, dict[str, Alert]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, alert: Alert) -> bool:
        """Records the alert; False when it is a repeat of one already seen."""
        seen = self.alerts[alert.dyad]
        fresh = alert.alert_id not in seen
        seen[alert.alert_id] = alert
        return fresh

    def peak(self, dyad: str) -> Level:
        return max((a.level for a in self.alerts[dyad].values()), key=lambda level: level.rank)

    def lines(self) -> list[str]:
        rows = ["dyad       peak      alerts"]
        for dyad in sorted(self.alerts):
            kinds = [a.kind for a in self.alerts[dyad].values()]
            rows.append(
                f"{dyad:<10} {self.peak(dyad):<9} {kinds.count('escalation')} escalation, "
                f"{kinds.count('de-escalation')} de-escalation"
            )
        return rows


def start_worker(settings: Settings, log_file: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "worker",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--web-port",
        str(settings.web_port),
        "--data-dir",
        str(settings.data_dir),
    ]
    env = {**os.environ, "CRISISMON_NAMESPACE": settings.namespace}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def ensure_local_broker(settings: Settings) -> local_broker.Broker | None:
    """Starts a local broker on the bootstrap's port unless one answers; returns it if started here."""
    host, port = settings.kafka_bootstrap.rsplit(":", 1)
    broker = local_broker.Broker.local(int(port), version=settings.kafka_version)
    if host not in ("127.0.0.1", "localhost") or local_broker.answers(settings.kafka_bootstrap, 5.0):
        return None
    local_broker.start(broker)
    return broker


async def play(settings: Settings, once: bool, speed: float | None, show: Callable[[str], None]) -> Summary:
    topics = Topics(settings.namespace)
    await ensure_topics(settings.kafka_bootstrap, topics)
    summary = Summary()
    stop = asyncio.Event()

    def on_alert(alert: Alert) -> None:
        if summary.add(alert):
            show(
                f"{alert.event_time:%Y-%m-%d %H:%M} {alert.dyad} {alert.kind} "
                f"{alert.previous_level} → {alert.level}: {alert.reason}"
            )

    tail = asyncio.create_task(
        tail_alerts(settings.kafka_bootstrap, topics.alerts, on_alert, from_beginning=True, stop=stop)
    )
    report = await replay(
        [ARTICLE], settings.kafka_bootstrap, topics, speed=speed, progress=sys.stderr.isatty()
    )
    show(f"replayed {report.produced} events of {ARTICLE.name}")
    if once:
        if not await wait_until_caught_up(
            settings.kafka_bootstrap, topics.app_id, topics.events, timeout=180
        ):
            raise TimeoutError("the worker did not process the replay within 180 s")
        await asyncio.sleep(2)  # the last alerts travel from the worker to the tail
        stop.set()
    await tail
    return summary


def run_demo(settings: Settings, once: bool, speed: float | None, show: Callable[[str], None]) -> Summary:
    # SIGTERM (a `timeout`, a service manager) stops the demo like Ctrl-C: the `finally` below
    # runs and the worker and broker it started go with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started_broker = ensure_local_broker(settings)
    if started_broker is not None:
        show(f"started a local Kafka {started_broker.version} at {started_broker.bootstrap}")
    worker = start_worker(settings, settings.data_dir / "worker.log")
    show(f"worker started (pid {worker.pid}, log {settings.data_dir / 'worker.log'})")
    show(f"dashboard: http://{settings.web_host}:{settings.web_port}/  (metrics at /metrics, API at /api)")
    try:
        return asyncio.run(play(settings, once, speed, show))
    finally:
        stop_worker(worker)
        if started_broker is not None:
            local_broker.stop(started_broker)
