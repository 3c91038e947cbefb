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

from schemas.events import Witnesses, corroborated, witnessed_weight
from schemas.outputs import Alert, Contributor, Level
from services.core import decay
from services.core.baseline import DAY, Totals, band_top
from services.core.config import EngineConfig
from services.core.levels import Passage, Standing, Transition, step
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
    totals: Totals = field(default_factory=Totals)
    standing: Standing = field(default_factory=Standing)
    judged_against: tuple[float, float] = (0.0, 0.0)
    """The (escalation, de-escalation) baselines the dyad was judged against just after it (an
    open crisis keeps the baselines it opened with, where lower)."""
    witnesses: Witnesses | None = None
    """The source rows counted so far, while they add up to less than a whole event (see
    `DyadState.corroboration`); None when the event is whole: a later copy is a duplicate."""
    fingerprint: str | None = None
    """What the index read of the event (`scoring.fingerprint`): a copy must match it. None
    for entries of snapshots older than fingerprints: any copy matches."""

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)

    @property
    def level(self) -> Level:
        return self.standing.level

    def as_row(self) -> list[Any]:
        """The fields in order, totals and standing as lists: a compact form for snapshots."""
        *head, totals, standing, judged_against, witnesses, fingerprint = (
            getattr(self, name) for name in _ENTRY_FIELDS
        )
        return [*head, list(totals), list(standing), list(judged_against), witnesses, fingerprint]

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        if len(row) != len(_ENTRY_FIELDS):
            raise ValueError(
                f"an entry row of {len(row)} fields, not {len(_ENTRY_FIELDS)}: migrate the snapshot"
            )
        (
            time,
            event_id,
            conflict,
            cooperation,
            anchor,
            conflict_sum,
            cooperation_sum,
            totals,
            standing,
            judged,
            witnesses,
            fingerprint,
        ) = row
        return cls(
            time,
            event_id,
            conflict,
            cooperation,
            anchor,
            conflict_sum,
            cooperation_sum,
            Totals(*totals),
            _standing_of(standing),
            (float(judged[0]), float(judged[1])),
            witnesses,
            fingerprint,
        )


_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def alert_id(
    config_hash: str,
    dyad: str,
    at: float,
    step: Transition,
    previous_level: Level,
    level: Level,
    correction: str | None = None,
) -> str:
    """An alert's id: the dyad's move (kind, levels, reason) and the event time it happened at,
    under one configuration.

    Not which event of that time is the trigger: events of one time (GDELT's, to the day)
    arrive in any order and over many files, and each arrival can make another of them the
    one that tips the level. The move is the same news, so it keeps one id. A correction is
    about one record (`correction`: its id), which its id names too: two records of one time
    that each change the dyad's history make two corrections.
    """
    identity = [config_hash, dyad, from_seconds(at).isoformat(), step.kind, str(previous_level), str(level)]
    identity += [step.reason_code, *([correction] if correction is not None else [])]
    return hashlib.sha256("|".join(identity).encode()).hexdigest()[:32]


