"""Noticing a worker that hangs while its process looks alive, and ending it so that its
supervisor starts a fresh one.

A worker can hang five ways, each with its own limit:

- `group`: it gets no partitions. Restarted at once after a SIGKILL, a worker's group join
  once waited for good on the dead member (aiokafka 0.14). A join takes at most the session
  timeout (the broker drops a dead member) plus the rebalance timeout: the limit.
- `partition`: records wait on a partition it holds, and none is processed for
  `stall_timeout` (counted from when they started waiting, or from the last record processed
  while they wait; not while Faust recovers its tables, which holds every partition back).
- `event-loop`: something blocks the event loop for `stall_timeout`: nothing else runs, not
  even the web server, so a thread of its own watches it.
- `kafka`: the broker does not answer for half of `outage_timeout`; at the timeout, a broker
  outage the worker could not ride out.
- `topics`: a topic the worker reads or writes is missing from the broker for
  `topics_timeout` (someone deleted it; a broker just restarted may say so for a few
  seconds). The restart creates it again, empty.

Past its limit, a stall is reported: a log line, `crisismon_worker_stall_seconds{check}`,
`/api/status` and `/health` (503). At twice the limit the worker exits with EXIT_RESTART. A
restart is the one way out that always works, and it is safe: the worker is at least once, so
a restart repeats outputs (same ids) and never loses one. The time the broker was away does not
count against the other checks: a partition cannot move, nor a group form, without it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

EXIT_RESTART = 75
"""EX_TEMPFAIL: a supervisor should start the worker again."""
BEAT_SECONDS = 1.0

Check = Literal["group", "partition", "event-loop", "kafka", "topics"]
CHECKS: tuple[Check, ...] = ("group", "partition", "event-loop", "kafka", "topics")


class StallMetrics(Protocol):
    """Where stalls are shown (`crisismon_worker_stall_seconds{check}`). Called from the event
    loop and from the watching thread: must be thread-safe and must not raise."""

    def observe_stall(self, check: Check, seconds: float) -> None: ...


@dataclass(frozen=True)
class Stall:
    check: Check
    seconds: float
    """How long it has lasted."""
    limit: float
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail} for {self.seconds:.0f} s (limit {self.limit:.0f} s)"


@dataclass(frozen=True)
class Waiting:
    lag: int
    position: int
    since: float


def say(line: str) -> None:
    """A line on stderr without logging's locks (see `WorkerHealth.watch_event_loop`)."""
    os.write(2, f"{line}\n".encode())


