"""How well a detector would have served in a labelled crisis, and over a library of them.

Three detectors are scored the same way: the engine's alerts, and two baselines a user
would otherwise fall back on: an alert on every event of Goldstein -9 or lower, and
"yesterday's level" (the engine's level at the close of the previous day, as a daily
report would give it).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from schemas.outputs import Alert, Level
from services.backtest.budget import AlertBudget, run_budget
from services.backtest.labels import CrisisLabels, midnight
from services.backtest.run import BacktestResult
from services.core.timeutil import from_seconds, to_seconds

Kind = Literal["escalation", "de-escalation"]
ENGINE = "engine"
GOLDSTEIN_BASELINE = "Goldstein ≤ -9"
YESTERDAY_BASELINE = "yesterday's level"
DETECTORS = (ENGINE, GOLDSTEIN_BASELINE, YESTERDAY_BASELINE)
DAY = 86_400.0


@dataclass(frozen=True)
class Signal:
    """An alert, or what a baseline would have raised; `level` is None for detectors without."""

    time: datetime
    kind: Kind
    level: Level | None


def engine_signals(alerts: Iterable[Alert]) -> list[Signal]:
    return [Signal(alert.event_time, alert.kind, alert.level) for alert in alerts]


def goldstein_signals(strong_conflict_times: Iterable[datetime]) -> list[Signal]:
    return [Signal(moment, "escalation", None) for moment in strong_conflict_times]


def yesterday_signals(alerts: Iterable[Alert]) -> list[Signal]:
    """The engine's level at each day's close, known the next morning: changes become signals."""
    closing: dict[int, Level] = {}
    for alert in alerts:
        closing[int(to_seconds(alert.event_time) // DAY)] = alert.level
    signals = []
    previous = Level.NORMAL
    for day in sorted(closing):
        level = closing[day]
        if level is not previous:
            kind: Kind = "escalation" if level.rank > previous.rank else "de-escalation"
            signals.append(Signal(from_seconds((day + 1) * DAY), kind, level))
        previous = level
    return signals


@dataclass(frozen=True)
class CrisisScore:
    crisis: str
    dyad: str
    detector: str
    onset_detected: bool | None
    onset_delay_days: float | None
    warning_reached: bool | None
    de_escalation_detected: bool | None
    de_escalation_delay_days: float | None
    false_alarms: int
    calm_days: int
    expectations_met: bool


def score_crisis(labels: CrisisLabels, detector: str, signals: list[Signal]) -> CrisisScore:
    rises = [s for s in signals if s.kind == "escalation"]
    falls = [s for s in signals if s.kind == "de-escalation"]
    onset_detected = onset_delay = warning = de_escalated = de_escalation_delay = None
    if labels.onset is not None:
        onset = midnight(labels.onset)
        calm_before = [p.end for p in labels.calm if p.end < labels.onset]
        opens = midnight(max(calm_before)) + timedelta(days=1) if calm_before else onset
        caught = [s for s in rises if opens <= s.time < onset + labels.tolerance.onset]
        onset_detected = bool(caught)
        onset_delay = _days(caught[0].time - onset) if caught else None
        crisis_end = midnight(labels.resolution or labels.covers.end) + labels.tolerance.resolution
        if detector != GOLDSTEIN_BASELINE:
            warning = any(
                s.level is not None and s.level.rank >= Level.WARNING.rank and opens <= s.time < crisis_end
                for s in rises
            )
    if labels.resolution is not None and detector != GOLDSTEIN_BASELINE:
        resolution = midnight(labels.resolution)
        since = max(midnight(labels.peak or labels.resolution), resolution - labels.tolerance.resolution)
        caught = [s for s in falls if since <= s.time < resolution + labels.tolerance.resolution]
        de_escalated = bool(caught)
        de_escalation_delay = _days(caught[0].time - resolution) if caught else None
    if labels.onset is None and detector != GOLDSTEIN_BASELINE:  # a calm control: warning is wrong
        warning = any(
            s.level is not None and s.level.rank >= Level.WARNING.rank and labels.covers.holds(s.time)
            for s in rises
        )
    false_alarms = sum(1 for s in rises if any(period.holds(s.time) for period in labels.calm))
    met = [
        (onset_detected or False) == labels.expect.escalation,
        warning is None or warning == labels.expect.warning,
        de_escalated is None or de_escalated == labels.expect.de_escalation,
    ]
    return CrisisScore(
        crisis=labels.name,
        dyad=labels.dyad,
        detector=detector,
        onset_detected=onset_detected,
        onset_delay_days=onset_delay,
        warning_reached=warning,
        de_escalation_detected=de_escalated,
        de_escalation_delay_days=de_escalation_delay,
        false_alarms=false_alarms,
        calm_days=labels.calm_days,
        expectations_met=all(met) and false_alarms == 0,
    )


@dataclass(frozen=True)
class Evaluation:
    scores: list[CrisisScore]
    aggregates: list[Aggregate]
    budget: AlertBudget | None = None
    """The run's alert budget: the engine's alerts over every dyad, labelled or not."""


def evaluate(result: BacktestResult, crises: list[CrisisLabels]) -> Evaluation:
    """Every detector on every labelled crisis, then each detector over all of them, and what
    the run's alerts cost over every dyad."""
    scores: list[CrisisScore] = []
    for labels in crises:
        alerts = result.alert_archive.of(labels.dyad)
        signals = {
            ENGINE: engine_signals(alerts),
            GOLDSTEIN_BASELINE: goldstein_signals(result.strong_conflict.get(labels.dyad, [])),
            YESTERDAY_BASELINE: yesterday_signals(alerts),
        }
        scores.extend(score_crisis(labels, detector, signals[detector]) for detector in DETECTORS)
    aggregates = [aggregate(d, [s for s in scores if s.detector == d]) for d in DETECTORS]
    return Evaluation(scores, aggregates, run_budget(result))


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / DAY, 2)


@dataclass(frozen=True)
class Aggregate:
    """One detector over a library: counts are (hits, out of), delays medians in days."""

    detector: str
    onsets: tuple[int, int]
    median_onset_delay_days: float | None
    warnings: tuple[int, int] | None
    de_escalations: tuple[int, int] | None
    median_de_escalation_delay_days: float | None
    false_alarms: int
    false_alarms_per_30_calm_days: float
    expectations_met: tuple[int, int]


def aggregate(detector: str, scores: list[CrisisScore]) -> Aggregate:
    def tally(values: list[bool | None]) -> tuple[int, int] | None:
        known = [value for value in values if value is not None]
        return (sum(known), len(known)) if known else None

    def median(values: list[float | None]) -> float | None:
        known = [value for value in values if value is not None]
        return round(statistics.median(known), 2) if known else None

    calm_days = sum(score.calm_days for score in scores)
    false_alarms = sum(score.false_alarms for score in scores)
    return Aggregate(
        detector=detector,
        onsets=tally([s.onset_detected for s in scores]) or (0, 0),
        median_onset_delay_days=median([s.onset_delay_days for s in scores]),
        warnings=tally([s.warning_reached for s in scores if s.onset_detected is not None]),
        de_escalations=tally([s.de_escalation_detected for s in scores]),
        median_de_escalation_delay_days=median([s.de_escalation_delay_days for s in scores]),
        false_alarms=false_alarms,
        false_alarms_per_30_calm_days=round(30 * false_alarms / calm_days, 3) if calm_days else 0.0,
        expectations_met=(sum(s.expectations_met for s in scores), len(scores)),
    )