class Corroboration(NamedTuple):
    """New rows reporting a held event: where its entry is, its new weight, all its rows."""

    position: int
    weight: float
    witnesses: Witnesses


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
    last_correction: str | None = None
    """The id of the last correction published: an alert told before it no longer says what
    subscribers believe, though the timeline may hold it again (see `told_since_correction`)."""
    fingerprints: dict[str, str | None] = field(default_factory=dict)
    """The ids of `entries` and their fingerprints: copies are told apart from conflicts in O(1)."""
    last_change: str | None = None
    """The record (event or retraction) that changed the entries last."""
    let_go_since: float | None = None
    """The earliest event time of the entries let go (None: none were): with `entries`, where
    the dyad's history starts."""
    prior_totals: Totals = field(default_factory=Totals)
    """Running totals just before `entries[0]`: what entries let go of still counts in windows."""
    prior_standing: Standing = field(default_factory=Standing)
    """The standing just before `entries[0]` (an open crisis outlives the entries that opened it)."""

    @property
    def first_time(self) -> float | None:
        """Where the dyad's history starts: how much of a baseline window it has seen."""
        if self.let_go_since is not None:
            return self.let_go_since
        return self.entries[0].time if self.entries else None

    @property
    def latest_time(self) -> float | None:
        return self.entries[-1].time if self.entries else None

    @property
    def level(self) -> Level:
        return self.entries[-1].level if self.entries else Level.NORMAL

    def holds(self, event_id: str) -> bool:
        return event_id in self.fingerprints

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

    def baselines(self, config: EngineConfig, position: int = -1) -> tuple[float, float]:
        """(escalation, de-escalation) band tops at the entry at `position` (see baseline.py)."""
        if not self.entries or self.first_time is None:
            return (0.0, 0.0)
        time = self.entries[position].time
        lag, length = config.baseline_lag.total_seconds(), config.baseline_window.total_seconds()
        if time - self.first_time < lag + length:  # warming up: what the dyad has seen so far
            lag = 0.0
        end = time - lag
        start = max(end - length, self.first_time)
        window = self._totals_before(end).minus(self._totals_before(start))
        if window.events < config.baseline_min_events or end <= start:
            return (0.0, 0.0)
        days, half_life_days, sigmas = (
            (end - start) / DAY,
            config.half_life_seconds / DAY,
            config.baseline_sigmas,
        )
        return (
            band_top(window.conflict, window.conflict_days_squared, days, half_life_days, sigmas),
            band_top(window.cooperation, window.cooperation_days_squared, days, half_life_days, sigmas),
        )

    def knows_its_normal(self, time: float) -> bool:
        """Whether the dyad has a day of history before `time` to read its normal from (on its
        first day its normal is not known, not zero)."""
        return self.first_time is not None and time - self.first_time >= DAY

    def _totals_before(self, time: float) -> Totals:
        """Running totals over the events before `time`."""
        position = bisect.bisect_left(self.entries, time, key=lambda e: e.time) - 1
        return self.entries[position].totals if position >= 0 else self.prior_totals

    def corroboration(self, event_id: str, time: float, witnesses: Witnesses | None) -> Corroboration | None:
        """What `witnesses` add to the held event `event_id` at `time`: None when they add nothing.

        They add nothing when the record names no witnesses (a native record: its copy is a
        duplicate), when the event is already whole, when every row named was counted already,
        or when the held event is at another time (only an entry of a snapshot older than
        fingerprints: the engine refuses other copies at another time as conflicts first).
        """
        if not witnesses:
            return None
        position = bisect.bisect_left(self.entries, (time, event_id), key=lambda e: e.order)
        if position == len(self.entries) or self.entries[position].event_id != event_id:
            return None
        together = corroborated(self.entries[position].witnesses, witnesses)
        return None if together is None else Corroboration(position, witnessed_weight(together), together)

    def insert(self, entry: Entry) -> int:
        position = bisect.bisect_left(self.entries, entry.order, key=lambda e: e.order)
        self.entries.insert(position, entry)
        self.fingerprints[entry.event_id] = entry.fingerprint
        return position

    def remove(self, event_id: str) -> int:
        position = next(i for i, e in enumerate(self.entries) if e.event_id == event_id)
        del self.entries[position]
        del self.fingerprints[event_id]
        return position

    def recompute_from(self, position: int, config: EngineConfig) -> list[Alert]:
        """Redo the timeline from `position` on; returns the alerts it now holds there."""
        alerts: list[Alert] = []
        told: set[str] = set()
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
            before = previous.standing if previous else self.prior_standing
            entry.totals = (previous.totals if previous else self.prior_totals).plus(
                entry.conflict, entry.cooperation, entry.time
            )
            passage = None
            if previous is None:
                passage = Passage(0.0, 0.0, entry.time)
            elif previous.time < entry.time:
                escalation_before, de_escalation_before = self.indices(config, index - 1)
                passage = Passage(
                    decay.decayed(escalation_before, previous.time, entry.time, half_life),
                    decay.decayed(de_escalation_before, previous.time, entry.time, half_life),
                    previous.time,
                )
            baselines = self.baselines(config, index)
            entry.standing, change = step(
                before,
                entry.time,
                self.indices(config, index),
                passage,
                baselines,
                self.knows_its_normal(entry.time),
                config,
            )
            entry.judged_against = entry.standing.judged(baselines)
            if change is not None:
                alert = self.make_alert(change, before.level, entry.level, entry.event_id, index, config)
                if alert.alert_id not in told:  # the same move again at the same time is no news
                    told.add(alert.alert_id)
                    alerts.append(alert)
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
        """An alert about the state just after the entry at `position`, or, given `event_time`,
        a correction that `triggered_by` (a record of that time) made due (see `alert_id`)."""
        escalation, de_escalation = self.indices(config, position)
        escalation_band, de_escalation_band = (
            self.entries[position].judged_against if self.entries else (0.0, 0.0)
        )
        at = self.entries[position].time if self.entries else 0.0
        if event_time is not None:
            at = event_time
        correction = triggered_by if event_time is not None else None
        identity = alert_id(
            config.computed_with.config_hash, self.dyad, at, step, previous_level, level, correction
        )
        crisis_since = self.entries[position].standing.crisis_since if self.entries else None
        return Alert(
            alert_id=identity,
            dyad=self.dyad,
            kind=step.kind,
            level=level,
            previous_level=previous_level,
            reason=step.reason,
            reason_code=step.reason_code,
            event_time=from_seconds(at),
            escalation_index=escalation,
            de_escalation_index=de_escalation,
            escalation_baseline=escalation_band,
            de_escalation_baseline=de_escalation_band,
            crisis_since=None if crisis_since is None else from_seconds(crisis_since),
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
        if keep_from > 0:
            if self.let_go_since is None:
                self.let_go_since = self.entries[0].time
            last_let_go = self.entries[keep_from - 1]
            self.prior_totals, self.prior_standing = last_let_go.totals, last_let_go.standing
        for entry in self.entries[:keep_from]:
            del self.fingerprints[entry.event_id]
        del self.entries[:keep_from]
        for event_id in [k for k, t in self.retracted.items() if t < horizon]:
            del self.retracted[event_id]
        for alert_id in [k for k, published in self.emitted.items() if published.time < horizon]:
            del self.emitted[alert_id]

    def told_since_correction(self, alert_id: str) -> bool:
        """Whether `alert_id` was published after the last correction (alerts are kept in the
        order they were published)."""
        if self.last_correction not in self.emitted or alert_id not in self.emitted:
            return True
        order = list(self.emitted)
        return order.index(alert_id) > order.index(self.last_correction)

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
            "last_correction": self.last_correction,
            "last_change": self.last_change,
            "let_go_since": self.let_go_since,
            "prior_totals": list(self.prior_totals),
            "prior_standing": list(self.prior_standing),
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
            last_correction=snapshot["last_correction"],
            fingerprints={entry.event_id: entry.fingerprint for entry in entries},
            last_change=snapshot["last_change"],
            let_go_since=snapshot["let_go_since"],
            prior_totals=Totals(*snapshot["prior_totals"]),
            prior_standing=_standing_of(snapshot["prior_standing"]),
        )


