"""The alert budget: how many alerts a run would have asked an analyst to read, per 30 days.

Scores against labels say whether the alerts came in time on a few dyads; the budget says what
the whole run cost, over every dyad, labelled or not. Rates are per 30 days of event time,
the span being from the first to the last event time played (so a file whose first events
straggle in weeks early is measured over those weeks too).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.outputs import Alert, Level
from services.backtest.run import BacktestResult

PER_DAYS = 30
TOP_DYADS = 10
RISE_LEVELS = (Level.WATCH, Level.WARNING, Level.CRITICAL)
KINDS = ("escalation", "de-escalation")
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class DyadAlerts:
    dyad: str
    alerts: int
    rises: int
    """Of which alerts that raised the dyad's level."""


@dataclass(frozen=True)
class AlertBudget:
    """Counts over a run and the span they are spread over; rates are derived from them."""

    first: datetime | None
    last: datetime | None
    span_days: float
    alerts: int
    by_kind: dict[str, int]
    """escalation, de-escalation."""
    rises_to: dict[str, int]
    """Alerts that raised a level, by the level reached: watch, warning, critical."""
    top_dyads: list[DyadAlerts]
    """The dyads that raised most alerts, most first (ties by name), at most TOP_DYADS."""

    @property
    def rises_to_warning_or_higher(self) -> int:
        return self.rises_to[Level.WARNING.value] + self.rises_to[Level.CRITICAL.value]

    def per_30_days(self, count: int) -> float | None:
        """count * 30 / span; None when the run spans no time (nothing to spread it over)."""
        return round(count * PER_DAYS / self.span_days, 3) if self.span_days > 0 else None

    def as_json(self) -> dict[str, Any]:
        """Counts and their rates, for scores.json."""
        return {
            "first_event_time": None if self.first is None else self.first.isoformat(),
            "last_event_time": None if self.last is None else self.last.isoformat(),
            "span_days": self.span_days,
            "alerts": self.alerts,
            "alerts_per_30_days": self.per_30_days(self.alerts),
            "by_kind": {kind: _rated(self, n) for kind, n in self.by_kind.items()},
            "rises_to": {level: _rated(self, n) for level, n in self.rises_to.items()},
            "rises_to_warning_or_higher": _rated(self, self.rises_to_warning_or_higher),
            "top_dyads": [
                {
                    "dyad": d.dyad,
                    "alerts": d.alerts,
                    "rises": d.rises,
                    "per_30_days": self.per_30_days(d.alerts),
                }
                for d in self.top_dyads
            ],
        }


def _rated(budget: AlertBudget, count: int) -> dict[str, int | float | None]:
    return {"count": count, "per_30_days": budget.per_30_days(count)}


def is_rise(alert: Alert) -> bool:
    """An alert that took the dyad to a higher level (a level rise, or a correction upward)."""
    return alert.level.rank > alert.previous_level.rank


def alert_budget(alerts: Iterable[Alert], first: datetime | None, last: datetime | None) -> AlertBudget:
    """The budget of `alerts` over the event time from `first` to `last`, counted in one pass
    (a run's alerts are read back from its archive, not held)."""
    span = (last - first).total_seconds() / DAY_SECONDS if first is not None and last is not None else 0.0
    per_dyad: Counter[str] = Counter()
    rises_per_dyad: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for alert in alerts:
        per_dyad[alert.dyad] += 1
        kinds[alert.kind] += 1
        if is_rise(alert):
            rises_per_dyad[alert.dyad] += 1
            reached[alert.level.value] += 1
    top = sorted(per_dyad.items(), key=lambda item: (-item[1], item[0]))[:TOP_DYADS]
    return AlertBudget(
        first=first,
        last=last,
        span_days=max(span, 0.0),
        alerts=per_dyad.total(),
        by_kind={kind: kinds[kind] for kind in KINDS},
        rises_to={level.value: reached[level.value] for level in RISE_LEVELS},
        top_dyads=[DyadAlerts(dyad, count, rises_per_dyad[dyad]) for dyad, count in top],
    )


def run_budget(result: BacktestResult) -> AlertBudget:
    """The budget of a backtest run: all its alerts, every dyad, over its span."""
    return alert_budget(result.alert_archive, result.first_time, result.last_time)
