"""The topics of the contract: their names (under an optional namespace), partitions and
retention. What each carries is in the models: `crisis.events` CrisisEvent or Retraction,
`crisis.index` IndexUpdate, `crisis.alerts` Alert, `crisis.events.dlq` DeadLetter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RecordKind = Literal["event", "index", "alert"]
"""What a record read from `crisis.events`, `crisis.index` or `crisis.alerts` is."""

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
