"""Producer-to-output latency through one worker at a fixed offered load (500 events/s).

A paced producer sends synthetic events (tests/synthetic.py, in event-time order, as a live
feed comes) for a bounded time after a short warm-up that the worker has processed (so its
start-up is not measured). Per event, the latency is the Kafka timestamp of the index update it
caused (stamped by the worker's producer when it sends; one update per accepted event, keyed by
dyad, `triggered_by` the event id) minus the event's own (stamped by this producer when it
sent it); both clocks are this machine's. Alerts carry `triggered_by` too and are timed the same
way: about one event in fifteen raises one here (~1,000 in a run), enough for a p99 of their own,
the target's measure; the index updates are the record-by-record one. A worker slower than the
offered load falls behind, and its latency grows with the backlog: that is what this shows then.
It runs RUNS times, each a worker of its own on topics of its own, and the percentiles are of
every run's latencies together: on this shared 2-core machine one run's p99 went from 149 to
301 ms with the same code, so a 30-second run's tail is the machine's as much as the worker's.
Each run's own p99 is printed beside them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from schemas.events import CrisisEvent
from schemas.kafka import KafkaConnection
from schemas.topics import Topics
from tests.bench.harness import Received, percentile, rate, read_whole, worker_run
from tests.synthetic import write_events

OFFERED_PER_SECOND = 500
SECONDS = 30
RUNS = 3
WARMUP_EVENTS = 100
NAMESPACE = "latency"
WARMUP_TIMEOUT_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 300.0
"""After the last send, how long the worker gets to catch up; events it has not answered by
then are counted as unanswered (and the percentiles are lower bounds)."""


@dataclass(frozen=True)
class Latency:
    offered: int
    offered_per_second: float
    """as sent: the span of the producer's timestamps (the slowest run's)"""
    index_ms: list[float]
    alert_ms: list[float]
    unanswered: int
    peak_rss_mb: float
    runs_p99_ms: tuple[tuple[float, float], ...] = ()
    """each run's own p99 to the index update and to the alert"""

    def index_percentile(self, cut: int) -> float:
        return percentile(self.index_ms, cut)

    def alert_percentile(self, cut: int) -> float:
        return percentile(self.alert_ms, cut)


@dataclass(frozen=True)
class Message:
    event_id: str
    key: bytes
    value: bytes


def messages(path: Path) -> list[Message]:
    """The file's events in event-time order, keyed by dyad as `crisismon replay` keys them."""
    events = sorted(
        (CrisisEvent.model_validate_json(line) for line in path.read_text().splitlines()),
        key=lambda event: event.event_time,
    )
    return [
        Message(event.event_id, (event.dyad or "").encode(), event.model_dump_json().encode())
        for event in events
    ]


async def produce(bootstrap: str, topic: str, batch: Sequence[Message], per_second: float | None) -> None:
    """Sends `batch`, paced at `per_second` on a fixed schedule (a late send does not delay the
    next ones), or as fast as it goes; returns once the broker has every record."""
    producer = AIOKafkaProducer(**KafkaConnection(bootstrap).client_options(), acks="all")
    await producer.start()
    try:
        started = time.perf_counter()
        delivered = []
        for number, message in enumerate(batch):
            if per_second is not None and (wait := started + number / per_second - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            delivered.append(await producer.send(topic, message.value, key=message.key))
        await asyncio.gather(*delivered)
    finally:
        await producer.stop()


def latencies_ms(sent: dict[str, int], outputs: list[Received]) -> list[float]:
    """Per sent event, its first output's timestamp minus its own, in ms."""
    answered: dict[str, float] = {}
    for output in outputs:
        event_id = output.document["triggered_by"]
        if event_id in sent and event_id not in answered:
            answered[event_id] = float(output.timestamp_ms - sent[event_id])
    return list(answered.values())


def measure(bootstrap: str, scratch: Path) -> Latency:
    offered = OFFERED_PER_SECOND * SECONDS
    batch = messages(write_events(scratch / "latency.jsonl", WARMUP_EVENTS + offered))
    runs = [_one_run(bootstrap, scratch, f"{NAMESPACE}{run or ''}", batch) for run in range(RUNS)]
    result = Latency(
        offered=sum(run.offered for run in runs),
        offered_per_second=min(run.offered_per_second for run in runs),
        index_ms=[ms for run in runs for ms in run.index_ms],
        alert_ms=[ms for run in runs for ms in run.alert_ms],
        unanswered=sum(run.unanswered for run in runs),
        peak_rss_mb=max(run.peak_rss_mb for run in runs),
        runs_p99_ms=tuple((run.index_percentile(99), run.alert_percentile(99)) for run in runs),
    )
    index, alerts = result.index_ms, result.alert_ms
    each = ", ".join(f"{index_p99:,.0f}/{alert_p99:,.0f}" for index_p99, alert_p99 in result.runs_p99_ms)
    print(
        f"latency: {result.offered:,} events offered in {RUNS} runs at {result.offered_per_second:,.0f}/s "
        f"or more for {SECONDS} s each (after {WARMUP_EVENTS} warm-up events); producer → index update "
        f"(Kafka timestamps) p50 {result.index_percentile(50):,.0f} ms, p99 "
        f"{result.index_percentile(99):,.0f} ms, max {max(index, default=float('nan')):,.0f} ms over "
        f"{len(index):,} updates, {result.unanswered:,} unanswered; producer → alert p50 "
        f"{result.alert_percentile(50):,.0f} ms, p99 {result.alert_percentile(99):,.0f} ms, max "
        f"{max(alerts, default=float('nan')):,.0f} ms over {len(alerts):,} alerts; each run's p99 "
        f"(index/alert): {each} ms; peak RSS {result.peak_rss_mb:.0f} MB",
        flush=True,
    )
    return result


def _one_run(bootstrap: str, scratch: Path, namespace: str, batch: list[Message]) -> Latency:
    """A worker of its own, warmed up, then the paced events, on topics of `namespace`."""
    topics = Topics(namespace)
    warmup, paced = batch[:WARMUP_EVENTS], batch[WARMUP_EVENTS:]
    with worker_run(bootstrap, namespace, scratch / f"{namespace}-worker") as run:
        asyncio.run(produce(bootstrap, topics.events, warmup, None))
        run.caught_up(WARMUP_TIMEOUT_SECONDS)
        asyncio.run(produce(bootstrap, topics.events, paced, OFFERED_PER_SECOND))
        run.caught_up(DRAIN_TIMEOUT_SECONDS)
    warmup_ids = {message.event_id for message in warmup}
    sent = {
        event.document["event_id"]: event.timestamp_ms
        for event in asyncio.run(read_whole(bootstrap, topics.events))
        if event.document["event_id"] not in warmup_ids
    }
    stamps = [stamp / 1000 for stamp in sent.values()]
    index = latencies_ms(sent, asyncio.run(read_whole(bootstrap, topics.index)))
    return Latency(
        offered=len(sent),
        offered_per_second=rate(len(stamps), min(stamps), max(stamps)),
        index_ms=index,
        alert_ms=latencies_ms(sent, asyncio.run(read_whole(bootstrap, topics.alerts))),
        unanswered=len(sent) - len(index),
        peak_rss_mb=run.peak_rss_mb,
    )