SNAPSHOT_VERSION = 5
"""Bump it, and add a migration below, whenever a snapshot's shape changes: entry rows are
positional, so a new field must never restore into the wrong slot."""


def _standing_of(row: list[Any]) -> Standing:
    level, calm_since, leads, crisis_since, hot_at, baselines, post_crisis_until = row
    frozen = None if baselines is None else (float(baselines[0]), float(baselines[1]))
    return Standing(Level(level), calm_since, leads, crisis_since, hot_at, frozen, post_crisis_until)


def _since_last_change(snapshot: dict[str, Any]) -> dict[str, Any]:
    """1 → 2: the record that last changed the dyad is remembered (None: not known)."""
    return {**snapshot, "last_change": None, "version": 2}


def _with_baselines(snapshot: dict[str, Any]) -> dict[str, Any]:
    """2 → 3: running totals, standings and baselines on entries. Totals restart from the oldest
    entry held, standings from its level with no crisis open, baselines from none known: a state
    this old converges to what a replay of the log gives once its baseline window has passed
    (replay for exactness)."""
    totals, rows = Totals(), []
    for *sums, level, leads in snapshot["entries"]:
        time, _, conflict, cooperation = sums[:4]
        totals = totals.plus(conflict, cooperation, time)
        rows.append([*sums, list(totals), list(Standing(level, cooperation_leads=leads)), [0.0, 0.0]])
    return {
        **snapshot,
        "entries": rows,
        "let_go_since": None,
        "prior_totals": list(Totals()),
        "prior_standing": list(Standing()),
        "version": 3,
    }


def _with_witnesses(snapshot: dict[str, Any]) -> dict[str, Any]:
    """3 → 4: entries keep the source rows counted while an event is not yet whole; alert ids
    name the move's time, not its trigger; the last correction is remembered.

    Entries of older snapshots are taken as whole (a later row of their event is a duplicate).
    Alerts published are kept by their new ids (their JSON, what is told again, keeps the id
    subscribers saw), so that a timeline redone after the upgrade does not tell them again.
    """
    emitted = {}
    for row in snapshot["emitted"].values():
        told = Alert.model_validate_json(row[2])
        correction = told.triggered_by if told.reason_code == "correction" else None
        step = Transition(kind=told.kind, reason_code=told.reason_code, reason=told.reason)
        at, levels = to_seconds(told.event_time), (told.previous_level, told.level)
        emitted[alert_id(told.config_hash, told.dyad, at, step, *levels, correction)] = row
    return {
        **snapshot,
        "entries": [[*row, None] for row in snapshot["entries"]],
        "emitted": emitted,
        "last_correction": None,
        "version": 4,
    }


def _with_fingerprints(snapshot: dict[str, Any]) -> dict[str, Any]:
    """4 → 5: entries keep their event's fingerprint; older ones have none (any copy matches)."""
    return {**snapshot, "entries": [[*row, None] for row in snapshot["entries"]], "version": 5}


_MIGRATIONS = {
    1: _since_last_change,
    2: _with_baselines,
    3: _with_witnesses,
    4: _with_fingerprints,
}
"""From version N to N + 1."""
