"""Events per second through one worker, next to a plain aiokafka consumer and a no-op Faust agent.

All three read the same topic of N synthetic events (tests/synthetic.py: 45 dyads over four
months) on one local broker, one after the other, the topic filled beforehand. The plain
consumer and the no-op agent take seconds, and run REFERENCE_RUNS times each (median kept: on a
shared 2-core machine one run of the no-op agent varied 3x); the worker runs once. Each rate is
measured between its first and its last record, start-up excluded: for the plain consumer from
receipt times (read + JSON decode), for the no-op agent in its own process (see noop_agent.py),
for the worker from the Kafka timestamps of the index updates it publishes (one per accepted
event, stamped when it sends them). Also the worker's peak memory, and the largest dyad state it
saved (the latest value per key on its table's changelog).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from schemas.topics import Topics
from tests.bench.harness import (
    Rates,
    changelog_topic,
    latest_value_sizes,
    rate,
    read_records,
    read_whole,
    worker_run,
)
from tests.bench.noop_agent import measure_noop_agent
from tests.live import replay
from tests.synthetic import write_events

EVENTS = 10_000
NAMESPACE = "throughput"
READ_TIMEOUT_SECONDS = 120.0
AGENT_TIMEOUT_SECONDS = 300.0
REFERENCE_RUNS = 3
WORKER_TIMEOUT_SECONDS = 300.0
"""The worker's bound: past it, the rate is over what it processed by then."""


@dataclass(frozen=True)
class Throughput:
    events: int
    plain_consumer: Rates
    noop_agent: Rates
    noop_agent_peak_rss_mb: float
    worker: float
    """events/s"""
    worker_updates: int
    """index updates it published: the events it accepted"""
    worker_finished: bool
    worker_peak_rss_mb: float
    largest_state_bytes: int
    dyads: int


def plain_consumer_rate(bootstrap: str, topic: str, events: int) -> float:
    read = asyncio.run(read_records(bootstrap, topic, events, READ_TIMEOUT_SECONDS))
    return rate(len(read), read[0].received, read[-1].received)


def measure(bootstrap: str, scratch: Path, events: int = EVENTS) -> Throughput:
    topics = Topics(NAMESPACE)
    replay(write_events(scratch / "throughput.jsonl", events), bootstrap, NAMESPACE)
    plain = Rates(tuple(plain_consumer_rate(bootstrap, topics.events, events) for _ in range(REFERENCE_RUNS)))
    agents = [
        measure_noop_agent(bootstrap, topics.events, events, scratch, AGENT_TIMEOUT_SECONDS)
        for _ in range(REFERENCE_RUNS)
    ]
    noop = Rates(tuple(agent.events_per_second for agent in agents))
    with worker_run(bootstrap, NAMESPACE, scratch / "throughput-worker") as run:
        finished = run.caught_up(WORKER_TIMEOUT_SECONDS)
    updates = asyncio.run(read_whole(bootstrap, topics.index))
    stamps = [update.timestamp_ms / 1000 for update in updates]
    sizes = asyncio.run(latest_value_sizes(bootstrap, changelog_topic(NAMESPACE)))
    result = Throughput(
        events=events,
        plain_consumer=plain,
        noop_agent=noop,
        noop_agent_peak_rss_mb=max(agent.peak_rss_mb for agent in agents),
        worker=rate(len(stamps), min(stamps), max(stamps)),
        worker_updates=len(updates),
        worker_finished=finished,
        worker_peak_rss_mb=run.peak_rss_mb,
        largest_state_bytes=max(sizes.values()),
        dyads=len(sizes),
    )
    print(
        f"throughput: {events:,} events on {topics.events}; plain consumer {plain}, "
        f"no-op Faust agent {noop} (peak RSS {result.noop_agent_peak_rss_mb:.0f} MB), "
        f"worker {result.worker:,.0f}/s over {len(updates):,} index updates"
        f"{'' if finished else f' (stopped at the {WORKER_TIMEOUT_SECONDS:.0f} s bound)'}, "
        f"peak RSS {run.peak_rss_mb:.0f} MB; {len(sizes)} dyads saved, "
        f"largest state {result.largest_state_bytes / 1024:.1f} KiB",
        flush=True,
    )
    return result
