"""Records onto `crisis.events`: `crisismon replay` (files, in play order) and the producer every
way in shares (`follow` uses it file by file).

The record's Kafka timestamp is its event time, and headers name the run and the source line,
so any record on the log can be traced back to the file it came from.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from replay.ordering import ReadReport, read_in_play_order
from replay.readers import Located
from replay.readers.base import ReaderOptions
from schemas.kafka import OUTAGE_TIMEOUT_SECONDS, KafkaConnection
from schemas.topics import SOURCE_HEADER, event_message

log = logging.getLogger(__name__)
DELIVERY_BATCH = 10_000


@dataclass
class Deliveries:
    """Records Kafka has acknowledged, and those it has not."""

    produced: int = 0
    failed: int = 0
    errors: list[BaseException] = field(default_factory=list)
    """The first few reasons for failures (Kafka gives one per record: they are much alike)."""


class EventProducer:
    """Produces records to `crisis.events` keyed by dyad, each with the run's headers and its
    source line; `settle` waits until Kafka has them (acks=all, idempotent).

    Used as `async with EventProducer(...) as producer:`; at most DELIVERY_BATCH records are in
    flight, so a long replay holds a batch, not every delivery.

    A broker that goes away for less than `outage_timeout` seconds loses nothing: aiokafka
    tries a record again until it is that old (and waits as long for the topic's metadata and
    for room in its buffer), so the records wait and go once the broker is back.
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        headers: Mapping[str, str],
        outage_timeout: float = OUTAGE_TIMEOUT_SECONDS,
    ) -> None:
        self.topic = topic
        self.headers = [(name, value.encode()) for name, value in headers.items()]
        self._kafka = AIOKafkaProducer(
            **kafka.client_options(),
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            request_timeout_ms=int(outage_timeout * 1000),
        )
        self._in_flight: list[asyncio.Future[Any]] = []
        self.deliveries = Deliveries()

    async def __aenter__(self) -> EventProducer:
        await self._kafka.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._kafka.stop()

    async def send(self, item: Located) -> None:
        if len(self._in_flight) >= DELIVERY_BATCH:
            await self.settle()
        message = event_message(item.record, datetime.now(UTC))
        self._in_flight.append(
            await self._kafka.send(
                self.topic,
                value=message.value,
                key=message.key,
                timestamp_ms=message.timestamp_ms,
                headers=[*self.headers, (SOURCE_HEADER, str(item.where).encode())],
            )
        )

    async def settle(self) -> Deliveries:
        """Wait for the records in flight; returns the counts so far."""
        for outcome in await asyncio.gather(*self._in_flight, return_exceptions=True):
            if isinstance(outcome, BaseException):
                self.deliveries.failed += 1
                if len(self.deliveries.errors) < 3:
                    self.deliveries.errors.append(outcome)
            else:
                self.deliveries.produced += 1
        self._in_flight.clear()
        return self.deliveries


@dataclass
class ReplayReport:
    run_id: str
    produced: int = 0
    failed: int = 0
    read: ReadReport = field(default_factory=ReadReport)


async def replay(
    paths: Iterable[Path],
    kafka: KafkaConnection,
    topic: str,
    file_format: str = "auto",
    speed: float | None = None,
    max_wait: float | None = None,
    when_read: Callable[[], Awaitable[object]] | None = None,
    progress: bool = False,
    options: ReaderOptions | None = None,
    outage_timeout: float = OUTAGE_TIMEOUT_SECONDS,
) -> ReplayReport:
    """Produce every record; `speed` is event seconds per wall second (None: as fast as possible),
    and no wait between two records is longer than `max_wait` seconds (None: as long as it takes).
    `when_read` is awaited once the files are read, before anything is produced: creating
    the topics there means an unreadable file never has the broker contacted. A broker outage
    shorter than `outage_timeout` seconds only holds the records back (see EventProducer).

    In event-time order every input is read (and sorted) before the first record is produced,
    so an unreadable file stops the replay with nothing produced.
    """
    report = ReplayReport(run_id=uuid.uuid4().hex[:12])
    records = read_in_play_order(paths, file_format, options, report.read, progress)
    first = next(records, None)
    if when_read is not None:
        await when_read()
    headers = {"crisismon-replay-run": report.run_id}
    async with EventProducer(kafka, topic, headers, outage_timeout) as producer:
        previous_time = first.record.event_time if first else None
        played = itertools.chain([first] if first else [], records)
        for item in tqdm(played, desc="replay", unit="event", disable=not progress):
            if speed is not None and previous_time is not None:
                wait = (item.record.event_time - previous_time).total_seconds() / speed
                await asyncio.sleep(wait if max_wait is None else min(wait, max_wait))
            previous_time = item.record.event_time
            await producer.send(item)
        deliveries = await producer.settle()
    for error in deliveries.errors:
        log.error("a record was not delivered: %s", error)
    report.produced, report.failed = deliveries.produced, deliveries.failed
    return report
