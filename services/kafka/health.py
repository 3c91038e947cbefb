"""Noticing a worker that hangs while its process looks alive, and ending it so that its
supervisor starts a fresh one.

A worker can hang four ways, each with its own limit:

- `group`: it gets no partitions. Restarted at once after a SIGKILL, a worker's group join
  once waited for good on the dead member (aiokafka 0.14). A join takes at most the session
  timeout (the broker drops a dead member) plus the rebalance timeout: the limit.
- `partition`: records wait on a partition it holds, and none is processed for
  `stall_timeout` (its lag does not move).
- `event-loop`: something blocks the event loop for `stall_timeout`: nothing else runs, not
  even the web server, so a thread of its own watches it.
- `kafka`: the broker does not answer for `outage_timeout` (a broker outage the worker could
  not ride out).
- `topics`: a topic the worker reads or writes is missing from the broker for
  `topics_timeout` (someone deleted it; a broker just restarted may say so for a few
  seconds). The restart creates it again, empty.

Past its limit, a stall is reported: a log line, `crisismon_worker_stall_seconds{check}`,
`/api/status` and `/api/health` (503). At twice the limit (the `kafka` and `topics` checks: at the limit)
the worker exits with EXIT_RESTART. A restart is the one way out that always works, and it is
safe: the worker is at least once, so a restart repeats outputs (same ids) and never loses one.
The time the broker was away does not count against the other checks: a partition cannot
move, nor a group form, without it.
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
ENDS_AT_LIMIT: tuple[Check, ...] = ("kafka", "topics")
"""Checks where waiting longer helps nothing: the worker exits at the limit, not twice it."""


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


@dataclass
class WorkerHealth:
    """The worker's view of itself. The worker calls `joining`/`joined` on rebalances,
    `observe_partitions` and `broker_answered`/`broker_silent` as it measures its lag, and
    `check` after each measure; `watch_event_loop` starts the thread that watches the loop."""

    stall_timeout: float
    join_timeout: float
    outage_timeout: float
    metrics: StallMetrics
    topics_timeout: float = 30.0
    exit: Callable[[int], Any] = os._exit
    """os._exit: a hung worker may never finish a clean shutdown, and needs none (at least once)."""
    clock: Callable[[], float] = time.monotonic
    joining_since: float | None = None
    waiting: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Per partition with records waiting: how many, and since when none was processed."""
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

    def observe_partitions(self, lags: dict[str, tuple[int, float]]) -> None:
        """Per partition: records waiting, and when the last one was processed (or the
        partition was assigned, if later)."""
        self.waiting = {name: entry for name, entry in lags.items() if entry[0] > 0}

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

    def broker_silent(self) -> None:
        if self.silent_since is None:
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
        if self.joining_since is None or self.silent_since is not None:
            return []
        seconds = now - self._since(self.joining_since)
        return [Stall("group", seconds, self.join_timeout, "no partitions assigned: joining the group")]

    def _partitions(self, now: float) -> list[Stall]:
        if not self.waiting or self.silent_since is not None or self.joining_since is not None:
            return []
        name, (lag, since) = min(self.waiting.items(), key=lambda item: item[1][1])
        seconds = now - self._since(since)
        return [
            Stall("partition", seconds, self.stall_timeout, f"{name}: {lag} records wait, none processed")
        ]

    def _kafka(self, now: float) -> list[Stall]:
        if self.silent_since is None:
            return []
        seconds = now - self.silent_since
        return [Stall("kafka", seconds, self.outage_timeout, "the broker does not answer")]

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

    def _exit_past_end(self, stall: Stall) -> bool:
        """Whether it exited (`exit` returns only in tests)."""
        end = stall.limit if stall.check in ENDS_AT_LIMIT else 2 * stall.limit
        if stall.seconds > end:
            log.critical("worker stalled past %.0f s, exiting for a restart: %s", end, stall)
            logging.shutdown()
            self.exit(EXIT_RESTART)
        return stall.seconds > end

    def problems(self) -> list[str]:
        """The stalls reported, for /api/status and /api/health."""
        return [str(stall) for stall in self.reported.values()]

    async def keep_beating(self) -> None:
        """Runs on the event loop: the proof that it is not blocked."""
        while True:
            self.beat = self.clock()
            await asyncio.sleep(BEAT_SECONDS)

    def watch_event_loop(self) -> threading.Thread:
        """A daemon thread that times the beats every second (a blocked loop cannot time
        itself, nor answer /api/status: the metric and the log line are what tell)."""

        def watch() -> None:
            told = False
            while True:
                time.sleep(BEAT_SECONDS)
                seconds = self.clock() - self.beat - BEAT_SECONDS
                stall = Stall("event-loop", seconds, self.stall_timeout, "the event loop is blocked")
                blocked = seconds > stall.limit
                self.metrics.observe_stall("event-loop", seconds if blocked else 0.0)
                if blocked != told:
                    log.log(
                        logging.WARNING if blocked else logging.INFO,
                        "worker %sstalled: %s",
                        "" if blocked else "no longer ",
                        stall,
                    )
                    told = blocked
                if self._exit_past_end(stall):
                    return

        thread = threading.Thread(target=watch, name="crisismon-event-loop-watch", daemon=True)
        thread.start()
        return thread
