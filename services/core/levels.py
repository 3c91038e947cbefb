"""A dyad's standing after each event: its level, its open crisis, and the alert a step deserves.

Levels follow the escalation *surge*: how far the escalation index stands above the top of
the dyad's own normal band (see baseline.py). Four rules keep them from churning:

- hysteresis: a level is reached at its threshold and left only below threshold x
  `clearing_ratio`;
- dwell: a level falls only once its surge has stayed below that clearing threshold for
  `min_dwell` of event time;
- whole event times: falls, resolutions and cooperation are judged on the state before an
  event that opens a new event time, so rows of one day decide nothing by their sort order;
- crisis memory: once a dyad reaches `warning`, its crisis stays open and the dyad stays at
  least at `watch` until the crisis is resolved (cooperation surges past conflict) or has
  been quiet (no surge to `watch`) for `crisis_memory`. A crisis that goes quiet unresolved
  stays visible, and its resolution, months later, is still an alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from schemas.outputs import AlertKind, Level, ReasonCode
from services.core.config import EngineConfig, format_duration
from services.core.record import Record
from services.core.timeutil import from_seconds

LEVELS = tuple(Level)


@dataclass(init=False)
class Standing(Record):
    """What a dyad's timeline holds after an event, besides its indices. One is built per
    event (see `Record`)."""

    level: Final[Level]
    calm_since: Final[float | None]
    """Since when the surge has stayed below the level's clearing threshold (None: it is not)."""
    cooperation_leads: Final[bool]
    """The de-escalation surge is at least `watch` and above the escalation surge."""
    crisis_since: Final[float | None]
    """When the open crisis reached `warning` (None: no crisis open)."""
    hot_at: Final[float | None]
    """The last time the open crisis's surge stood at `watch` or above."""
    crisis_baselines: Final[tuple[float, float] | None]
    """The (escalation, de-escalation) baselines when the crisis opened: while it is open, and
    until the baseline window has moved past it, the dyad is judged against the lower of them
    and the current ones. A long war never becomes its own normal, nor the diplomacy it brings
    the normal its resolution must beat, nor the crisis the normal of the weeks after it."""
    post_crisis_until: Final[float | None]
    """When a closed crisis's days have left the baseline window (None: no crisis closed)."""

    def __init__(
        self,
        level: Level = Level.NORMAL,
        calm_since: float | None = None,
        cooperation_leads: bool = False,
        crisis_since: float | None = None,
        hot_at: float | None = None,
        crisis_baselines: tuple[float, float] | None = None,
        post_crisis_until: float | None = None,
    ) -> None:
        self.level, self.calm_since, self.cooperation_leads = level, calm_since, cooperation_leads
        self.crisis_since, self.hot_at, self.crisis_baselines = crisis_since, hot_at, crisis_baselines
        self.post_crisis_until = post_crisis_until

    def as_row(self) -> list[Any]:
        """The fields in order: what snapshots store (`Standing(*row)` reads it back)."""
        return [
            self.level,
            self.calm_since,
            self.cooperation_leads,
            self.crisis_since,
            self.hot_at,
            self.crisis_baselines,
            self.post_crisis_until,
        ]

    def judged(self, current: tuple[float, float]) -> tuple[float, float]:
        """The baselines the dyad is judged against, given its current ones."""
        return _judged(current, self.crisis_baselines)


def _judged(current: tuple[float, float], crisis: tuple[float, float] | None) -> tuple[float, float]:
    return current if crisis is None else (min(current[0], crisis[0]), min(current[1], crisis[1]))


class Reading(NamedTuple):
    """An index and the top of the dyad's normal band it is judged against."""

    value: float
    baseline: float

    @property
    def described(self) -> str:
        """ "index 44.00, 38.10 above this dyad's normal 5.90" (the index alone without a normal)."""
        if self.baseline == 0:
            return f"index {self.value:.2f}"
        surge = self.value - self.baseline
        side = "above" if surge >= 0 else "below"
        return f"index {self.value:.2f}, {abs(surge):.2f} {side} this dyad's normal {self.baseline:.2f},"


