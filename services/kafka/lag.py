"""How far a consumer group is behind a topic: the demo and the tests wait on it."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from schemas.kafka import KafkaConnection


async def group_lag(kafka: KafkaConnection, group: str, topic: str) -> int | None:
    """Records not yet committed by the group, summed over partitions; None before its first commit."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=None)
    try:  # both closed whatever fails, a start too (callers poll this while a broker is away)
        await admin.start()
        await consumer.start()
        (description,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        if not done and any(ends.values()):
            return None
        return sum(int(ends[tp]) - int(done.get(tp, 0)) for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


async def wait_until_caught_up(kafka: KafkaConnection, group: str, topic: str, timeout: float) -> bool:
    """True once the group has committed everything on the topic; False at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await group_lag(kafka, group, topic) == 0:
                return True
        except GroupCoordinatorNotAvailableError:
            pass  # a new broker creates its offsets topic on the first group's demand
        await asyncio.sleep(0.5)
    return False
