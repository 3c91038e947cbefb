"""Driving the real pipeline from tests: worker processes, replays, and reading the topics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from schemas.kafka import KafkaConnection
from schemas.outputs import Alert, IndexUpdate
from schemas.topics import Topics
from services.kafka.lag import wait_until_caught_up
from services.kafka.tail import tail_alerts
from services.kafka.topics import reader
from tests.ports import free_port

CRISISMON = str(Path(sys.executable).parent / "crisismon")


def connection(kafka: str | KafkaConnection) -> KafkaConnection:
    """The helpers below take a connection, or a bare HOST:PORT for plain Kafka (the session's broker)."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISMON_")}
    return {**env, "CRISISMON_LOG_LEVEL": "INFO", **extra}


@dataclass
class WorkerProcess:
    """`crisismon worker` in a subprocess of its own, logging to a file kept for failures."""

    bootstrap: str
    namespace: str
    data_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    """CRISISMON_* settings for this worker, e.g. an API token."""
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    command: str = "worker"
    """or `api`: the dashboard, API and /metrics on their own (no data dir)."""

    def start(self) -> WorkerProcess:
        log = self.data_dir.with_name(f"{self.data_dir.name}-{len(self.logs)}.log")
        self.logs.append(log)
        command = [CRISISMON, self.command, "--bootstrap", self.bootstrap, "--namespace", self.namespace]
        command += ["--data-dir", str(self.data_dir)] if self.command == "worker" else []
        command += ["--web-port", str(self.web_port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(**self.environment),
                start_new_session=True,
            )
        return self

    def wait_for_web(self, timeout: float = 60) -> WorkerProcess:
        """Until the web server answers (it starts with the worker, once Kafka answers)."""

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_text()
            return answers(f"{self.url}/metrics")

        try:
            eventually(up, timeout, f"the worker's web server at {self.url}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.log_text()}") from None
        return self

    def get_json(self, path: str, token: str | None = None) -> Any:
        """GET an API path; HTTP errors raise urllib.error.HTTPError (with .code)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with urllib.request.urlopen(
            urllib.request.Request(self.url + path, headers=headers), timeout=10
        ) as answer:
            return json.load(answer)

    def records_processed(self) -> float:
        """What its /metrics counts in `crisismon_events_total`, all outcomes (0 if it is down)."""
        return sum(sample.value for sample in metric_samples(self.url, "crisismon_events_total"))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit, no flush."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-4000:] for log in self.logs if log.exists())


def answers(url: str) -> bool:
    """Whether an HTTP server answers this address with success."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def metric_samples(url: str, name: str) -> list[Sample]:
    """The samples named `name` on the /metrics page of the server at `url` (none if it is down)."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return []
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def children_of(pid: int) -> list[int]:
    """The processes `pid` forked that still run (none once it has ended)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "the condition") -> Any:
    """Poll until `check` returns something truthy: views and servers trail what the test did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def until_mid_stream(worker: WorkerProcess, producing: subprocess.Popen[bytes], records: int) -> None:
    """Until `worker` has processed `records` while the replay still produces: a fault from here
    hits the worker mid-stream, however fast it is (the test decides when, not the machine)."""
    eventually(
        lambda: worker.records_processed() >= records or producing.poll() is not None,
        120,
        f"the worker to process {records} records",
    )
    assert producing.poll() is None, "the replay ended first: slow its pace down"


def replay(
    path: Path, bootstrap: str, namespace: str, *extra: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`crisismon replay`, which must succeed; `environment`: CRISISMON_* settings for it."""
    run = subprocess.run(
        [CRISISMON, "replay", str(path), "--bootstrap", bootstrap, "--namespace", namespace, *extra],
        capture_output=True,
        text=True,
        env=clean_env(**(environment or {})),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run


def wait_processed(
    kafka: str | KafkaConnection, namespace: str, timeout: float = 120, *workers: WorkerProcess
) -> None:
    """Until the group has committed the whole log; on a time-out, the workers' logs say why."""
    topics = Topics(namespace)
    assert asyncio.run(wait_until_caught_up(connection(kafka), topics.app_id, topics.events, timeout)), (
        f"the worker did not process {topics.events} within {timeout}s\n"
        + "\n".join(worker.log_text() for worker in workers)
    )


def read_alerts(kafka: str | KafkaConnection, namespace: str, idle: float = 2.0) -> list[Alert]:
    alerts: list[Alert] = []
    asyncio.run(
        tail_alerts(
            connection(kafka), Topics(namespace).alerts, alerts.append, from_beginning=True, idle_exit=idle
        )
    )
    return alerts


def read_records(kafka: str | KafkaConnection, topic: str, idle: float = 2.0) -> list[Any]:
    """Every record of `topic` (aiokafka's: key, value, partition...), until `idle` brings none."""

    async def read() -> list[Any]:
        consumer = reader(connection(kafka), topic)
        await consumer.start()
        records: list[Any] = []
        try:
            while batch := await consumer.getmany(timeout_ms=int(idle * 1000)):
                records += [message for messages in batch.values() for message in messages]
        finally:
            await consumer.stop()
        return records

    return asyncio.run(read())


def read_topic(kafka: str | KafkaConnection, topic: str, idle: float = 2.0) -> list[bytes]:
    return [record.value for record in read_records(kafka, topic, idle)]


def partitions_by_key(kafka: str | KafkaConnection, topic: str) -> dict[bytes, set[int]]:
    found: dict[bytes, set[int]] = {}
    for record in read_records(kafka, topic):
        found.setdefault(record.key, set()).add(record.partition)
    return found


def latest_index(kafka: str | KafkaConnection, namespace: str) -> dict[str, IndexUpdate]:
    """The last index update of each dyad (per dyad, the topic keeps processing order)."""
    latest: dict[str, IndexUpdate] = {}
    for value in read_topic(kafka, Topics(namespace).index):
        update = IndexUpdate.model_validate_json(value)
        latest[update.dyad] = update
    return latest


def backtest_alert_ids(path: Path) -> dict[str, list[str]]:
    """What `crisismon backtest --json` says: its alert ids per dyad."""
    run = subprocess.run(
        [CRISISMON, "backtest", str(path), "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
        check=True,
    )
    return by_dyad([Alert.model_validate_json(row) for row in run.stdout.splitlines() if row.strip()])


def by_dyad(alerts: list[Alert]) -> dict[str, list[str]]:
    """Alert ids per dyad in order, first sighting only (a repeat after a crash keeps its id)."""
    seen: dict[str, list[str]] = {}
    for alert in alerts:
        ids = seen.setdefault(alert.dyad, [])
        if alert.alert_id not in ids:
            ids.append(alert.alert_id)
    return seen