@dataclass
class WorkerHealth:
    """The worker's view of itself. The worker calls `joining`/`joined` on rebalances,
    `observe_partitions` and `broker_answered`/`broker_silent` as it measures its lag, and
    `check` after each measure; `watch_event_loop` starts the thread that watches the loop."""

    stall_timeout: float
    join_timeout: float
    outage_timeout: float
    metrics: StallMetrics
    topics_timeout: float
    exit: Callable[[int], Any] = os._exit
    """os._exit: a hung worker may never finish a clean shutdown, and needs none (at least once)."""
    clock: Callable[[], float] = time.monotonic
    joining_since: float | None = None
    recovering: bool = False
    """Faust is reading its tables back (every partition is held until it is done)."""
    waiting: dict[str, Waiting] = field(default_factory=dict)
    """Per partition with records waiting: how many, where it stands, since when it has not moved."""
    silent_since: float | None = None
    """Since when the broker has not answered (None: it answers)."""
    broker_back_at: float = 0.0
    missing_topics: list[str] = field(default_factory=list)
    missing_since: float | None = None
    beat: float = 0.0
    reported: dict[Check, Stall] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.joining_since = self.beat = self.clock()

    def joining(self) -> None:
        if self.joining_since is None:
            self.joining_since = self.clock()
        self.waiting.clear()

    def joined(self) -> None:
        self.joining_since = None

    def observe_recovery(self, recovering: bool) -> None:
        if recovering != self.recovering:
            self.waiting.clear()  # the partitions' waits start once they are let go
        self.recovering = recovering

    def observe_partitions(self, positions: dict[str, tuple[int, int]]) -> None:
        """Per partition held: (records waiting, the next offset to process). A wait starts when
        records start waiting, and again each time the partition moves."""
        now, before = self.clock(), self.waiting
        self.waiting = {}
        for name, (lag, position) in positions.items():
            if lag > 0:
                earlier = before.get(name)
                since = earlier.since if earlier is not None and earlier.position == position else now
                self.waiting[name] = Waiting(lag, position, since)

    def broker_answered(self) -> None:
        if self.silent_since is not None:
            self.broker_back_at = self.clock()
        self.silent_since = None

    def observe_topics(self, missing: list[str]) -> None:
        """The topics the worker needs that the broker does not have (it answered)."""
        if not missing:
            self.missing_since = None
        elif self.missing_since is None:
            self.missing_since = self.clock()
        self.missing_topics = missing

    def broker_silent(self, error: BaseException) -> None:
        if self.silent_since is None:
            log.warning("Kafka does not answer (%r): waiting for it", error)
            self.silent_since = self.clock()

    def stalls(self) -> list[Stall]:
        """What is stuck now, past its limit."""
        now = self.clock()
        found = [*self._group(now), *self._partitions(now), *self._kafka(now), *self._topics(now)]
        return [stall for stall in found if stall.seconds > stall.limit]

    def _since(self, moment: float) -> float:
        """Time stuck since `moment`, not counting time the broker was away."""
        return max(moment, self.broker_back_at)

    def _group(self, now: float) -> list[Stall]:
        if self.joining_since is None or self.silent_since is not None or self.recovering:
            return []
        seconds = now - self._since(self.joining_since)
        return [Stall("group", seconds, self.join_timeout, "no partitions assigned: joining the group")]

    def _partitions(self, now: float) -> list[Stall]:
        if (
            not self.waiting
            or self.silent_since is not None
            or self.joining_since is not None
            or self.recovering
        ):
            return []
        name, longest = min(self.waiting.items(), key=lambda item: item[1].since)
        lag, seconds = longest.lag, now - self._since(longest.since)
        return [
            Stall("partition", seconds, self.stall_timeout, f"{name}: {lag} records wait, none processed")
        ]

    def _kafka(self, now: float) -> list[Stall]:
        if self.silent_since is None:
            return []
        seconds = now - self.silent_since
        return [Stall("kafka", seconds, self.outage_timeout / 2, "the broker does not answer")]

    def _topics(self, now: float) -> list[Stall]:
        if self.missing_since is None:
            return []
        seconds = now - self.missing_since
        missing = ", ".join(self.missing_topics)
        return [Stall("topics", seconds, self.topics_timeout, f"{missing} missing from the broker")]

    def check(self) -> list[Stall]:
        """On the event loop: report what is stuck (and what no longer is); exit if a stall
        is past its end. (The event loop is running, so it is not the one stuck.)"""
        stalls = self.stalls()
        stuck = {stall.check: stall for stall in stalls}
        for check in CHECKS:
            if check != "event-loop":
                self.metrics.observe_stall(check, stuck[check].seconds if check in stuck else 0.0)
        for check in set(self.reported) - set(stuck):
            log.info("worker no longer stalled: %s", check)
        for stall in stalls:
            if stall.check not in self.reported:
                log.warning("worker stalled: %s", stall)
        self.reported = stuck
        for stall in stalls:
            self._exit_past_end(stall)
        return stalls

    def _exit_past_end(self, stall: Stall) -> None:
        if stall.seconds > 2 * stall.limit:
            log.critical("worker stalled past %.0f s, exiting for a restart: %s", 2 * stall.limit, stall)
            logging.shutdown()
            self.exit(EXIT_RESTART)

    def problems(self) -> list[str]:
        """The stalls reported, for /api/status and /health."""
        return [str(stall) for stall in self.reported.values()]

    async def keep_beating(self) -> None:
        """Runs on the event loop: the proof that it is not blocked."""
        while True:
            self.beat = self.clock()
            await asyncio.sleep(BEAT_SECONDS)

    def watch_event_loop(self) -> threading.Thread:
        """A daemon thread that times the beats every second (a blocked loop cannot time
        itself, nor answer /health: the metric and the line on stderr are what tell). It writes
        to stderr itself, not through logging: a loop blocked on a log write holds the lock
        every logging handler takes, and the thread must still get to its exit."""

        def watch() -> None:
            told = False
            while True:
                time.sleep(BEAT_SECONDS)
                seconds = self.clock() - self.beat - BEAT_SECONDS
                stall = Stall("event-loop", seconds, self.stall_timeout, "the event loop is blocked")
                blocked = seconds > stall.limit
                self.metrics.observe_stall("event-loop", seconds if blocked else 0.0)
                if blocked != told:
                    say(f"worker {'' if blocked else 'no longer '}stalled: {stall}")
                    told = blocked
                if seconds > 2 * stall.limit:
                    say(f"worker stalled past {2 * stall.limit:.0f} s, exiting for a restart: {stall}")
                    self.exit(EXIT_RESTART)
                    return

        thread = threading.Thread(target=watch, name="crisismon-event-loop-watch", daemon=True)
        thread.start()
        return thread
