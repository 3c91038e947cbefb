"""`crisismon replay`: event files onto `crisis.events`, in event-time order, keyed by dyad.

The record's Kafka timestamp is its event time, and headers name the replay run and the
source line, so any record on the log can be traced back to the file it came from.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from replay.ordering import read_in_play_order
from replay.readers import BadRow
from services.kafka.topics import Topics, ensure_topics

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    run_id: str
    produced: int = 0
    failed: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)


async def replay(
    paths: Iterable[Path],
    bootstrap: str,
    topics: Topics,
    file_format: str = "auto",
    speed: float | None = None,
    progress: bool = False,
) -> ReplayReport:
    """Produce every record; `speed` is event seconds per wall second (None: as fast as possible)."""
    records, bad_rows = read_in_play_order(paths, file_format)
    report = ReplayReport(run_id=uuid.uuid4().hex[:12], bad_rows=bad_rows)
    await ensure_topics(bootstrap, topics)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    deliveries = []
    try:
        previous_time = records[0].record.event_time if records else None
        for item in tqdm(records, desc="replay", unit="event", disable=not progress):
            record = item.record
            if speed is not None and previous_time is not None:
                await asyncio.sleep((record.event_time - previous_time).total_seconds() / speed)
            previous_time = record.event_time
            dyad = record.dyad
            deliveries.append(
                await producer.send(
                    topics.events,
                    value=record.model_dump_json().encode(),
                    key=dyad.encode() if dyad else None,
                    timestamp_ms=int(record.event_time.timestamp() * 1000),
                    headers=[
                        ("crisismon-replay-run", report.run_id.encode()),
                        ("crisismon-source", str(item.where).encode()),
                    ],
                )
            )
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
    finally:
        await producer.stop()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            report.failed += 1
            log.error("a record was not delivered: %s", outcome)
        else:
            report.produced += 1
    return report
