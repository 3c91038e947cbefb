"""The one entry point of the core: apply a log record to its dyad's state.

`apply` is what both engines call: the backtest keeps states in a dict (`Engine`), the
Faust worker keeps them in a table. Nothing here reads a clock: `emitted_at` on alerts is
stamped by whichever engine publishes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from schemas.events import CrisisEvent, Retraction, record_id
from schemas.outputs import Alert, IndexUpdate, Level
from services.core.config import EngineConfig
from services.core.dyad import DyadState, Entry
from services.core.levels import Transition
from services.core.record import Record
from services.core.scoring import fingerprint, score
from services.core.timeutil import from_seconds, to_seconds

Fate = Literal[
    "accepted",
    "corroborated",
    "duplicate",
    "conflicting",
    "retracted",
    "expired",
    "no-dyad",
    "retraction-applied",
    "retraction-pending",
]
"""What the engine did with a record (the backtest counts them; the worker's metrics group them)."""


@dataclass(init=False)
class IndexReading(Record):
    """A dyad's indices as a record changed them: an IndexUpdate's figures in the core's units
    (seconds), read where the record was applied. The model is built from it only when asked
    (`Outcome.index_update`): a backtest draws its curves from the figures and publishes none.
    One is built per record (see `Record`)."""

    dyad: Final[str]
    as_of: Final[float]
    escalation_index: Final[float]
    de_escalation_index: Final[float]
    escalation_baseline: Final[float]
    de_escalation_baseline: Final[float]
    crisis_since: Final[float | None]
    level: Final[Level]
    triggered_by: Final[str]
    triggered_at: Final[float]
    events_in_window: Final[int]
    stamp: Final[dict[str, Any]]
    """`EngineConfig.stamp_fields`"""

    def __init__(
        self,
        dyad: str,
        as_of: float,
        escalation_index: float,
        de_escalation_index: float,
        escalation_baseline: float,
        de_escalation_baseline: float,
        crisis_since: float | None,
        level: Level,
        triggered_by: str,
        triggered_at: float,
        events_in_window: int,
        stamp: dict[str, Any],
    ) -> None:
        self.dyad, self.as_of, self.level, self.stamp = dyad, as_of, level, stamp
        self.escalation_index, self.de_escalation_index = escalation_index, de_escalation_index
        self.escalation_baseline, self.de_escalation_baseline = escalation_baseline, de_escalation_baseline
        self.crisis_since, self.events_in_window = crisis_since, events_in_window
        self.triggered_by, self.triggered_at = triggered_by, triggered_at

    def update(self) -> IndexUpdate:
        return IndexUpdate(
            dyad=self.dyad,
            as_of=from_seconds(self.as_of),
            escalation_index=self.escalation_index,
            de_escalation_index=self.de_escalation_index,
            escalation_baseline=self.escalation_baseline,
            de_escalation_baseline=self.de_escalation_baseline,
            crisis_since=None if self.crisis_since is None else from_seconds(self.crisis_since),
            level=self.level,
            triggered_by=self.triggered_by,
            triggered_at=from_seconds(self.triggered_at),
            events_in_window=self.events_in_window,
            **self.stamp,
        )


@dataclass(init=False)
class Outcome(Record):
    """What one record did: its fate, the dyad's new indices, and the alerts it raised. One is
    built per record (see `Record`)."""

    fate: Final[Fate]
    record_id: Final[str]
    dyad: Final[str | None]
    index: Final[IndexReading | None]
    alerts: Final[tuple[Alert, ...]]
    repeats: Final[tuple[Alert, ...]]
    """For a duplicate: the alerts this record raised before. A stream worker publishes them
    again, because a crash may have lost them after the state that records them was saved."""
    repeated: Final[IndexReading | None]
    """For a duplicate of the record that last changed the dyad: the indices it published, the
    same again (for the same reason). Of any earlier record they would be wrong ones: the dyad
    has moved on since."""
    refusal: Final[str | None]
    """For a conflicting copy (an event_id held with other facts): why it was refused, with
    both fingerprints. The worker dead-letters it; the backtest reports it as a bad row."""

    def __init__(
        self,
        fate: Fate,
        record_id: str,
        dyad: str | None,
        index: IndexReading | None = None,
        alerts: tuple[Alert, ...] = (),
        repeats: tuple[Alert, ...] = (),
        repeated: IndexReading | None = None,
        refusal: str | None = None,
    ) -> None:
        self.fate, self.record_id, self.dyad, self.index = fate, record_id, dyad, index
        self.alerts, self.repeats, self.repeated, self.refusal = alerts, repeats, repeated, refusal

    @cached_property
    def index_update(self) -> IndexUpdate | None:
        """The dyad's new indices as published (`index` as the model, built once)."""
        return None if self.index is None else self.index.update()

    @cached_property
    def repeated_index(self) -> IndexUpdate | None:
        """The index update a duplicate publishes again (`repeated` as the model, built once)."""
        return None if self.repeated is None else self.repeated.update()


def apply(state: DyadState, record: CrisisEvent | Retraction, config: EngineConfig) -> Outcome:
    """Apply one record to its dyad's state (mutated in place)."""
    if isinstance(record, Retraction):
        return _retract(state, record, config)
    return _add(state, record, config)


def _add(state: DyadState, event: CrisisEvent, config: EngineConfig) -> Outcome:
    time = to_seconds(event.event_time)
    facts = fingerprint(event)
    if state.holds(event.event_id):
        held = state.fingerprints[event.event_id]
        if held is not None and held != facts:
            return _conflicting(state, event.event_id, held, facts)
        return _corroborate(state, event, time, config)
    if event.event_id in state.retracted:
        return Outcome("retracted", event.event_id, state.dyad)
    if state.too_late(time, config):
        # Too late to change the dyad's history: it may have been folded. If it came before
        # (a repeat after a crash), what it raised is offered again all the same.
        return Outcome(
            "expired", event.event_id, state.dyad, repeats=state.alerts_triggered_by(event.event_id)
        )
    scored = score(event, config)
    partial = None if event.witnesses is None or event.weight >= 1.0 else dict(event.witnesses)
    position = state.insert(
        Entry(time, event.event_id, scored.conflict, scored.cooperation, witnesses=partial, fingerprint=facts)
    )
    return _changed(state, "accepted", event.event_id, position, time, config)


def _conflicting(state: DyadState, event_id: str, held: str, received: str) -> Outcome:
    """First write wins: an event_id is one event, whatever copies say later. A source that
    changed its mind retracts the event and publishes a new one (`Retraction`)."""
    refusal = (
        f"conflicting copy of event {event_id!r}: the event held has fingerprint {held}, this copy"
        f" {received} (another time, dyad, roles, CAMEO code or Goldstein score); the first copy"
        " stands: to correct an event, retract it and publish the correction under a new event_id"
    )
    return Outcome("conflicting", event_id, state.dyad, refusal=refusal)


def _corroborate(state: DyadState, event: CrisisEvent, time: float, config: EngineConfig) -> Outcome:
    """A held event reported again: new source rows add their shares to its weight (see
    `CrisisEvent.witnesses`); a copy that names no new row is a duplicate.

    This is how GDELT's rows of one event, published over many 15-minute files, become the
    same event live as in a backtest: the merge happens here, in the one core, whatever
    order or batches the rows come in.
    """
    added = state.corroboration(event.event_id, time, event.witnesses)
    if added is None:
        return _duplicate(state, event.event_id, time, config)
    scored = score(event, config, weight=added.weight)
    entry = state.entries[added.position]
    entry.conflict, entry.cooperation = scored.conflict, scored.cooperation
    entry.witnesses = None if added.weight >= 1.0 else added.witnesses
    return _changed(state, "corroborated", event.event_id, added.position, time, config)


def _changed(
    state: DyadState, fate: Fate, event_id: str, position: int, time: float, config: EngineConfig
) -> Outcome:
    """The dyad's timeline redone from the entry `event_id` added or changed at `position`."""
    state.last_change = event_id
    alerts = _publish(state, state.recompute_from(position, config), event_id, time, config)
    _let_go(state, config)
    return Outcome(fate, event_id, state.dyad, index_now(state, event_id, time, config), alerts)


def _retract(state: DyadState, retraction: Retraction, config: EngineConfig) -> Outcome:
    target = retraction.retracts
    time = to_seconds(retraction.event_time)
    if target in state.retracted:
        return _duplicate(state, retraction.retraction_id, time, config)
    state.retracted[target] = time
    if not state.holds(target):
        return Outcome("retraction-pending", retraction.retraction_id, state.dyad)
    position = state.remove(target)
    rid = retraction.retraction_id
    state.last_change = rid
    alerts = _publish(state, state.recompute_from(position, config), rid, time, config)
    return Outcome(
        "retraction-applied",
        rid,
        state.dyad,
        index_now(state, rid, time, config),
        alerts,
    )


def _duplicate(state: DyadState, record_id: str, time: float, config: EngineConfig) -> Outcome:
    """A record seen before changes nothing; what it raised can be announced again."""
    return Outcome(
        "duplicate",
        record_id,
        state.dyad,
        repeats=state.alerts_triggered_by(record_id),
        repeated=index_now(state, record_id, time, config) if state.last_change == record_id else None,
    )


def _publish(
    state: DyadState,
    timeline: list[Alert],
    record_id: str,
    record_time: float,
    config: EngineConfig,
) -> tuple[Alert, ...]:
    """The recomputed timeline's alerts not yet published, and a correction if one is due.

    A correction is due when the dyad's level no longer matches the last alert subscribers
    saw, which happens when a retraction or a late event undoes a transition.
    """
    fresh = [alert for alert in timeline if alert.alert_id not in state.emitted]
    for alert in fresh:
        state.remember(alert)
    if timeline and state.told_since_correction(timeline[-1].alert_id):
        state.reported_level = timeline[-1].level  # what the story's last alert told them
    if state.reported_level is not state.level:
        fresh.append(_correction(state, record_id, record_time, config))
    return tuple(fresh)


def _correction(state: DyadState, record_id: str, record_time: float, config: EngineConfig) -> Alert:
    before, after = state.reported_level, state.level
    rose = after.rank > before.rank
    step = Transition(
        kind="escalation" if rose else "de-escalation",
        reason_code="correction",
        reason=f"{record_id} changed the dyad's history: its level is now {after}, not {before}",
    )
    alert = state.make_alert(step, before, after, record_id, -1, config, event_time=record_time)
    state.remember(alert)
    state.last_correction = alert.alert_id
    return alert


def _let_go(state: DyadState, config: EngineConfig) -> None:
    """Fold the entries beyond the lateness horizon; forget tombstones and alerts beyond the
    retention, a quarter of it at a time (when is free: neither changes any result)."""
    latest = state.latest_time
    if latest is None:
        return
    horizon = latest - config.lateness_seconds
    if state.entries and state.entries[0].time < horizon:
        state.fold(horizon, config)
        forget = latest - config.retention_seconds
        oldest = min((published.time for published in state.emitted.values()), default=latest)
        if min(oldest, *state.retracted.values(), latest) < forget - config.retention_seconds / 4:
            state.forget_before(forget)


def index_now(state: DyadState, record_id: str, record_time: float, config: EngineConfig) -> IndexReading:
    """The dyad's indices as of its latest event, as changed by `record_id`."""
    escalation, de_escalation = state.indices(config)
    last = state.entry_at()
    escalation_band, de_escalation_band = (0.0, 0.0) if last is None else last.judged_against
    latest = state.latest_time
    return IndexReading(
        dyad=state.dyad,
        as_of=record_time if latest is None else latest,
        escalation_index=escalation,
        de_escalation_index=de_escalation,
        escalation_baseline=escalation_band,
        de_escalation_baseline=de_escalation_band,
        crisis_since=None if last is None else last.standing.crisis_since,
        level=state.level,
        triggered_by=record_id,
        triggered_at=record_time,
        events_in_window=len(state.entries),
        stamp=config.stamp_fields,
    )


@dataclass
class Engine:
    """The core with its dyad states kept in memory: what the backtest runs."""

    config: EngineConfig = field(default_factory=EngineConfig)
    states: dict[str, DyadState] = field(default_factory=dict)

    def process(self, record: CrisisEvent | Retraction) -> Outcome:
        dyad = record.dyad
        if dyad is None:
            return Outcome("no-dyad", record_id(record), None)
        state = self.states.get(dyad)
        if state is None:  # not setdefault: it would build a state for every record
            state = self.states[dyad] = DyadState(dyad)
        return apply(state, record, self.config)

    def level(self, dyad: str) -> Level:
        state = self.states.get(dyad)
        return state.level if state else Level.NORMAL
