"""Reads the topics from the beginning, all partitions, into a view (the API's, in the web side).

It runs inside every worker, outside the consumer group, so each worker's API sees every
dyad whichever partitions it processes. Records reach the view (and /api/stream) as read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.kafka import KafkaConnection
from schemas.topics import RecordKind, Topics
from services.kafka.topics import reader

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100
"""The longest a new record waits in the broker before the view reads it."""
FETCH_MIN_BYTES = 256 * 1024
"""What the broker gathers before it answers the view sooner than FETCH_WAIT_MS: about that
long of the topics at 2,500 events/s. Answered at the first byte (aiokafka's default), the view
chased the worker's outputs in fetches of a few records, each with its own cost on the worker's
event loop and in the broker: a worker with the view ran 2,359 events/s without this, 2,779
with it (`make bench`'s 10,000 events, medians of three runs in turns)."""


class ViewSink(Protocol):
    """Where the feed puts what it reads. `ingest` must not raise: a record it cannot use is
    its to skip (and log). `caught_up` is set once the topics are read up to where they
    ended when the feed started."""

    caught_up: bool

    def ingest(self, kind: RecordKind, value: bytes, produced_at: float | None) -> None: ...


@dataclass
class Feed:
    kafka: KafkaConnection
    topics: Topics
    sink: ViewSink

    async def run(self) -> None:
        """Read until cancelled."""
        kinds: dict[str, RecordKind] = {
            self.topics.events: "event",
            self.topics.index: "index",
            self.topics.alerts: "alert",
        }
        consumer = reader(self.kafka, *kinds, max_wait_ms=FETCH_WAIT_MS, min_bytes=FETCH_MIN_BYTES)
        await consumer.start()
        try:
            ends = await self._ends(consumer)
            read = 0
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for message in messages:
                        self.sink.ingest(kinds[tp.topic], message.value or b"", message.timestamp / 1000)
                    read += len(messages)
                if not self.sink.caught_up:
                    # A partition no longer assigned (its topic was deleted) has nothing to catch up.
                    held = consumer.assignment()
                    positions = {tp: await consumer.position(tp) for tp in ends if tp in held}
                    if positions and all(position >= ends[tp] for tp, position in positions.items()):
                        self.sink.caught_up = True
                        log.info("API view caught up: %d records read", read)
        finally:
            await consumer.stop()

    async def _ends(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Where the topics ended when the view started: once there, it is caught up."""
        while not (partitions := consumer.assignment()):
            await asyncio.sleep(0.05)  # a group-less consumer gets its partitions with the metadata
        return dict(await consumer.end_offsets(list(partitions)))