@dataclass(frozen=True)
class Transition:
    kind: AlertKind
    reason_code: ReasonCode
    reason: str


def reached(surge: float, config: EngineConfig) -> Level:
    """The highest level whose threshold the surge reaches (`EngineConfig` checks that they
    rise with the levels: the first reached from the top)."""
    thresholds = config.thresholds
    for rank, level in _FROM_THE_TOP:
        if surge >= thresholds[rank]:
            return level
    return Level.NORMAL


_FROM_THE_TOP = tuple((level.rank, level) for level in LEVELS[:0:-1])
"""Critical, warning, watch, with their ranks: `reached` runs at every event."""


def cleared(level: Level, surge: float, config: EngineConfig) -> Level:
    """The level left after falling through every clearing threshold the surge is below."""
    thresholds, ratio = config.thresholds, config.clearing_ratio
    while level is not Level.NORMAL and surge < thresholds[level.rank] * ratio:
        level = LEVELS[level.rank - 1]
    return level


@dataclass(init=False)
class Passage(Record):
    """The indices just before an event that opens a new event time, and the time of the
    dyad's previous event (between the two they only decayed). Built per event, as `Standing`."""

    escalation: Final[float]
    de_escalation: Final[float]
    previous_time: Final[float]

    def __init__(self, escalation: float, de_escalation: float, previous_time: float) -> None:
        self.escalation, self.de_escalation, self.previous_time = escalation, de_escalation, previous_time


def step(
    before: Standing,
    time: float,
    indices: tuple[float, float],
    passage: Passage | None,
    baselines: tuple[float, float],
    known: bool,
    config: EngineConfig,
) -> tuple[Standing, Transition | None]:
    """The standing after an event at `time`, and the alert it deserves (at most one, net).

    `indices` are the (escalation, de-escalation) indices just after the event; `passage` the
    state just before it, given when the event opens a new event time; `baselines` the tops of
    the dyad's normal bands, `known` whether they rest on at least a day of the dyad's history.
    Rises follow the surges (index minus baseline) at once. Falls, resolutions and cooperation
    are judged on `passage` only, on whole event times: rows of one day decide nothing by the
    order they sort in. A level falls once its surge has stayed below the clearing threshold
    for `min_dwell`: a level that comes back the same day was never left.
    """
    level, calm_since, leads = before.level, before.calm_since, before.cooperation_leads
    crisis_since, hot_at, crisis_baselines = before.crisis_since, before.hot_at, before.crisis_baselines
    post_crisis_until = before.post_crisis_until
    if post_crisis_until is not None and time >= post_crisis_until:
        crisis_baselines = post_crisis_until = None
    if crisis_since is not None and crisis_baselines is None and known:
        # A crisis opened on the dyad's first day, before its normal was known: it keeps the
        # first normal known (none, for a quiet dyad), or is dissolved if the dyad turns out
        # busy and, against its normal, nothing stands out.
        if baselines[0] == 0 or indices[0] - baselines[0] >= config.watch_threshold:
            crisis_baselines = baselines
        else:
            crisis_since = hot_at = None
    judged = _judged(baselines, crisis_baselines)
    escalation_surge = indices[0] - judged[0]
    resolved = quiet = turned = False
    if passage is not None:
        escalation_before = passage.escalation - judged[0]
        de_escalation_before = passage.de_escalation - judged[1]
        leads = de_escalation_before >= config.watch_threshold and de_escalation_before > escalation_before
        turned = leads and not before.cooperation_leads and level is not Level.NORMAL
        calmed = cleared(level, escalation_before, config).rank < Level.WARNING.rank
        resolved = crisis_since is not None and turned and calmed
        quiet = (
            crisis_since is not None and hot_at is not None and time - hot_at >= config.crisis_memory_seconds
        )
        if resolved or quiet:
            crisis_since = hot_at = None
            post_crisis_until = time + (config.baseline_lag + config.baseline_window).total_seconds()
        floor = Level.WATCH if crisis_since is not None else Level.NORMAL
        lower = max(cleared(level, escalation_before, config), floor, key=lambda lv: lv.rank)
        if lower.rank < level.rank:
            if calm_since is None:
                clearing = judged[0] + config.thresholds[level.rank] * config.clearing_ratio
                calm_since = _crossed(passage, clearing, time, config)
            if resolved or quiet or time - calm_since >= config.min_dwell_seconds:
                level, calm_since = lower, None
        else:
            calm_since = None

    top = reached(escalation_surge, config)
    if top.rank > level.rank:
        level, calm_since = top, None
    if level.rank >= Level.WARNING.rank and crisis_since is None:
        crisis_since, post_crisis_until = time, None
        if crisis_baselines is None and known:
            crisis_baselines = baselines
    if crisis_since is not None and escalation_surge >= config.watch_threshold:
        hot_at = time
    after = Standing(level, calm_since, leads, crisis_since, hot_at, crisis_baselines, post_crisis_until)
    shown = (
        (passage.escalation, passage.de_escalation)
        if passage and level.rank <= before.level.rank
        else indices
    )
    return after, _transition(before, after, resolved, quiet, turned, (shown, judged), config)


