"""A follower's memory, kept in Kafka: the files it has finished with (`crisis.follow.progress`).

The topic is the record, not a local file: a follower restarted anywhere (another machine, a
new container) finds its place. A file is recorded only after Kafka has acknowledged all its
records, so a follower killed mid-file plays that file again on restart; its records repeat
with the same event ids, which the engine counts once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from schemas.kafka import OUTAGE_TIMEOUT_SECONDS, KafkaConnection
from schemas.progress import FollowedFile

log = logging.getLogger(__name__)


class ProgressLog:
    """The files of one source recorded in the progress topic."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topic: str,
        source: str,
        outage_timeout: float = OUTAGE_TIMEOUT_SECONDS,
    ) -> None:
        """`outage_timeout`: how long a record waits for a broker that went away (as EventProducer)."""
        self.kafka = kafka
        self.topic = topic
        self.source = source
        self._producer = AIOKafkaProducer(
            **kafka.client_options(),
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=int(outage_timeout * 1000),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def load(self) -> dict[str, FollowedFile]:
        """Every file of this source recorded so far, by name (the latest record of each)."""
        consumer = AIOKafkaConsumer(**self.kafka.client_options(), group_id=None, enable_auto_commit=False)
        await consumer.start()
        files: dict[str, FollowedFile] = {}
        try:
            # One partition (schemas/topics.py); the metadata of a topic just created may lag.
            numbers = consumer.partitions_for_topic(self.topic) or {0}
            partitions = [TopicPartition(self.topic, number) for number in sorted(numbers)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        followed = _parsed(record.value)
                        if followed is not None and followed.source == self.source:
                            files[followed.file] = followed
        finally:
            await consumer.stop()
        return files

    async def record(self, followed: FollowedFile) -> None:
        """Keep `followed` (waits until Kafka has it)."""
        await self._producer.send_and_wait(
            self.topic, key=followed.key.encode(), value=followed.model_dump_json().encode()
        )


def finished(source: str, file: str, **outcome: object) -> FollowedFile:
    """A record of a file finished now (the follower's clock: when, not what happened)."""
    return FollowedFile.model_validate(
        {"source": source, "file": file, "finished_at": datetime.now(UTC), **outcome}
    )


def _parsed(value: bytes | None) -> FollowedFile | None:
    try:
        return FollowedFile.model_validate_json(value or b"")
    except ValidationError:
        log.warning("a progress record that is not a FollowedFile: ignored")
        return None
