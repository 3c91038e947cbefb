"""A grid of engine settings run over the same inputs, to choose thresholds by their trade-off.

`--sweep half_life=1d,3d,7d --sweep watch=4,6,8` runs 9 backtests; each is scored against
the labels, and the engine's aggregate (onset delay against false alarms) is one row, with
the run's alert budget over every dyad (what the setting costs where nothing is labelled).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from replay.readers.base import ReaderOptions
from schemas.validation import describe
from services.backtest.budget import AlertBudget
from services.backtest.labels import CrisisLabels
from services.backtest.run import run_backtest
from services.backtest.scoring import ENGINE, Aggregate, Evaluation, evaluate
from services.core import EngineConfig

SWEEP_NAMES = {
    "half_life": "half_life",
    "watch": "watch_threshold",
    "warning": "warning_threshold",
    "critical": "critical_threshold",
    "clearing": "clearing_ratio",
    "non_state": "non_state_weight",
    "window": "baseline_window",
    "lag": "baseline_lag",
    "sigmas": "baseline_sigmas",
    "min_events": "baseline_min_events",
    "dwell": "min_dwell",
    "memory": "crisis_memory",
}
"""The names --sweep takes, and the EngineConfig setting each one sets."""


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[str, ...]


def parse_sweep(specs: Iterable[str]) -> list[Axis]:
    """'half_life=1d,3d watch=4,6' (one or several per spec); raises ValueError on a bad one."""
    axes: list[Axis] = []
    for part in (part for spec in specs for part in spec.split()):
        name, equals, values = part.partition("=")
        if not equals or not values:
            raise ValueError(f"--sweep {part!r}: expected NAME=V1,V2,...")
        if name not in SWEEP_NAMES:
            raise ValueError(f"--sweep {name!r}: choose among {', '.join(SWEEP_NAMES)}")
        if any(axis.name == name for axis in axes):
            raise ValueError(f"--sweep {name!r} is given twice")
        listed = tuple(value.strip() for value in values.split(","))
        if not all(listed):
            raise ValueError(f"--sweep {part!r}: a value is empty; expected NAME=V1,V2,...")
        axes.append(Axis(name, listed))
    return axes


@dataclass(frozen=True)
class SweepPoint:
    settings: dict[str, str]
    evaluation: Evaluation | None
    error: str | None = None
    """Why this combination was not run (e.g. watch above warning)."""

    @property
    def engine(self) -> Aggregate | None:
        if self.evaluation is None:
            return None
        return next(a for a in self.evaluation.aggregates if a.detector == ENGINE)

    @property
    def budget(self) -> AlertBudget | None:
        """The run's alerts per 30 days over every dyad (None when not run)."""
        return None if self.evaluation is None else self.evaluation.budget


def grid(base: EngineConfig, axes: list[Axis]) -> list[tuple[dict[str, str], EngineConfig | str]]:
    """Every combination with its configuration, or the reason it is not a valid one."""
    points: list[tuple[dict[str, str], EngineConfig | str]] = []
    for values in itertools.product(*(axis.values for axis in axes)):
        settings = {axis.name: value for axis, value in zip(axes, values, strict=True)}
        overrides = {SWEEP_NAMES[name]: value for name, value in settings.items()}
        try:
            points.append((settings, EngineConfig.model_validate({**base.model_dump(), **overrides})))
        except ValidationError as error:
            points.append((settings, describe(error)))
    return points


def run_sweep(
    paths: list[Path],
    base: EngineConfig,
    axes: list[Axis],
    crises: list[CrisisLabels],
    file_format: str = "auto",
    options: ReaderOptions | None = None,
    jobs: int = 1,
) -> list[SweepPoint]:
    """One backtest per valid combination, reading the inputs afresh each time (flat memory),
    each in `jobs` processes."""
    watched = {labels.dyad for labels in crises}
    points = []
    for settings, config in grid(base, axes):
        if isinstance(config, str):
            points.append(SweepPoint(settings, None, config))
            continue
        result = run_backtest(paths, config, file_format, options, watched=watched, jobs=jobs)
        points.append(SweepPoint(settings, evaluate(result, crises)))
    return points
