"""Keeps the API's projection current: reads the topics from the beginning, all partitions.

It runs inside every worker, outside the consumer group, so each worker's API sees every
dyad whichever partitions it processes. Updates reach /api/stream as they are read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.events import parse_record
from schemas.outputs import Alert, IndexUpdate
from services.kafka.topics import Topics, reader
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
                        self.ingest(tp.topic, message.value or b"")
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

    def ingest(self, topic: str, value: bytes) -> None:
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
                detail = self.projection.add_record(parse_record(value))
                if detail is not None:
                    self.broadcaster.publish("event", detail.model_dump_json())
        except (ValidationError, ValueError):
            pass  # the worker sends invalid events to the dead-letter topic; the view skips them
