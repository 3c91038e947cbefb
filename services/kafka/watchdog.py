"""Two guards against faust-streaming's offset races after a restart.

`OffsetGuard`: after a restart, faust-streaming often starts a partition a few records past
its committed offset, and its commit logic then commits the skipped records (it marks the gap
as done, and reads the committed offset as the last record processed where Kafka means the
next one to read): records lost for good. The guard checks that each partition's records
come in offset order from the committed offset; when some were skipped, it reads them
straight from Kafka so the worker processes them first. (Seeking Faust's consumer back does
not work here: a batch it is still delivering undoes the seek.)

`CommitWatchdog`: unsticks offset commits that faust-streaming stops making after a restart.

faust-streaming can drop a message it fetched while the worker starts (its consumer fetches
before it seeks to the committed offsets, and a flow suspension abandons a delivery). The
message is never acknowledged, so the partition's committed offset stops there for good:
nothing is lost (the offset never passes the record), but the lag never drains and the next
restart reprocesses everything since. The watchdog notices a partition whose commits stand
still behind what the worker processed while it is idle, and seeks it back to its committed
offset: the records are read again (duplicates for the engine: same ids) and commits resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.kafka import KafkaConnection
from services.kafka.outage import BrokerOutage

log = logging.getLogger(__name__)


@dataclass
class CommitWatchdog:
    kafka: KafkaConnection
    group: str
    outage: BrokerOutage = field(default_factory=BrokerOutage)
    idle_seconds: float = 10.0
    processed: dict[Any, tuple[int, float]] = field(default_factory=dict)
    """Per topic-partition: the last offset processed, and when."""
    last_seen: dict[Any, int] = field(default_factory=dict)
    """Per topic-partition: the committed offset at the previous check."""

    def record(self, tp: Any, offset: int) -> None:
        self.processed[tp] = (offset, time.monotonic())

    async def committed(self, tps: list[Any]) -> dict[Any, int]:
        """The group's committed offsets of `tps` (those it has), waiting out a broker outage."""
        wanted = [TopicPartition(tp.topic, tp.partition) for tp in tps]

        async def ask() -> dict[TopicPartition, Any]:
            admin = AIOKafkaAdminClient(**self.kafka.client_options())
            await admin.start()
            try:
                offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(
                    self.group, partitions=wanted
                )
                return offsets
            finally:
                await admin.close()

        offsets = await self.outage.call("reading the committed offsets", ask)
        by_key = {(tp.topic, tp.partition): tp for tp in tps}
        return {
            by_key[(k.topic, k.partition)]: meta.offset for k, meta in offsets.items() if meta.offset >= 0
        }

    async def check(self, consumer: Any) -> list[Any]:
        """Seeks back every stalled partition this worker owns; returns them."""
        now = time.monotonic()
        assigned = set(consumer.assignment())
        idle = [
            tp for tp, (_, at) in self.processed.items() if tp in assigned and now - at > self.idle_seconds
        ]
        if not idle:
            return []
        committed = await self.committed(idle)
        stalled = [
            tp
            for tp in idle
            if tp in committed
            and committed[tp] <= self.processed[tp][0]
            and self.last_seen.get(tp) == committed[tp]
        ]
        self.last_seen.update(committed)
        for tp in stalled:
            log.warning(
                "%s[%s]: offset commits stopped at %s behind processed %s (a faust-streaming race after"
                " restarts); reading again from %s",
                tp.topic,
                tp.partition,
                committed[tp],
                self.processed[tp][0],
                committed[tp],
            )
            await consumer.seek(tp, committed[tp])
            del self.processed[tp]
        return stalled


@dataclass
class OffsetGuard:
    """Hands over each partition's records in offset order, from the committed offset: what
    Faust skipped is read straight from Kafka and handed over first."""

    kafka: KafkaConnection
    committed: Callable[[list[Any]], Awaitable[dict[Any, int]]]
    outage: BrokerOutage = field(default_factory=BrokerOutage)
    assigned: Callable[[], Iterable[Any]] = tuple
    """The partitions the worker holds: the first record of one has the guard learn where each
    of its topic's starts, in one request, not one per partition (each starts a client: ~0.1 s,
    ~1 s of a worker's first batch with eight)."""
    expected: dict[Any, int] = field(default_factory=dict)
    """Per topic-partition: the next offset to process."""

    def forget(self) -> None:
        """After a rebalance: the next records start again from the committed offsets."""
        self.expected.clear()

    async def _learn(self, tps: list[Any]) -> None:
        """Where each of `tps` starts: its committed offset, or with no commit yet, its first
        (the group starts at the beginning: auto_offset_reset=earliest)."""
        committed = await self.committed(tps)
        unstarted = [tp for tp in tps if tp not in committed]
        self.expected.update(committed)
        if unstarted:
            self.expected.update(
                await self.outage.call(
                    "reading where partitions start", lambda: first_offsets(self.kafka, unstarted)
                )
            )

    async def skipped_before(self, message: Any) -> list[Any]:
        """The records Faust skipped before this one (usually none), in offset order."""
        tp = message.tp
        if tp not in self.expected:
            held = {other for other in self.assigned() if other.topic == tp.topic} - self.expected.keys()
            await self._learn([tp, *(held - {tp})])
        expected = self.expected[tp]
        if message.offset <= expected:
            self.expected[tp] = max(expected, message.offset + 1)
            return []
        log.warning(
            "%s[%s]: faust-streaming skipped offsets %s to %s; reading them from Kafka first",
            tp.topic,
            tp.partition,
            expected,
            message.offset - 1,
        )
        skipped = await read_range(
            self.kafka, tp.topic, tp.partition, expected, message.offset, self.outage.timeout
        )
        self.expected[tp] = message.offset + 1  # only once the gap is read: else it is read again
        return skipped


class GapNotRead(Exception):
    """Records Faust skipped could not be read back: the worker must stop before it commits
    past them (a restart reads them again)."""


async def first_offsets(kafka: KafkaConnection, tps: list[Any]) -> dict[Any, int]:
    """The oldest offset each partition still holds."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
        offsets = await consumer.beginning_offsets(list(partitions))
        return {tp: int(offsets[partition]) for partition, tp in partitions.items()}
    finally:
        await consumer.stop()


async def read_range(
    kafka: KafkaConnection, topic: str, partition: int, start: int, end: int, timeout: float
) -> list[Any]:
    """The records of one partition from offset `start` up to, not including, `end`; GapNotRead
    when they cannot all be read within `timeout` seconds (the broker stays away)."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while (records[-1].offset if records else start - 1) < end - 1:
            if time.monotonic() > deadline:
                raise GapNotRead(f"{topic}[{partition}]: could not read offsets {start} to {end - 1} back")
            batch = await consumer.getmany(tp, timeout_ms=1000)
            records += [record for record in batch.get(tp, []) if record.offset < end]
        return records
    finally:
        await consumer.stop()
