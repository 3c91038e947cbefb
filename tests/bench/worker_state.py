"""The bytes the worker keeps for one busy dyad: 100 events a day for a year, through the worker.

tests/synthetic.py's busy dyad (USA-CHN, 36,500 events in event-time order, each drawing its
direction, CAMEO code and Goldstein score from a real USA-CHN GDELT row) is replayed to a topic
of its own, then one worker processes it, for at most TIME_BOUND_SECONDS. The state is what the
worker saved for the dyad: the latest values of its keys (its state, its alerts published) on
the changelog of the worker's Faust table `dyads` (`<app_id>-dyads-changelog`), read after a
graceful stop (which flushes it). If the
bound cut the run short, it is the state after the events processed by then (the index updates
published, one per accepted event), and the output says how far into the year that was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from schemas.events import CrisisEvent
from schemas.topics import Topics
from tests.bench.harness import bytes_per_dyad, changelog_topic, latest_value_sizes, records_in, worker_run
from tests.live import replay
from tests.synthetic import write_busy_dyad

DAYS = 365
PER_DAY = 100
NAMESPACE = "busy"
TIME_BOUND_SECONDS = 240.0


@dataclass(frozen=True)
class BusyState:
    dyad: str
    events: int
    processed: int
    """index updates the worker published: the events it accepted"""
    state_bytes: int | None
    """None: no state saved for the dyad"""
    finished: bool
    peak_rss_mb: float

    @property
    def days_processed(self) -> float:
        return self.processed / PER_DAY


def measure(bootstrap: str, scratch: Path) -> BusyState:
    path = write_busy_dyad(scratch / "busy-dyad.jsonl", DAYS, PER_DAY)
    with path.open() as lines:
        dyad = CrisisEvent.model_validate_json(next(lines)).dyad or ""
    replay(path, bootstrap, NAMESPACE)
    with worker_run(bootstrap, NAMESPACE, scratch / "busy-worker") as run:
        finished = run.caught_up(TIME_BOUND_SECONDS)
    processed = asyncio.run(records_in(bootstrap, Topics(NAMESPACE).index))
    sizes = bytes_per_dyad(asyncio.run(latest_value_sizes(bootstrap, changelog_topic(NAMESPACE))))
    result = BusyState(dyad, DAYS * PER_DAY, processed, sizes.get(dyad.encode()), finished, run.peak_rss_mb)
    state = "none saved" if result.state_bytes is None else f"{result.state_bytes / 1024:,.1f} KiB"
    bound = "" if finished else f", stopped at the {TIME_BOUND_SECONDS:.0f} s bound"
    print(
        f"busy dyad: {dyad}, {result.events:,} events ({PER_DAY} a day for {DAYS} days); the worker "
        f"processed {processed:,} (day {result.days_processed:.0f}{bound}); its state on the "
        f"changelog: {state}; peak RSS {run.peak_rss_mb:.0f} MB",
        flush=True,
    )
    return result
