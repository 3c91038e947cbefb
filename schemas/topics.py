"""The topics of the contract: their names (under an optional namespace), partitions and
retention. What each carries is in the models: `crisis.events` CrisisEvent or Retraction,
`crisis.index` IndexUpdate, `crisis.alerts` Alert, `crisis.events.dlq` DeadLetter, and
`crisis.follow.progress` FollowedFile (what followers have produced)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.events import CrisisEvent, Retraction

RecordKind = Literal["event", "index", "alert"]
"""What a record read from `crisis.events`, `crisis.index` or `crisis.alerts` is."""

SOURCE_HEADER = "crisismon-source"
"""The header that says where a record on `crisis.events` came from (file:line, api:address)."""
PARTITIONS = 8
FOREVER = "-1"
THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)


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
    def follow_progress(self) -> str:
        return self._named("crisis.follow.progress")

    @property
    def app_id(self) -> str:
        """The Faust app id: its consumer group and the prefix of its changelog topics."""
        return self._named("crisismon")

    def specs(self) -> list[TopicSpec]:
        """The log and the alerts are kept forever; the index is derived and can be rebuilt; a
        follower's progress keeps the latest record per file (compacted)."""
        return [
            TopicSpec(self.events, PARTITIONS, {"retention.ms": FOREVER, "retention.bytes": FOREVER}),
            TopicSpec(self.dead_letters, 1, {"retention.ms": FOREVER}),
            TopicSpec(self.index, PARTITIONS, {"retention.ms": THIRTY_DAYS_MS}),
            TopicSpec(self.alerts, PARTITIONS, {"retention.ms": FOREVER}),
            TopicSpec(self.follow_progress, 1, {"cleanup.policy": "compact"}),
        ]


@dataclass(frozen=True)
class EventMessage:
    """A record as it goes onto `crisis.events`."""

    key: bytes | None
    """Its dyad: a dyad's records stay in order on one partition (none for a record of no dyad)."""
    value: bytes
    """Its JSON."""
    timestamp_ms: int
    """Its event time, but never later than when it is produced: the worker checks
    `max_future_skew` against it, and a broker refuses a timestamp too far ahead of its clock
    (Kafka 4, by default: an hour), which an event dated tomorrow would be. Kafka takes none
    before 1970: 0 then, which reads as none (the clock) downstream."""


def event_message(record: CrisisEvent | Retraction, produced_at: datetime) -> EventMessage:
    dyad = record.dyad
    moment = min(record.event_time, produced_at)
    return EventMessage(
        key=dyad.encode() if dyad else None,
        value=record.model_dump_json().encode(),
        timestamp_ms=max(0, int(moment.timestamp() * 1000)),
    )
