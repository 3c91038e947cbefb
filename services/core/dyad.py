"""One dyad's state: its events in event-time order and the level timeline they imply.

The timeline (indices, level and alerts after each event) is a function of the set of
events alone. An event that arrives late, or a retraction, recomputes the timeline from
the point it touches; events in order cost O(1).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from schemas.outputs import Alert, Contributor, Level
from services.core import decay
from services.core.config import EngineConfig
from services.core.levels import Transition, next_level, transition
from services.core.timeutil import from_seconds, to_seconds


@dataclass(slots=True)
class Entry:
    """An event as the dyad keeps it, and the dyad's state just after it."""

    time: float
    event_id: str
    conflict: float
    cooperation: float
    anchor: float = 0.0
    conflict_sum: float = 0.0
    cooperation_sum: float = 0.0
    level: Level = Level.NORMAL
    cooperation_leads: bool = False

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)

    def as_row(self) -> list[Any]:
        """The fields in order: a compact form for snapshots (the level is a str enum)."""
        return [getattr(self, name) for name in _ENTRY_FIELDS]

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        if len(row) != len(_ENTRY_FIELDS):
            raise ValueError(
                f"an entry row of {len(row)} fields, not {len(_ENTRY_FIELDS)}: migrate the snapshot"
            )
        entry = cls(*row)
        entry.level = Level(entry.level)
        return entry


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


class Published(NamedTuple):
    """An alert as the state keeps it: its JSON (what snapshots store) and what finds it again."""

    time: float
    triggered_by: str
    json: str

    @classmethod
    def of(cls, alert: Alert) -> Published:
        return cls(to_seconds(alert.event_time), alert.triggered_by, alert.model_dump_json())