def _crossed(passage: Passage, clearing: float, time: float, config: EngineConfig) -> float:
    """When the escalation index, decaying since the previous event, went below `clearing`."""
    if passage.escalation <= 0:
        return passage.previous_time
    below_for = config.half_life_seconds * math.log2(clearing / passage.escalation)
    return max(passage.previous_time, time - below_for)


def _transition(
    before: Standing,
    after: Standing,
    resolved: bool,
    quiet: bool,
    turned: bool,
    shown_and_judged: tuple[tuple[float, float], tuple[float, float]],
    config: EngineConfig,
) -> Transition | None:
    """The alert for a step, its reason naming the indices shown and the normals they were
    judged by (`shown_and_judged`: each pair as (escalation, de-escalation))."""
    was, now = before.level, after.level
    if now is was and not resolved and not turned:
        return None  # most steps: nothing to tell, no reason to write
    (shown_escalation, shown_de_escalation), (escalation_normal, de_escalation_normal) = shown_and_judged
    escalation = Reading(shown_escalation, escalation_normal)
    de_escalation = Reading(shown_de_escalation, de_escalation_normal)
    if now.rank > was.rank:
        return Transition(
            "escalation",
            "level-rise",
            f"escalation {escalation.described} reached the {now} threshold {config.threshold(now):g}",
        )
    if resolved:
        return Transition(
            "de-escalation",
            "crisis-resolved",
            f"de-escalation {de_escalation.described} overtook escalation {escalation.described} "
            f"and the crisis open since {_day(before.crisis_since)} is resolved"
            + ("" if now is not was else f"; the level stays {now}"),
        )
    if quiet and now.rank < was.rank:
        return Transition(
            "de-escalation",
            "crisis-quiet",
            f"no surge to watch for {format_duration(config.crisis_memory)}: the crisis open since "
            f"{_day(before.crisis_since)} is closed unresolved",
        )
    if now.rank < was.rank:
        return Transition(
            "de-escalation",
            "level-fall",
            f"escalation {escalation.described} fell below the {was} clearing threshold "
            f"{config.threshold(was) * config.clearing_ratio:g}",
        )
    if turned:
        return Transition(
            "de-escalation",
            "cooperation-overtakes",
            f"de-escalation {de_escalation.described} overtook escalation {escalation.described} "
            f"at level {now}",
        )
    return None


def _day(seconds: float | None) -> str:
    return "?" if seconds is None else from_seconds(seconds).date().isoformat()
