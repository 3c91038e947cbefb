"""Two guards against faust-streaming's offset races after a restart.

`OffsetGuard`: faust-streaming can also drop the *first* record it should process after an
assignment. Its commit logic then takes the next record's acknowledgement as contiguous
with the committed offset (an off-by-one: it reads the committed offset as the last record
processed, where Kafka means the next one to read) and commits past the dropped record: a
record lost for good. The guard checks that each partition's records come in offset order
from the committed offset; when one is skipped, it keeps faust from acknowledging what came
instead and seeks back, so the skipped record is read and processed.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)


@dataclass
class CommitWatchdog:
    bootstrap: str
    group: str
    idle_seconds: float = 10.0
    processed: dict[Any, tuple[int, float]] = field(default_factory=dict)
    """Per topic-partition: the last offset processed, and when."""
    last_seen: dict[Any, int] = field(default_factory=dict)
    """Per topic-partition: the committed offset at the previous check."""

    def record(self, tp: Any, offset: int) -> None:
        self.processed[tp] = (offset, time.monotonic())

    async def committed(self, tps: list[Any]) -> dict[Any, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            wanted = [TopicPartition(tp.topic, tp.partition) for tp in tps]
            offsets = await admin.list_consumer_group_offsets(self.group, partitions=wanted)
        finally:
            await admin.close()
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
    """Lets each partition's records through only in offset order, from the committed offset."""

    committed: Callable[[list[Any]], Awaitable[dict[Any, int]]]
    consumer: Callable[[], Any]
    retry_seconds: float = 2.0
    expected: dict[Any, int | None] = field(default_factory=dict)
    """Per topic-partition: the next offset to process (None: no commit yet, take the first)."""
    seeking: dict[Any, tuple[int, float]] = field(default_factory=dict)
    """Per topic-partition: the offset a seek back asked for, and when, until it arrives."""

    def forget(self) -> None:
        """After a rebalance: the next records start again from the committed offsets."""
        self.expected.clear()
        self.seeking.clear()

    async def admit(self, message: Any) -> bool:
        """True when the record is next in order; otherwise seeks back (once) and returns False."""
        tp = message.tp
        if tp not in self.expected:
            self.expected[tp] = (await self.committed([tp])).get(tp)
        expected = self.expected[tp]
        if expected is not None and message.offset > expected:
            # Faust must not count this record as done: its acknowledgement would let the
            # commit pass the skipped ones. It comes again after the seek.
            message.acked = True
            if tp not in self.seeking:
                log.warning(
                    "%s[%s]: faust-streaming skipped offsets %s to %s; reading again from %s",
                    tp.topic,
                    tp.partition,
                    expected,
                    message.offset - 1,
                    expected,
                )
                await self.seek(tp, expected)
            return False
        self.seeking.pop(tp, None)
        self.expected[tp] = message.offset + 1
        return True

    async def retry(self) -> None:
        """Seek again where the records asked for have not come: a batch faust was still
        delivering when the first seek was made can undo it (faust then drops what it reads)."""
        now = time.monotonic()
        for tp, (offset, since) in list(self.seeking.items()):
            if now - since >= self.retry_seconds:
                log.info("%s[%s]: seeking again to %s", tp.topic, tp.partition, offset)
                await self.seek(tp, offset)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeking[tp] = (offset, time.monotonic())
        await self.consumer().seek(tp, offset)