@dataclass(slots=True)
class DyadState:
    dyad: str
    entries: list[Entry] = field(default_factory=list)
    retracted: dict[str, float] = field(default_factory=dict)
    """Ids of retracted events (with a time to let them go), so a late copy stays out."""
    emitted: dict[str, Published] = field(default_factory=dict)
    """Alerts already published, by id: never raised twice, but repeatable after a crash."""
    reported_level: Level = Level.NORMAL
    """The level of the last alert published: what subscribers believe."""
    event_ids: set[str] = field(default_factory=set)
    """The ids of `entries`, for de-duplication in O(1)."""
    last_change: str | None = None
    """The record (event or retraction) that changed the entries last."""

    @property
    def latest_time(self) -> float | None:
        return self.entries[-1].time if self.entries else None

    @property
    def level(self) -> Level:
        return self.entries[-1].level if self.entries else Level.NORMAL

    def holds(self, event_id: str) -> bool:
        return event_id in self.event_ids

    def indices(self, config: EngineConfig, position: int = -1) -> tuple[float, float]:
        """(escalation, de-escalation) just after the entry at `position`."""
        if not self.entries:
            return (0.0, 0.0)
        entry = self.entries[position]
        half_life = config.half_life_seconds
        return (
            decay.value_at(entry.conflict_sum, entry.time, entry.anchor, half_life),
            decay.value_at(entry.cooperation_sum, entry.time, entry.anchor, half_life),
        )

    def indices_at(self, time: float, config: EngineConfig) -> tuple[float, float]:
        """(escalation, de-escalation) at any event time: the last state before it, decayed."""
        position = bisect.bisect_right(self.entries, time, key=lambda e: e.time) - 1
        if position < 0:
            return (0.0, 0.0)
        escalation, de_escalation = self.indices(config, position)
        since, half_life = self.entries[position].time, config.half_life_seconds
        return (
            decay.decayed(escalation, since, time, half_life),
            decay.decayed(de_escalation, since, time, half_life),
        )

    def insert(self, entry: Entry) -> int:
        position = bisect.bisect_left(self.entries, entry.order, key=lambda e: e.order)
        self.entries.insert(position, entry)
        self.event_ids.add(entry.event_id)
        return position

    def remove(self, event_id: str) -> int:
        position = next(i for i, e in enumerate(self.entries) if e.event_id == event_id)
        del self.entries[position]
        self.event_ids.discard(event_id)
        return position

    def recompute_from(self, position: int, config: EngineConfig) -> list[Alert]:
        """Redo the timeline from `position` on; returns the alerts it now holds there."""
        alerts = []
        half_life = config.half_life_seconds
        for index in range(position, len(self.entries)):
            entry = self.entries[index]
            previous = self.entries[index - 1] if index > 0 else None
            entry.anchor = decay.frame_of(entry.time, half_life)
            if previous is not None and previous.anchor == entry.anchor:
                conflict_sum, cooperation_sum = (
                    previous.conflict_sum,
                    previous.cooperation_sum,
                )
                added = [entry]
            else:
                conflict_sum = cooperation_sum = 0.0
                added = self.entries[: index + 1]
            for item in added:
                conflict_sum += decay.term(item.conflict, item.time, entry.anchor, half_life)
                cooperation_sum += decay.term(item.cooperation, item.time, entry.anchor, half_life)
            entry.conflict_sum, entry.cooperation_sum = conflict_sum, cooperation_sum
            escalation, de_escalation = self.indices(config, index)
            level_before = previous.level if previous else Level.NORMAL
            led_before = previous.cooperation_leads if previous else False
            entry.level = next_level(level_before, escalation, config)
            entry.cooperation_leads = de_escalation > escalation
            step = transition(level_before, entry.level, led_before, escalation, de_escalation, config)
            if step is not None:
                alerts.append(self.make_alert(step, level_before, entry.level, entry.event_id, index, config))
        return alerts

    def make_alert(
        self,
        step: Transition,
        previous_level: Level,
        level: Level,
        triggered_by: str,
        position: int,
        config: EngineConfig,
        event_time: float | None = None,
    ) -> Alert:
        """An alert about the state just after the entry at `position`."""
        escalation, de_escalation = self.indices(config, position)
        stamp = config.computed_with
        identity = "|".join(
            (
                stamp.config_hash,
                self.dyad,
                triggered_by,
                step.kind,
                str(previous_level),
                str(level),
                step.reason_code,
            )
        )
        at = self.entries[position].time if self.entries else 0.0
        return Alert(
            alert_id=hashlib.sha256(identity.encode()).hexdigest()[:32],
            dyad=self.dyad,
            kind=step.kind,
            level=level,
            previous_level=previous_level,
            reason=step.reason,
            reason_code=step.reason_code,
            event_time=from_seconds(at if event_time is None else event_time),
            escalation_index=escalation,
            de_escalation_index=de_escalation,
            triggered_by=triggered_by,
            contributors=self.contributors(position, config),
            **config.stamp_fields,
        )

    def contributors(self, position: int, config: EngineConfig) -> list[Contributor]:
        """The events that weigh most just after the entry at `position`, heaviest first."""
        if not self.entries:
            return []
        position %= len(self.entries)
        now = self.entries[position].time
        weighed = [
            (decay.decayed(value, e.time, now, config.half_life_seconds), index_name, e)
            for e in self.entries[: position + 1]
            for index_name, value in (
                ("escalation", e.conflict),
                ("de-escalation", e.cooperation),
            )
            if value > 0
        ]
        weighed.sort(key=lambda item: (-item[0], item[2].event_id))
        return [
            Contributor(
                event_id=e.event_id,
                event_time=from_seconds(e.time),
                index=index_name,  # type: ignore[arg-type]
                contribution=weight,
            )
            for weight, index_name, e in weighed[: config.contributors]
        ]

    def forget_before(self, horizon: float) -> None:
        """Let go of what no longer weighs: entries, tombstones and alert ids older than horizon."""
        keep_from = bisect.bisect_left(self.entries, horizon, key=lambda e: e.time)
        self.event_ids.difference_update(e.event_id for e in self.entries[:keep_from])
        del self.entries[:keep_from]
        for event_id in [k for k, t in self.retracted.items() if t < horizon]:
            del self.retracted[event_id]
        for alert_id in [k for k, published in self.emitted.items() if published.time < horizon]:
            del self.emitted[alert_id]

    def alerts_triggered_by(self, record_id: str) -> tuple[Alert, ...]:
        return tuple(
            Alert.model_validate_json(published.json)
            for published in self.emitted.values()
            if published.triggered_by == record_id
        )

    def remember(self, alert: Alert) -> None:
        self.emitted[alert.alert_id] = Published.of(alert)
        self.reported_level = alert.level

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the state (floats round-trip exactly through JSON)."""
        return {
            "dyad": self.dyad,
            "entries": [entry.as_row() for entry in self.entries],
            "retracted": self.retracted,
            "emitted": {alert_id: list(published) for alert_id, published in self.emitted.items()},
            "reported_level": self.reported_level.value,
            "last_change": self.last_change,
            "version": SNAPSHOT_VERSION,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> DyadState:
        """A state from `snapshot`, migrated first if an older version wrote it."""
        version = snapshot.get("version", 1)
        if version > SNAPSHOT_VERSION:
            raise ValueError(f"a version {version} snapshot; this engine reads up to {SNAPSHOT_VERSION}")
        for older in range(version, SNAPSHOT_VERSION):
            snapshot = _MIGRATIONS[older](snapshot)
        entries = [Entry.from_row(row) for row in snapshot["entries"]]
        return cls(
            dyad=snapshot["dyad"],
            entries=entries,
            retracted=dict(snapshot["retracted"]),
            emitted={alert_id: Published(*row) for alert_id, row in snapshot["emitted"].items()},
            reported_level=Level(snapshot["reported_level"]),
            event_ids={entry.event_id for entry in entries},
            last_change=snapshot["last_change"],
        )


SNAPSHOT_VERSION = 2
"""Bump it, and add a migration below, whenever a snapshot's shape changes: entry rows are
positional, so a new field must never restore into the wrong slot."""


def _since_last_change(snapshot: dict[str, Any]) -> dict[str, Any]:
    """1 → 2: the record that last changed the dyad is remembered (None: not known)."""
    return {**snapshot, "last_change": None, "version": 2}


_MIGRATIONS = {1: _since_last_change}
"""From version N to N + 1."""
