"""The topics of the contract, their configurations, and their idempotent creation."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.core.timeutil import from_seconds

log = logging.getLogger(__name__)

PARTITIONS = 8
FOREVER = "-1"
THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)


def reference_time(produced_at: float | None) -> datetime:
    """What a record's event time is checked against for lying in the future (`too_far_ahead`):
    its Kafka timestamp (seconds), so that reading the log again later decides the same, but
    never past the clock, so that a timestamp that lies too cannot let it in. None: the clock."""
    now = time.time()
    return from_seconds(min(produced_at, now) if produced_at and produced_at > 0 else now)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


@dataclass(frozen=True)
class Topics:
    """Topic names under an optional namespace (a prefix that isolates, e.g., backtest runs)."""

    namespace: str = ""

    def _named(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def events(self) -> str:
        return self._named("crisis.events")

    @property
    def dead_letters(self) -> str:
        return self._named("crisis.events.dlq")

    @property
    def index(self) -> str:
        return self._named("crisis.index")

    @property
    def alerts(self) -> str:
        return self._named("crisis.alerts")

    @property
    def app_id(self) -> str:
        """The Faust app id: its consumer group and the prefix of its changelog topics."""
        return self._named("crisismon")

    def specs(self) -> list[TopicSpec]:
        """The log and the alerts are kept forever; the index is derived and can be rebuilt."""
        return [
            TopicSpec(self.events, PARTITIONS, {"retention.ms": FOREVER, "retention.bytes": FOREVER}),
            TopicSpec(self.dead_letters, 1, {"retention.ms": FOREVER}),
            TopicSpec(self.index, PARTITIONS, {"retention.ms": THIRTY_DAYS_MS}),
            TopicSpec(self.alerts, PARTITIONS, {"retention.ms": FOREVER}),
        ]


async def ensure_topics(bootstrap: str, topics: Topics) -> list[str]:
    """Create the topics that are missing; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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


def reader(
    bootstrap: str, *topics: str, from_beginning: bool = True, max_wait_ms: int = 500
) -> AIOKafkaConsumer:
    """A consumer of every partition outside any group (it commits nothing), for those who only read."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=max_wait_ms,
    )
