"""Unsticks offset commits that faust-streaming stops making after a restart.

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
