"""One dyad's state: its events in event-time order and the level timeline they imply.

The timeline (indices, level and alerts after each event) is a function of the set of
events alone. An event that arrives late, or a retraction, recomputes the timeline from
the point it touches; events in order cost O(1).

Only the events within `lateness` of the dyad's latest are held one by one; older ones are
folded (`DyadState.fold`): the last of them stays as `prior`, the state just before the
first held event, with their running sums; the baseline window keeps each folded day's
totals, and the alerts keep the heaviest folded events to name. A later event that old is
refused as expired, so what was folded never changes, and folding changes no result: a
busy dyad's state stays small, and saving it costs the same after a year as after a week.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from schemas.events import Witnesses, corroborated, witnessed_weight
from schemas.outputs import Alert, Contributor, Level
from services.core import decay
from services.core.baseline import DAY, Totals, band_top
from services.core.config import EngineConfig
from services.core.levels import Passage, Standing, Transition, step
from services.core.record import Record
from services.core.scoring import short_sha256
from services.core.timeutil import from_seconds, to_seconds

_NO_TOTALS, _NO_STANDING = Totals(), Standing()
"""What a new entry holds until its timeline is computed: immutable, so shared, not built."""


@dataclass(slots=True, init=False)
class Entry(Record):
    """An event as the dyad keeps it, and the dyad's state just after it. One is built per
    event (see `Record`: its fields change as the timeline is redone, so they are not `Final`)."""

    time: float
    event_id: str
    conflict: float
    cooperation: float
    anchor: float
    conflict_sum: float
    cooperation_sum: float
    totals: Totals
    standing: Standing
    judged_against: tuple[float, float]
    """The (escalation, de-escalation) baselines the dyad was judged against just after it (an
    open crisis keeps the baselines it opened with, where lower)."""
    witnesses: Witnesses | None
    """The source rows counted so far, while they add up to less than a whole event (see
    `DyadState.corroboration`); None when the event is whole: a later copy is a duplicate."""
    fingerprint: str | None
    """What the index read of the event (`scoring.fingerprint`): a copy must match it. None
    for entries of snapshots older than fingerprints: any copy matches."""

    def __init__(
        self,
        time: float,
        event_id: str,
        conflict: float,
        cooperation: float,
        anchor: float = 0.0,
        conflict_sum: float = 0.0,
        cooperation_sum: float = 0.0,
        totals: Totals = _NO_TOTALS,
        standing: Standing = _NO_STANDING,
        judged_against: tuple[float, float] = (0.0, 0.0),
        witnesses: Witnesses | None = None,
        fingerprint: str | None = None,
    ) -> None:
        self.time, self.event_id, self.conflict, self.cooperation = time, event_id, conflict, cooperation
        self.anchor, self.conflict_sum, self.cooperation_sum = anchor, conflict_sum, cooperation_sum
        self.totals, self.standing, self.judged_against = totals, standing, judged_against
        self.witnesses, self.fingerprint = witnesses, fingerprint

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)

    @property
    def level(self) -> Level:
        return self.standing.level

    def inputs(self) -> list[Any]:
        """What the event brought (the rest is recomputed from it): a held entry in snapshots."""
        return [self.time, self.event_id, self.conflict, self.cooperation, self.witnesses, self.fingerprint]

    @classmethod
    def from_inputs(cls, row: list[Any]) -> Entry:
        if len(row) != 6:
            raise ValueError(f"an entry of {len(row)} inputs, not 6: migrate the snapshot")
        time, event_id, conflict, cooperation, witnesses, fingerprint = row
        return cls(time, event_id, conflict, cooperation, witnesses=witnesses, fingerprint=fingerprint)

    def as_row(self) -> list[Any]:
        """The fields in order, totals and standing as lists: the `prior` entry in snapshots."""
        return [
            self.time,
            self.event_id,
            self.conflict,
            self.cooperation,
            self.anchor,
            self.conflict_sum,
            self.cooperation_sum,
            self.totals.as_row(),
            self.standing.as_row(),
            list(self.judged_against),
            self.witnesses,
            self.fingerprint,
        ]

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
    return short_sha256("|".join(identity), 32)


class Corroboration(NamedTuple):
    """New rows reporting a held event: where its entry is, its new weight, all its rows."""

    position: int
    weight: float
    witnesses: Witnesses


class Notable(NamedTuple):
    """A folded event's weight on one index, kept while it may still be among the heaviest
    an alert names (`DyadState.contributors`)."""

    time: float
    event_id: str
    index_name: str
    value: float

    def rank(self, half_life: float) -> tuple[float, str]:
        """Heaviest first at any later time (all weights decay alike): log2 of the weight it
        would have at time 0, negated, then the id."""
        return (-(math.log2(self.value) + self.time / half_life), self.event_id)


class BandWindow(NamedTuple):
    """A baseline window, [start, end) in event time, and the band tops read from it."""

    start: float
    end: float
    tops: tuple[float, float]


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
    """The earliest event time of the entries folded (None: none were): with `entries`, where
    the dyad's history starts."""
    prior: Entry | None = None
    """The last entry folded: the dyad's state just before `entries[0]`, sums and totals of
    all that was folded included (None: nothing was)."""
    day_totals: list[Totals] = field(default_factory=list)
    """The running totals at the end of each folded UTC day the baseline window may still
    reach (`_totals_before`), oldest first."""
    notable: list[Notable] = field(default_factory=list)
    """The heaviest folded events, as many as an alert names, heaviest first."""
    held_from: float | None = None
    """Where the last fold cut: an event before it would land among what was folded, so it
    is expired even when a retraction has moved the dyad's latest event back."""
    last_window: BandWindow | None = field(default=None, repr=False, compare=False)
    """The last baseline window read and its band tops (`baselines`): the events of one day
    share a window, so most events read it again. Not state: snapshots leave it out."""

    @property
    def first_time(self) -> float | None:
        """Where the dyad's history starts: how much of a baseline window it has seen."""
        if self.let_go_since is not None:
            return self.let_go_since
        return self.entries[0].time if self.entries else None

    def entry_at(self, position: int = -1) -> Entry | None:
        """The held entry at `position`; with none held (a retraction took the last), the
        folded `prior`, the state the dyad is left in."""
        return self.entries[position] if self.entries else self.prior

    @property
    def latest_time(self) -> float | None:
        last = self.entry_at()
        return None if last is None else last.time

    @property
    def level(self) -> Level:
        last = self.entry_at()
        return Level.NORMAL if last is None else last.level

    def holds(self, event_id: str) -> bool:
        return event_id in self.fingerprints

    def too_late(self, time: float, config: EngineConfig) -> bool:
        """Whether an event at `time` comes too late to count: behind the dyad's latest event
        by more than `lateness`, or before where the dyad's history was folded."""
        latest = self.latest_time
        if latest is not None and time < latest - config.lateness_seconds:
            return True
        return self.held_from is not None and time < self.held_from

    def indices(self, config: EngineConfig, position: int = -1) -> tuple[float, float]:
        """(escalation, de-escalation) just after the entry at `position`."""
        entry = self.entry_at(position)
        return (0.0, 0.0) if entry is None else _indices_after(entry, config.half_life_seconds)

    def indices_at(self, time: float, config: EngineConfig) -> tuple[float, float]:
        """(escalation, de-escalation) at any event time since the first held entry (or the
        folded `prior`): the last state before it, decayed."""
        position = bisect.bisect_right(self.entries, time, key=lambda e: e.time) - 1
        last = self.entries[position] if position >= 0 else self.prior
        if last is None or last.time > time:
            return (0.0, 0.0)
        half_life = config.half_life_seconds
        escalation, de_escalation = _indices_after(last, half_life)
        since = last.time
        return (
            decay.decayed(escalation, since, time, half_life),
            decay.decayed(de_escalation, since, time, half_life),
        )

    def baselines(self, config: EngineConfig, position: int = -1) -> tuple[float, float]:
        """(escalation, de-escalation) band tops at the entry at `position` (see baseline.py).

        The window is whole UTC days (the band is made of daily sums), ending at the start of
        the day `baseline_lag` before the entry; while warming up it ends at the entry itself.
        """
        if not self.entries or self.first_time is None:
            return (0.0, 0.0)
        time = self.entries[position].time
        lag, length = config.baseline_lag_seconds, config.baseline_window_seconds
        warming_up = time - self.first_time < lag + length  # it reads what it has seen so far
        end = time if warming_up else _day_start(time - lag)
        start = max(_day_start(end - length), self.first_time)
        if self.last_window is not None and self.last_window.start == start and self.last_window.end == end:
            return self.last_window.tops
        window = self._totals_before(end).minus(self._totals_before(start))
        tops = (0.0, 0.0)
        if window.events >= config.baseline_min_events and end > start:
            days, half_life_days, sigmas = (
                (end - start) / DAY,
                config.half_life_seconds / DAY,
                config.baseline_sigmas,
            )
            tops = (
                band_top(window.conflict, window.conflict_days_squared, days, half_life_days, sigmas),
                band_top(window.cooperation, window.cooperation_days_squared, days, half_life_days, sigmas),
            )
        self.last_window = BandWindow(start, end, tops)
        return tops

    def knows_its_normal(self, time: float) -> bool:
        """Whether the dyad has a day of history before `time` to read its normal from (on its
        first day its normal is not known, not zero)."""
        return self.first_time is not None and time - self.first_time >= DAY

    def _totals_before(self, time: float) -> Totals:
        """Running totals over the events before `time`: the dyad's first time, a time after
        the folded `prior`, or the start of a UTC day (what `baselines` asks: folded days are
        kept whole, in `day_totals`)."""
        if self.first_time is None or time <= self.first_time:
            return Totals()
        position = bisect.bisect_left(self.entries, time, key=lambda e: e.time) - 1
        if position >= 0:
            return self.entries[position].totals
        if self.prior is None:
            return Totals()
        if time > self.prior.time:
            return self.prior.totals
        day = bisect.bisect_left(self.day_totals, int(time // DAY), key=lambda t: t.day) - 1
        return self.day_totals[day] if day >= 0 else Totals()

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
        """Where `entry` goes in event-time order: after the latest, for most events."""
        if not self.entries or self.entries[-1].order < entry.order:
            position = len(self.entries)
            self.entries.append(entry)
        else:
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
        # What changed at `position` came no earlier than the entry before it: a window read
        # that ends after that entry may have counted differently.
        if self.last_window is not None and (
            position == 0 or self.entries[position - 1].time < self.last_window.end
        ):
            self.last_window = None
        for index in range(position, len(self.entries)):
            entry = self.entries[index]
            previous = self.entries[index - 1] if index > 0 else self.prior
            entry.anchor = decay.frame_of(entry.time, half_life)
            if previous is None:
                conflict_sum = cooperation_sum = 0.0
            else:  # the running sums go on, moved to this entry's frame if it starts a new one
                conflict_sum = decay.term(previous.conflict_sum, previous.anchor, entry.anchor, half_life)
                cooperation_sum = decay.term(
                    previous.cooperation_sum, previous.anchor, entry.anchor, half_life
                )
            entry.conflict_sum = conflict_sum + decay.term(
                entry.conflict, entry.time, entry.anchor, half_life
            )
            entry.cooperation_sum = cooperation_sum + decay.term(
                entry.cooperation, entry.time, entry.anchor, half_life
            )
            before = previous.standing if previous else Standing()
            entry.totals = (previous.totals if previous else Totals()).plus(
                entry.conflict, entry.cooperation, entry.time
            )
            passage = None
            if previous is None:
                passage = Passage(0.0, 0.0, entry.time)
            elif previous.time < entry.time:
                escalation_before, de_escalation_before = _indices_after(previous, half_life)
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
        entry = self.entry_at(position)
        escalation_band, de_escalation_band = (0.0, 0.0) if entry is None else entry.judged_against
        at = 0.0 if entry is None else entry.time
        if event_time is not None:
            at = event_time
        correction = triggered_by if event_time is not None else None
        identity = alert_id(
            config.computed_with.config_hash, self.dyad, at, step, previous_level, level, correction
        )
        crisis_since = None if entry is None else entry.standing.crisis_since
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
        """The events that weigh most just after the entry at `position` (or the folded
        `prior`, with none held), heaviest first (the folded ones among them kept in `notable`)."""
        last = self.entry_at(position)
        if last is None:
            return []
        held = self.entries[: position % len(self.entries) + 1] if self.entries else []
        weighed = [
            (
                decay.decayed(n.value, n.time, last.time, config.half_life_seconds),
                n.index_name,
                n.time,
                n.event_id,
            )
            for n in (*self.notable, *_weights(held))
        ]
        weighed.sort(key=lambda item: (-item[0], item[3]))
        return [
            Contributor(
                event_id=event_id,
                event_time=from_seconds(time),
                index=index_name,  # type: ignore[arg-type]
                contribution=weight,
            )
            for weight, index_name, time, event_id in weighed[: config.contributors]
        ]

    def fold(self, before: float, config: EngineConfig) -> None:
        """Fold the entries older than `before` (no later event that old is accepted): the last
        becomes `prior`, their days' totals and heaviest weights are kept as far as the
        baseline window and the alerts may still ask for them."""
        keep_from = bisect.bisect_left(self.entries, before, key=lambda e: e.time)
        if keep_from == 0:
            return
        folded = self.entries[:keep_from]
        if self.let_go_since is None:
            self.let_go_since = folded[0].time
        for entry in folded:
            del self.fingerprints[entry.event_id]
            if self.day_totals and self.day_totals[-1].day == entry.totals.day:
                self.day_totals[-1] = entry.totals
            else:
                self.day_totals.append(entry.totals)
        self.prior = folded[-1]
        self.held_from = before
        del self.entries[:keep_from]
        # A held entry's window starts at most a day or two (rounding to days) before `reach`;
        # the last folded day before where it may start answers for the days before it.
        reach = before - config.baseline_lag_seconds - config.baseline_window_seconds
        still_asked = bisect.bisect_left(self.day_totals, int(reach // DAY) - 3, key=lambda t: t.day)
        del self.day_totals[: max(0, still_asked - 1)]
        # Twice as many as an alert names: weights equal on paper (one twice the other and a
        # half-life older) may round apart differently here than where an alert weighs them.
        # Heaviest first, ties in the order they came (a stable sort: those kept, then these).
        half_life, kept = config.half_life_seconds, 2 * config.contributors
        self.notable = sorted([*self.notable, *_weights(folded)], key=lambda n: n.rank(half_life))[:kept]

    def forget_before(self, horizon: float) -> None:
        """Let go of the tombstones and alerts older than `horizon` (the retention)."""
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
        """A JSON-ready copy of the state (floats round-trip exactly through JSON). Held
        entries keep only their inputs: `restore` recomputes the rest, bit for bit."""
        return {
            "dyad": self.dyad,
            "entries": [entry.inputs() for entry in self.entries],
            "prior": None if self.prior is None else self.prior.as_row(),
            "day_totals": [totals.as_row() for totals in self.day_totals],
            "notable": [list(notable) for notable in self.notable],
            "held_from": self.held_from,
            "retracted": self.retracted,
            "emitted": {alert_id: list(published) for alert_id, published in self.emitted.items()},
            "reported_level": self.reported_level.value,
            "last_correction": self.last_correction,
            "last_change": self.last_change,
            "let_go_since": self.let_go_since,
            "version": SNAPSHOT_VERSION,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any], config: EngineConfig) -> DyadState:
        """A state from `snapshot`, migrated first if an older version wrote it, its timeline
        recomputed under `config` (what was published stays published: nothing is told)."""
        version = snapshot.get("version", 1)
        if version > SNAPSHOT_VERSION:
            raise ValueError(f"a version {version} snapshot; this engine reads up to {SNAPSHOT_VERSION}")
        for older in range(version, SNAPSHOT_VERSION):
            snapshot = _MIGRATIONS[older](snapshot)
        entries = [Entry.from_inputs(row) for row in snapshot["entries"]]
        state = cls(
            dyad=snapshot["dyad"],
            entries=entries,
            retracted=dict(snapshot["retracted"]),
            emitted={alert_id: Published(*row) for alert_id, row in snapshot["emitted"].items()},
            reported_level=Level(snapshot["reported_level"]),
            last_correction=snapshot["last_correction"],
            fingerprints={entry.event_id: entry.fingerprint for entry in entries},
            last_change=snapshot["last_change"],
            let_go_since=snapshot["let_go_since"],
            prior=None if snapshot["prior"] is None else Entry.from_row(snapshot["prior"]),
            day_totals=[Totals(*row) for row in snapshot["day_totals"]],
            notable=[Notable(*row) for row in snapshot["notable"]],
            held_from=snapshot["held_from"],
        )
        if unfolded := snapshot.get("unfolded"):  # from a version 5 snapshot (see `_folded`)
            state.entries = [Entry.from_row(row) for row in unfolded]
            state.fingerprints = {entry.event_id: entry.fingerprint for entry in state.entries}
            state.fold(state.entries[-1].time - config.lateness_seconds, config)
        state.recompute_from(0, config)
        return state


def _indices_after(entry: Entry, half_life: float) -> tuple[float, float]:
    """(escalation, de-escalation) just after `entry`."""
    return (
        decay.value_at(entry.conflict_sum, entry.time, entry.anchor, half_life),
        decay.value_at(entry.cooperation_sum, entry.time, entry.anchor, half_life),
    )


def _weights(entries: list[Entry]) -> list[Notable]:
    """Each entry's weight on each index it adds to."""
    return [
        Notable(entry.time, entry.event_id, index_name, value)
        for entry in entries
        for index_name, value in (("escalation", entry.conflict), ("de-escalation", entry.cooperation))
        if value > 0
    ]


def _day_start(time: float) -> float:
    return (time // DAY) * DAY


SNAPSHOT_VERSION = 6
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
        rows.append([*sums, totals.as_row(), Standing(level, cooperation_leads=leads).as_row(), [0.0, 0.0]])
    return {
        **snapshot,
        "entries": rows,
        "let_go_since": None,
        "prior_totals": Totals().as_row(),
        "prior_standing": Standing().as_row(),
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


def _folded(snapshot: dict[str, Any]) -> dict[str, Any]:
    """5 → 6: the entries, whole as version 5 kept them, go to `unfolded`: `restore` folds
    those past the lateness horizon with the sums, totals and standings they were saved with,
    and recomputes the rest. What version 5 had let go of (its totals and standing) becomes
    a `prior` before them, and the first folded day (its sums restart at zero as they did)."""
    prior, day_totals = None, []
    if snapshot["let_go_since"] is not None and snapshot["entries"]:
        first = Entry.from_row(snapshot["entries"][0])
        totals = Totals(*snapshot["prior_totals"])
        standing = _standing_of(snapshot["prior_standing"])
        prior = Entry(first.time, "", 0.0, 0.0, first.anchor, totals=totals, standing=standing).as_row()
        day_totals = [totals.as_row()]
    rest = {k: v for k, v in snapshot.items() if k not in ("prior_totals", "prior_standing", "entries")}
    return {
        **rest,
        "entries": [],
        "unfolded": snapshot["entries"],
        "prior": prior,
        "day_totals": day_totals,
        "notable": [],
        "held_from": None,
        "version": 6,
    }


_MIGRATIONS = {
    1: _since_last_change,
    2: _with_baselines,
    3: _with_witnesses,
    4: _with_fingerprints,
    5: _folded,
}
"""From version N to N + 1."""
