"""What the live benchmarks share: measured subprocesses (their peak memory), the worker run
through its public entry point only, and reading topics back with the records' own times.

The worker is `crisismon worker` as tests/live.py starts it, and nothing of its insides is
imported: what is measured is what a deployment runs, whatever its internals become.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.kafka import KafkaConnection
from schemas.topics import Topics
from services.kafka.lag import wait_until_caught_up
from services.kafka.topics import reader
from tests.live import WorkerProcess

STOP_TIMEOUT_SECONDS = 30.0


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB (10^6 bytes): read it before the process
    ends, /proc forgets it then."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return math.nan


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started it in (a graceful stop), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@dataclass
class WorkerRun:
    """A `crisismon worker` being measured; its peak memory is read as the run ends."""

    worker: WorkerProcess
    peak_rss_mb: float = math.nan

    @property
    def topics(self) -> Topics:
        return Topics(self.worker.namespace)

    def alive(self) -> bool:
        return self.worker.process is not None and self.worker.process.poll() is None

    def caught_up(self, timeout: float) -> bool:
        """Whether the worker's group committed all of `crisis.events` within `timeout` seconds."""
        connection = KafkaConnection(self.worker.bootstrap)
        topics = self.topics
        return asyncio.run(wait_until_caught_up(connection, topics.app_id, topics.events, timeout))


@contextlib.contextmanager
def worker_run(
    bootstrap: str, namespace: str, data_dir: Path, environment: dict[str, str] | None = None
) -> Iterator[WorkerRun]:
    """The worker (with these CRISISMON_* settings) from the moment its web server answers until
    the block ends; then its VmHWM (the console script's pid is the Python process itself), then
    a graceful stop."""
    run = WorkerRun(WorkerProcess(bootstrap, namespace, data_dir, environment or {}).start())
    try:
        run.worker.wait_for_web()
        yield run
        if run.alive():
            assert run.worker.process is not None
            run.peak_rss_mb = peak_rss_mb(run.worker.process.pid)
    finally:
        run.worker.stop()


@dataclass(frozen=True)
class Received:
    """A record read back: its Kafka timestamp (the producer's clock when it was sent, in ms),
    when this reader had it decoded (perf_counter), and its decoded JSON value."""

    timestamp_ms: int
    received: float
    document: Any


async def read_records(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Received]:
    """All records of `topic` from the beginning, each JSON-decoded as it is read (what a plain
    consumer does with an event), until `expected` were read or `timeout` seconds passed."""
    consumer = reader(KafkaConnection(bootstrap), topic)
    records: list[Received] = []
    deadline = time.monotonic() + timeout
    await consumer.start()
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    document = json.loads(message.value)
                    records.append(Received(message.timestamp, time.perf_counter(), document))
    finally:
        await consumer.stop()
    return records


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**KafkaConnection(bootstrap).client_options())
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, partition["partition"]) for partition in description["partitions"]]


async def latest_value_sizes(bootstrap: str, topic: str) -> dict[bytes, int]:
    """The size in bytes of the latest value of each key of a (changelog) topic."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(**KafkaConnection(bootstrap).client_options(), enable_auto_commit=False)
    await consumer.start()
    sizes: dict[bytes, int] = {}
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    if message.key is not None:
                        sizes[message.key] = len(message.value or b"")
    finally:
        await consumer.stop()
    return sizes


def bytes_per_dyad(sizes: dict[bytes, int]) -> dict[bytes, int]:
    """The latest values' sizes of each dyad's keys added up: the state the worker keeps for it
    (under the dyad's key, and keys that begin with it and a slash: its alerts published)."""
    per_dyad: dict[bytes, int] = {}
    for key, size in sizes.items():
        dyad = key.split(b"/")[0]
        per_dyad[dyad] = per_dyad.get(dyad, 0) + size
    return per_dyad


async def records_in(bootstrap: str, topic: str) -> int:
    """How many records `topic` holds (the sum of its partitions' end offsets; nothing deleted)."""
    partitions = await partitions_of(bootstrap, topic)
    consumer = AIOKafkaConsumer(**KafkaConnection(bootstrap).client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def read_whole(bootstrap: str, topic: str, timeout: float = 120.0) -> list[Received]:
    """Every record `topic` holds now (read_records, up to its end offsets)."""
    return await read_records(bootstrap, topic, await records_in(bootstrap, topic), timeout)


def changelog_topic(namespace: str) -> str:
    """The worker's table of dyad snapshots ("dyads"), as Faust names its changelog."""
    return f"{Topics(namespace).app_id}-dyads-changelog"


def rate(records: int, first: float, last: float) -> float:
    """Records per second between the first and the last record (start-up excluded)."""
    return records / (last - first) if last > first else math.nan


@dataclass(frozen=True)
class Rates:
    """One reader's rate over repeated runs: the median is its figure, the range the noise of a
    shared machine."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def __str__(self) -> str:
        return (
            f"{self.median:,.0f} events/s (median of {len(self.runs)}: "
            f"{min(self.runs):,.0f}–{max(self.runs):,.0f})"
        )


def percentile(values: Sequence[float], cut: int) -> float:
    """The `cut`-th percentile (statistics' exclusive method; NaN for fewer than two values)."""
    if len(values) < 2:
        return math.nan
    return statistics.quantiles(values, n=100)[cut - 1]
