"""The guards against faust-streaming's offset races, with a real broker's committed offsets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP

from services.kafka.broker import Broker
from services.kafka.topics import Topics, ensure_topics
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
        await ensure_topics(kafka_broker.bootstrap, topics)
        await commit(kafka_broker.bootstrap, topics.app_id, {stalled: 40, done: 100, elsewhere: 5})
        watchdog = CommitWatchdog(kafka_broker.bootstrap, topics.app_id, idle_seconds=0.0)
        for tp, offset in ((stalled, 90), (done, 99), (elsewhere, 50)):
            watchdog.record(tp, offset)
        consumer = ConsumerSeen(owned={stalled, done})
        assert await watchdog.check(consumer) == []  # a first sighting is not yet a stall
        assert await watchdog.check(consumer) == [stalled]
        return consumer.seeks

    assert asyncio.run(scenario()) == [(stalled, 40)]


@dataclass
class Delivered:
    """A record as Faust hands it to the agent: where it is, and whether Faust may count it done."""

    tp: TP
    offset: int
    acked: bool = False


def test_a_record_after_skipped_ones_is_held_back_and_the_partition_read_again(
    kafka_broker: Broker, kafka_namespace: str
) -> None:
    topics = Topics(kafka_namespace)
    restarted, fresh = TP(topics.events, 0), TP(topics.events, 1)

    async def scenario() -> tuple[list[bool], list[Delivered], list[tuple[TP, int]]]:
        await ensure_topics(kafka_broker.bootstrap, topics)
        await commit(kafka_broker.bootstrap, topics.app_id, {restarted: 72})
        watchdog = CommitWatchdog(kafka_broker.bootstrap, topics.app_id)
        consumer = ConsumerSeen(owned={restarted, fresh})
        guard = OffsetGuard(watchdog.committed, lambda: consumer, retry_seconds=0.0)
        # Faust starts three records past the commit; the partition without a commit is taken as it comes.
        records = [Delivered(restarted, o) for o in (75, 76)] + [Delivered(fresh, 9)]
        admitted = [await guard.admit(record) for record in records]
        await guard.retry()  # the skipped records have not come yet: seek again
        records += [Delivered(restarted, o) for o in (72, 73)]
        admitted += [await guard.admit(record) for record in records[3:]]
        await guard.retry()  # nothing is missing any more
        return admitted, records, consumer.seeks

    admitted, records, seeks = asyncio.run(scenario())
    assert admitted == [False, False, True, True, True]
    assert [record.acked for record in records] == [True, True, False, False, False]
    assert seeks == [(restarted, 72), (restarted, 72)]
