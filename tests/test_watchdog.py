"""The guards against faust-streaming's offset races, with a real broker's committed offsets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP

from devtools.broker import Broker
from schemas.kafka import KafkaConnection
from schemas.topics import Topics
from services.kafka.topics import ensure_topics
from services.kafka.watchdog import CommitWatchdog, OffsetGuard


@dataclass
class ConsumerSeen:
    """What the watchdog asks of Faust's consumer: its assignment, and seeks."""

    owned: set[TP]
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> set[TP]:
        return self.owned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


async def commit(bootstrap: str, group: str, offsets: dict[TP, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = {TopicPartition(tp.topic, tp.partition): o for tp, o in offsets.items()}
        consumer.assign(list(partitions))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in partitions.items()})
    finally:
        await consumer.stop()


def test_only_a_partition_stalled_behind_its_processing_is_read_again(
    kafka_broker: Broker, kafka_namespace: str
) -> None:
    topics = Topics(kafka_namespace)
    stalled, done, elsewhere = (TP(topics.events, p) for p in (0, 1, 2))

    async def scenario() -> list[tuple[TP, int]]:
        await ensure_topics(KafkaConnection(kafka_broker.bootstrap), topics)
        await commit(kafka_broker.bootstrap, topics.app_id, {stalled: 40, done: 100, elsewhere: 5})
        watchdog = CommitWatchdog(KafkaConnection(kafka_broker.bootstrap), topics.app_id, idle_seconds=0.0)
        for tp, offset in ((stalled, 90), (done, 99), (elsewhere, 50)):
            watchdog.record(tp, offset)
        consumer = ConsumerSeen(owned={stalled, done})
        assert await watchdog.check(consumer) == []  # a first sighting is not yet a stall
        assert await watchdog.check(consumer) == [stalled]
        return consumer.seeks

    assert asyncio.run(scenario()) == [(stalled, 40)]


@dataclass
class Delivered:
    """A record as Faust hands it to the agent: where it is."""

    tp: TP
    offset: int


@pytest.mark.parametrize("told_the_assignment", [False, True])
def test_records_faust_skipped_are_read_from_kafka_in_order(
    kafka_broker: Broker, kafka_namespace: str, told_the_assignment: bool
) -> None:
    """Told the partitions the worker holds, the guard asks where they all start at the first
    record, once; either way, the same records are handed over."""
    topics = Topics(kafka_namespace)
    restarted, fresh = TP(topics.events, 0), TP(topics.events, 1)
    asked: list[list[TP]] = []

    async def scenario() -> list[list[bytes]]:
        await ensure_topics(KafkaConnection(kafka_broker.bootstrap), topics)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        await producer.start()
        try:
            for number in range(80):
                await producer.send_and_wait(topics.events, f"record {number}".encode(), partition=0)
            for number in range(4):
                await producer.send_and_wait(topics.events, f"other {number}".encode(), partition=1)
        finally:
            await producer.stop()
        await commit(kafka_broker.bootstrap, topics.app_id, {restarted: 72})
        watchdog = CommitWatchdog(KafkaConnection(kafka_broker.bootstrap), topics.app_id)

        async def committed(tps: list[TP]) -> dict[TP, int]:
            asked.append(tps)
            return await watchdog.committed(tps)

        held = {restarted, fresh, TP(topics.index, 0)} if told_the_assignment else set()
        guard = OffsetGuard(KafkaConnection(kafka_broker.bootstrap), committed, assigned=lambda: held)
        # Faust starts three records past the commit, and a partition without a commit past its start.
        delivered = [
            Delivered(restarted, 75),
            Delivered(restarted, 76),
            Delivered(fresh, 2),
            Delivered(fresh, 3),
        ]
        delivered += [Delivered(restarted, 74)]  # a record from before: a duplicate for the engine
        return [[r.value for r in await guard.skipped_before(d)] for d in delivered]

    assert asyncio.run(scenario()) == [
        [b"record 72", b"record 73", b"record 74"],
        [],
        [b"other 0", b"other 1"],
        [],
        [],
    ]
    assert [sorted(tps) for tps in asked] == (
        [[restarted, fresh]] if told_the_assignment else [[restarted], [fresh]]
    )
