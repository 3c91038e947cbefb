"""`crisismon replay`: event files onto `crisis.events`, in event-time order, keyed by dyad.

The record's Kafka timestamp is its event time, and headers name the replay run and the
source line, so any record on the log can be traced back to the file it came from.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from replay.ordering import ReadReport, read_in_play_order
from replay.readers.base import ReaderOptions

log = logging.getLogger(__name__)
DELIVERY_BATCH = 10_000


@dataclass
class ReplayReport:
    run_id: str
    produced: int = 0
    failed: int = 0
    read: ReadReport = field(default_factory=ReadReport)


async def replay(
    paths: Iterable[Path],
    bootstrap: str,
    topic: str,
    file_format: str = "auto",
    speed: float | None = None,
    max_wait: float | None = None,
    when_read: Callable[[], Awaitable[object]] | None = None,
    progress: bool = False,
    options: ReaderOptions | None = None,
) -> ReplayReport:
    """Produce every record; `speed` is event seconds per wall second (None: as fast as possible),
    and no wait between two records is longer than `max_wait` seconds (None: as long as it takes).
    `when_read` is awaited once the files are read, before anything is produced: creating
    the topics there means an unreadable file never has the broker contacted.

    Every input is read (and sorted) before the first record is produced, so an unreadable
    file stops the replay with nothing produced.
    """
    report = ReplayReport(run_id=uuid.uuid4().hex[:12])
    records = read_in_play_order(paths, file_format, options, report.read, progress)
    first = next(records, None)
    if when_read is not None:
        await when_read()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    deliveries: list[asyncio.Future[Any]] = []
    try:
        previous_time = first.record.event_time if first else None
        played = itertools.chain([first] if first else [], records)
        for item in tqdm(played, desc="replay", unit="event", disable=not progress):
            record = item.record
            if speed is not None and previous_time is not None:
                wait = (record.event_time - previous_time).total_seconds() / speed
                await asyncio.sleep(wait if max_wait is None else min(wait, max_wait))
            previous_time = record.event_time
            dyad = record.dyad
            if len(deliveries) >= DELIVERY_BATCH:
                await _settle(deliveries, report)
            deliveries.append(
                await producer.send(
                    topic,
                    value=record.model_dump_json().encode(),
                    key=dyad.encode() if dyad else None,
                    # Kafka takes no timestamp before 1970; 0 reads as none (the clock) downstream
                    timestamp_ms=max(0, int(record.event_time.timestamp() * 1000)),
                    headers=[
                        ("crisismon-replay-run", report.run_id.encode()),
                        ("crisismon-source", str(item.where).encode()),
                    ],
                )
            )
        await _settle(deliveries, report)
    finally:
        await producer.stop()
    return report


async def _settle(deliveries: list[asyncio.Future[Any]], report: ReplayReport) -> None:
    """Wait for the deliveries in flight and count them (so a long replay holds a batch, not all)."""
    for outcome in await asyncio.gather(*deliveries, return_exceptions=True):
        if isinstance(outcome, BaseException):
            report.failed += 1
            log.error("a record was not delivered: %s", outcome)
        else:
            report.produced += 1
    deliveries.clear()
