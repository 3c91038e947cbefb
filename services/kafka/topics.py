"""Creating the contract's topics (schemas/topics.py) when missing, and reading them outside a group."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.kafka import KafkaConnection
from schemas.topics import Topics

log = logging.getLogger(__name__)


async def ensure_topics(kafka: KafkaConnection, topics: Topics) -> list[str]:
    """Create the topics that are missing; returns the names created."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topics.specs() if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(s.name, s.partitions, 1, topic_configs=s.config) for s in missing]
                )
            except TopicAlreadyExistsError:
                log.info("another process created the topics first")
        for spec in missing:
            log.info("created topic %s (%d partitions, %s)", spec.name, spec.partitions, spec.config)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


@dataclass
class BrokerProbe:
    """Asks the broker, over one admin connection kept open, which of the `needed` topics it
    does not have: the worker's health check (it answers = the broker is up)."""

    kafka: KafkaConnection
    needed: list[str]
    admin: AIOKafkaAdminClient | None = field(default=None, repr=False)

    async def missing_topics(self) -> list[str]:
        """KafkaError when the broker does not answer."""
        try:
            if self.admin is None:
                self.admin = AIOKafkaAdminClient(**self.kafka.client_options())
                await self.admin.start()
            existing = set(await self.admin.list_topics())
        except BaseException:  # cancelled by a timeout too: the next check starts afresh
            await self.close()
            raise
        return [name for name in self.needed if name not in existing]

    async def close(self) -> None:
        admin, self.admin = self.admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


def reader(
    kafka: KafkaConnection,
    *topics: str,
    from_beginning: bool = True,
    max_wait_ms: int = 500,
    min_bytes: int = 1,
) -> AIOKafkaConsumer:
    """A consumer of every partition outside any group (it commits nothing), for those who only
    read. The broker answers a fetch once it has `min_bytes` to send, or after `max_wait_ms`."""
    return AIOKafkaConsumer(
        *topics,
        **kafka.client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=max_wait_ms,
        fetch_min_bytes=min_bytes,
    )
