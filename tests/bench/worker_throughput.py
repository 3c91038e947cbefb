"""Events per second through one worker, next to a plain aiokafka consumer and a no-op Faust agent.

All three read the same topic of N synthetic events (tests/synthetic.py: 45 dyads over four
months) on one local broker, one after the other, the topic filled beforehand. Each runs
RUNS times, the median kept (on a shared 2-core machine one run of the no-op agent varied 3x,
and one of the worker ±8%); the worker each time on its own copy of the topic, from a cold
start, as nothing it committed or saved carries over. Each rate is
measured between its first and its last record, start-up excluded: for the plain consumer from
receipt times (read + JSON decode), for the no-op agent in its own process (see noop_agent.py),
for the worker from the Kafka timestamps of the index updates it publishes (one per accepted
event, stamped when it sends them). Also the worker's peak memory, and the largest dyad state it
saved (the latest values of its keys on its table's changelog). Then the worker without the API's
view (`api_view` off: no feed reading the topics back), and without it beside `crisismon api`
serving the view from a process of its own; the three deployments' runs taken in turns, so
that none always runs first.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from schemas.topics import Topics
from tests.bench.harness import (
    Rates,
    bytes_per_dyad,
    changelog_topic,
    latest_value_sizes,
    rate,
    read_records,
    read_whole,
    worker_run,
)
from tests.bench.noop_agent import measure_noop_agent
from tests.live import WorkerProcess, replay
from tests.synthetic import write_events

EVENTS = 10_000
NAMESPACE = "throughput"
READ_TIMEOUT_SECONDS = 120.0
AGENT_TIMEOUT_SECONDS = 300.0
RUNS = 3
WORKER_TIMEOUT_SECONDS = 300.0
"""The worker's bound: past it, the rate is over what it processed by then."""


@dataclass(frozen=True)
class Throughput:
    events: int
    plain_consumer: Rates
    noop_agent: Rates
    noop_agent_peak_rss_mb: float
    worker: Rates
    worker_without_view: Rates
    worker_beside_api: Rates
    """without the view, `crisismon api` reading the topics beside it"""
    worker_updates: int
    """index updates it published in its first run: the events it accepted"""
    worker_finished: bool
    """every run within WORKER_TIMEOUT_SECONDS"""
    worker_peak_rss_mb: float
    largest_state_bytes: int
    dyads: int


@dataclass(frozen=True)
class WorkerPass:
    """One cold-started worker over the whole topic."""

    events_per_second: float
    updates: int
    finished: bool
    peak_rss_mb: float
    state_sizes: dict[bytes, int]


def plain_consumer_rate(bootstrap: str, topic: str, events: int) -> float:
    read = asyncio.run(read_records(bootstrap, topic, events, READ_TIMEOUT_SECONDS))
    return rate(len(read), read[0].received, read[-1].received)


@dataclass(frozen=True)
class Deployment:
    """How the worker runs: its settings, and whether `crisismon api` reads the topics beside it."""

    name: str
    environment: dict[str, str]
    beside_api: bool = False


DEFAULT = Deployment("", {})
WITHOUT_VIEW = Deployment("-noview", {"CRISISMON_API_VIEW": "false"})
BESIDE_API = Deployment("-api", {"CRISISMON_API_VIEW": "false"}, beside_api=True)
DEPLOYMENTS = (DEFAULT, WITHOUT_VIEW, BESIDE_API)


def worker_pass(
    bootstrap: str, scratch: Path, events: Path, namespace: str, deployment: Deployment = DEFAULT
) -> WorkerPass:
    """The worker over `events` replayed to a topic of its own (`namespace`)."""
    replay(events, bootstrap, namespace)
    with contextlib.ExitStack() as stack:
        if deployment.beside_api:
            api = WorkerProcess(bootstrap, namespace, scratch / f"{namespace}-api", command="api").start()
            stack.callback(api.stop)
            api.wait_for_web()
        worker = worker_run(bootstrap, namespace, scratch / f"{namespace}-worker", deployment.environment)
        with worker as run:
            finished = run.caught_up(WORKER_TIMEOUT_SECONDS)
    updates = asyncio.run(read_whole(bootstrap, Topics(namespace).index))
    stamps = [update.timestamp_ms / 1000 for update in updates]
    return WorkerPass(
        events_per_second=rate(len(stamps), min(stamps), max(stamps)),
        updates=len(updates),
        finished=finished,
        peak_rss_mb=run.peak_rss_mb,
        state_sizes=bytes_per_dyad(asyncio.run(latest_value_sizes(bootstrap, changelog_topic(namespace)))),
    )


def measure(bootstrap: str, scratch: Path, events: int = EVENTS) -> Throughput:
    topics = Topics(NAMESPACE)
    written = write_events(scratch / "throughput.jsonl", events)
    runs: dict[str, list[WorkerPass]] = {deployment.name: [] for deployment in DEPLOYMENTS}
    for run in range(RUNS):  # in turns, each deployment first once
        for deployment in DEPLOYMENTS[run % 3 :] + DEPLOYMENTS[: run % 3]:
            namespace = f"{NAMESPACE}{run or ''}{deployment.name}"
            runs[deployment.name].append(worker_pass(bootstrap, scratch, written, namespace, deployment))
    passes = runs[DEFAULT.name]
    plain = Rates(tuple(plain_consumer_rate(bootstrap, topics.events, events) for _ in range(RUNS)))
    agents = [
        measure_noop_agent(bootstrap, topics.events, events, scratch, AGENT_TIMEOUT_SECONDS)
        for _ in range(RUNS)
    ]
    noop = Rates(tuple(agent.events_per_second for agent in agents))
    worker = Rates(tuple(one.events_per_second for one in passes))
    sizes = passes[0].state_sizes
    result = Throughput(
        events=events,
        plain_consumer=plain,
        noop_agent=noop,
        noop_agent_peak_rss_mb=max(agent.peak_rss_mb for agent in agents),
        worker=worker,
        worker_without_view=Rates(tuple(one.events_per_second for one in runs[WITHOUT_VIEW.name])),
        worker_beside_api=Rates(tuple(one.events_per_second for one in runs[BESIDE_API.name])),
        worker_updates=passes[0].updates,
        worker_finished=all(one.finished for one in passes),
        worker_peak_rss_mb=max(one.peak_rss_mb for one in passes),
        largest_state_bytes=max(sizes.values()),
        dyads=len(sizes),
    )
    cut_short = (
        "" if result.worker_finished else f" (a run stopped at the {WORKER_TIMEOUT_SECONDS:.0f} s bound)"
    )
    print(
        f"throughput: {events:,} events on {topics.events}; plain consumer {plain}, "
        f"no-op Faust agent {noop} (peak RSS {result.noop_agent_peak_rss_mb:.0f} MB), "
        f"worker {worker} over {result.worker_updates:,} index updates"
        f"{cut_short}, without the API view {result.worker_without_view}, "
        f"without it beside `crisismon api` {result.worker_beside_api}, "
        f"peak RSS {result.worker_peak_rss_mb:.0f} MB; {len(sizes)} dyads saved, "
        f"largest state {result.largest_state_bytes / 1024:.1f} KiB",
        flush=True,
    )
    return result
