"""The follower: each new file of a source, in name order, read and produced once.

For each file: fetch it (checked), read it with the readers as `replay` does (bad rows
reported, repeats merged within the file), produce its records, wait until Kafka has them,
then record the file in `crisis.follow.progress`. Rows of one event in several files make a
record per file, which the engine adds together (`CrisisEvent.witnesses`): so the alerts are
those of `crisismon backtest --order published` over the same files, id for id.

Faults cost a file at most, never the follower: a file that cannot be fetched or opened is
tried `attempts` times, waits doubling between tries, then reported, recorded as failed and
skipped; Kafka that does not take the records is waited for, however long, since skipping
would lose the file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.errors import KafkaError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential_jitter,
)

from replay.follow.metrics import FollowMetrics
from replay.follow.progress import ProgressLog, finished
from replay.follow.source import FetchError, Published, Source
from replay.ordering import ReadReport, read_in_play_order
from replay.producer import EventProducer
from replay.readers import InputError, Located
from replay.readers.base import ReaderOptions
from replay.readers.dispatch import check_readable
from schemas.progress import FileOutcome

log = logging.getLogger(__name__)

LONGEST_BACKOFF = timedelta(minutes=5)
BAD_ROWS_LOGGED = 5
"""Per file, the bad rows logged one by one; the rest are counted (the file's record has all)."""


class Undelivered(Exception):
    """Kafka did not acknowledge some of a file's records: the file is produced again."""


@dataclass(frozen=True)
class FollowOptions:
    once: bool
    """Catch up, then stop (rather than poll forever)."""
    poll: timedelta
    attempts: int
    backoff: timedelta
    file_format: str = "auto"
    reading: ReaderOptions = dataclasses.field(default_factory=ReaderOptions)


@dataclass
class FollowReport:
    """What this run of the follower did."""

    produced: int = 0
    failed: int = 0
    records: int = 0
    done_before: int = 0
    """Files the progress topic already had when the run started."""


class Follower:
    def __init__(
        self,
        source: Source,
        events: EventProducer,
        progress: ProgressLog,
        metrics: FollowMetrics,
        options: FollowOptions,
    ) -> None:
        self.source, self.events, self.progress = source, events, progress
        self.metrics, self.options = metrics, options
        self.report = FollowReport()

    async def run(self) -> FollowReport:
        """Follow until stopped (cancelled), or with `once` until nothing new is left."""
        done = set(await self.progress.load())
        self.report.done_before = len(done)
        log.info("following %s (%d files done before)", self.source.key, len(done))
        while True:
            files = await self._listing(done)
            for file in files:
                await self._follow(file)
                done.add(file.name)
            if self.options.once and not files and not self.source.incomplete:
                return self.report
            if not files:
                await asyncio.sleep(self._pause())

    def _pause(self) -> float:
        """Until the next look: the poll interval, up to a fifth less so that followers started
        together do not all ask at once (never more: a GDELT follower that looks less often
        than GDELT publishes misses files from the newest list, and must read the full one);
        with `once`, only until files still being written are done."""
        poll = self.options.poll.total_seconds()
        if self.options.once:
            return min(poll, 0.5)
        return poll * random.uniform(0.8, 1.0)

    async def _listing(self, done: set[str]) -> list[Published]:
        """New files; a source that cannot be listed is tried again, and with `once` given up on
        after `attempts` (FetchError); live, the follower just looks again at the next poll."""
        try:
            async for attempt in self._tries(self.options.attempts, f"listing {self.source.key}"):
                with attempt:
                    files = await self.source.new_files(done)
        except FetchError as error:
            if self.options.once:
                raise
            log.error("cannot list %s: %s; trying again at the next poll", self.source.key, error)
            return []
        self.metrics.last_listing.set_to_current_time()
        return files

    async def _follow(self, file: Published) -> None:
        with tempfile.TemporaryDirectory(prefix="crisismon-follow-") as folder:
            try:
                async for attempt in self._tries(self.options.attempts, file.name):
                    with attempt:
                        path = await self.source.fetch(file, Path(folder))
                        check_readable(path, self.options.file_format, file.location)
                async for attempt in self._tries(None, f"producing {file.name}", (KafkaError, Undelivered)):
                    with attempt:
                        read, produced = await self._produce(path, file)
            except (FetchError, InputError) as error:
                self.metrics.failed_tries.inc()
                log.error("%s: skipped after %d tries: %s", file.name, self.options.attempts, error)
                await self._record(file, FileOutcome.FAILED, reason=str(error)[:2000])
                self.report.failed += 1
                self.metrics.files.labels("failed").inc()
                return
        await self._record(
            file, FileOutcome.PRODUCED, rows=read.rows, records=produced, bad_rows=read.bad_count
        )
        self.report.produced += 1
        self.report.records += produced
        self.metrics.produced(file.published_at)
        log.info(
            "%s: %d rows read, %d records produced, %d rows merged, %d bad, %d of no dyad",
            file.name,
            read.rows,
            produced,
            read.merged,
            read.bad_count,
            read.no_dyad,
        )

    async def _produce(self, path: Path, file: Published) -> tuple[ReadReport, int]:
        """The file's records onto crisis.events, acknowledged; its rows counted in metrics."""
        read = ReadReport()
        before = dataclasses.replace(await self.events.settle())  # a failed try's records in flight
        for item in _records(path, file, self.options, read):
            await self.events.send(item)
        after = await self.events.settle()
        produced, failed = after.produced - before.produced, after.failed - before.failed
        if failed:
            raise Undelivered(f"Kafka did not acknowledge {failed} of {produced + failed} records")
        for bad in read.bad_rows[:BAD_ROWS_LOGGED]:
            log.warning("%s: skipped: %s", bad.where, bad.reason)
        self.metrics.rows.labels("bad").inc(read.bad_count)
        self.metrics.rows.labels("no-dyad").inc(read.no_dyad)
        self.metrics.rows.labels("events").inc(read.rows - read.bad_count - read.no_dyad)
        self.metrics.records.inc(produced)
        return read, produced

    async def _record(self, file: Published, outcome: FileOutcome, **counts: object) -> None:
        """The file's entry in the progress topic, waited for like the records (Kafka down: the
        follower waits; the file is not played again, since its records are in)."""
        followed = finished(self.progress.source, file.name, outcome=outcome, **counts)
        async for attempt in self._tries(None, f"recording {file.name}", (KafkaError,)):
            with attempt:
                await self.progress.record(followed)

    def _tries(
        self,
        attempts: int | None,
        what: str,
        failures: tuple[type[BaseException], ...] = (FetchError, InputError),
    ) -> AsyncRetrying:
        """Tries of `what`, `attempts` at most (None: until it works), waits doubling from
        `backoff` with jitter, up to five minutes; each failed try is one log line."""
        backoff = self.options.backoff.total_seconds()

        def said(state: RetryCallState) -> None:
            self.metrics.failed_tries.inc()
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s failed (try %d): %s; again in %.1f s", what, state.attempt_number, error, wait)

        return AsyncRetrying(
            stop=stop_never if attempts is None else stop_after_attempt(attempts),
            wait=wait_exponential_jitter(
                multiplier=backoff, max=LONGEST_BACKOFF.total_seconds(), jitter=backoff
            ),
            retry=retry_if_exception_type(failures),
            before_sleep=said,
            reraise=True,
        )


def _records(path: Path, file: Published, options: FollowOptions, read: ReadReport) -> Iterator[Located]:
    """The file's records in play order, named by where it was published; rows dated ahead of
    the clock (now, as each file is read) by more than max_future_skew are bad rows."""
    reading = dataclasses.replace(options.reading, clock=datetime.now(UTC))
    return read_in_play_order([path], options.file_format, reading, read, names={path: file.location})
