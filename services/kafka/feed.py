"""Keeps the API's projection current: reads the topics from the beginning, all partitions.

It runs inside every worker, outside the consumer group, so each worker's API sees every
dyad whichever partitions it processes. Updates reach /api/stream as they are read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.events import parse_record
from schemas.outputs import Alert, IndexUpdate
from schemas.validation import describe
from services.core.timeutil import too_far_ahead
from services.kafka.topics import Topics, reader, reference_time
from services.web.projection import Projection
from services.web.stream import Broadcaster

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100
"""The longest a new record waits in the broker before the view reads it."""


@dataclass
class Feed:
    bootstrap: str
    topics: Topics
    projection: Projection
    broadcaster: Broadcaster
    max_future_skew: timedelta = timedelta(days=1)
    records_read: int = 0
    caught_up: bool = False

    async def run(self) -> None:
        """Read until cancelled."""
        consumer = reader(
            self.bootstrap,
            self.topics.events,
            self.topics.index,
            self.topics.alerts,
            max_wait_ms=FETCH_WAIT_MS,
        )
        await consumer.start()
        try:
            ends = await self._ends(consumer)
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for message in messages:
                        self.ingest(tp.topic, message.value or b"", message.timestamp / 1000)
                if not self.caught_up:
                    positions = {tp: await consumer.position(tp) for tp in ends}
                    self.caught_up = all(positions[tp] >= end for tp, end in ends.items())
                    if self.caught_up:
                        log.info("API view caught up: %d records read", self.records_read)
        finally:
            await consumer.stop()

    async def _ends(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        """Where the topics ended when the view started: once there, it is caught up."""
        while not (partitions := consumer.assignment()):
            await asyncio.sleep(0.05)  # a group-less consumer gets its partitions with the metadata
        return dict(await consumer.end_offsets(list(partitions)))

    def ingest(self, topic: str, value: bytes, produced_at: float | None = None) -> None:
        """Into the view, or skipped with a log line: what the worker refused (it sent it to
        the dead-letter topic, by the same rules) and anything else unreadable."""
        self.records_read += 1
        try:
            if topic == self.topics.index:
                update = IndexUpdate.model_validate_json(value)
                self.projection.add_index(update)
                self.broadcaster.publish("index", update.model_dump_json())
            elif topic == self.topics.alerts:
                alert = Alert.model_validate_json(value)
                if self.projection.add_alert(alert):
                    self.broadcaster.publish("alert", alert.model_dump_json())
            else:
                record = parse_record(value)
                reference = reference_time(produced_at)
                if refusal := too_far_ahead(record.event_time, reference, self.max_future_skew):
                    raise ValueError(refusal)
                detail = self.projection.add_record(record)
                if detail is not None:
                    self.broadcaster.publish("event", detail.model_dump_json())
        except (ValidationError, ValueError) as error:
            log.info("API view skips a record of %s: %s", topic, describe(error))
        except Exception:  # a bug of ours must cost one record, not the view
            log.exception("API view skips a record of %s it failed on", topic)
