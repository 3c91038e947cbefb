"""The engine's configuration: what decides every index value and alert."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from schemas.cameo import GoldsteinScale, ScaleName, goldstein_scale
from schemas.events import CopiedAnew
from schemas.outputs import ComputedWith, Level

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(w|d|h|m|s)\s*$")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: Any) -> Any:
    """Accepts '3d', '12h', '1.5w', '90m', '30s' besides what pydantic takes (seconds, ISO 8601)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    return value


def format_duration(value: timedelta) -> str:
    """The shortest of the forms parse_duration reads: 3d, 12h, 90m, 30s."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class EngineConfig(CopiedAnew):
    """Defaults are calibrated for the contract: one -10 event raises `watch`, one -2 nothing.

    Its cached properties are why a copy is made anew (`CopiedAnew`): a copy with another
    half-life would have kept this one's `half_life_seconds`, another threshold this one's
    `config_hash`, and raised alerts under the ids of the configuration it was copied from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life: Duration = Field(default=timedelta(days=3), description="event-time half-life")
    watch_threshold: float = Field(default=6.0, gt=0)
    warning_threshold: float = Field(default=15.0, gt=0)
    critical_threshold: float = Field(default=30.0, gt=0)
    clearing_ratio: float = Field(
        default=0.6, gt=0, lt=1, description="a level is left below threshold x ratio"
    )
    non_state_weight: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="how much a non-state side (citizens, media, insurgents...) counts; an event "
        "between two non-state actors counts its square",
    )
    baseline_window: Duration = Field(
        default=timedelta(days=28), description="how much of a dyad's past sets its normal"
    )
    baseline_lag: Duration = Field(
        default=timedelta(days=7),
        description="the most recent span left out of the normal, so a crisis is not its own baseline",
    )
    baseline_sigmas: float = Field(
        default=3.0, ge=0, le=10, description="the top of a dyad's normal band: mean + this many deviations"
    )
    baseline_min_events: int = Field(
        default=10,
        ge=1,
        description="a dyad with fewer events in its baseline window has no normal of its own (zero)",
    )
    min_dwell: Duration = Field(
        default=timedelta(days=3),
        description="a level falls only once its surge has stayed below the clearing threshold this long",
    )
    crisis_memory: Duration = Field(
        default=timedelta(days=180),
        description="a crisis (warning or higher) stays open, at watch, until resolved or quiet this long",
    )
    goldstein_scale: ScaleName = "gdelt"
    contributors: int = Field(default=5, ge=1, le=50, description="events named per alert")
    retention_half_lives: float = Field(
        default=30,
        ge=4,
        description="alerts published and retractions are remembered this many half-lives",
    )
    lateness: Duration = Field(
        default=timedelta(days=7),
        description="how late an event may come (behind its dyad's latest) and still count exactly;"
        " later ones are refused as expired, and what is older is folded into running sums",
    )

    @model_validator(mode="after")
    def _thresholds_rise(self) -> Self:
        if not (0 < self.watch_threshold < self.warning_threshold < self.critical_threshold):
            raise ValueError("thresholds must rise: watch < warning < critical")
        if self.half_life <= timedelta(0):
            raise ValueError("half_life must be positive")
        if not timedelta(0) < self.lateness <= self.half_life * self.retention_half_lives:
            raise ValueError("lateness must be positive and at most the retention (half-lives x half_life)")
        return self

    @cached_property
    def half_life_seconds(self) -> float:
        return self.half_life.total_seconds()

    @cached_property
    def retention_seconds(self) -> float:
        return self.retention_half_lives * self.half_life_seconds

    @cached_property
    def lateness_seconds(self) -> float:
        return self.lateness.total_seconds()

    @cached_property
    def baseline_lag_seconds(self) -> float:
        return self.baseline_lag.total_seconds()

    @cached_property
    def baseline_window_seconds(self) -> float:
        return self.baseline_window.total_seconds()

    @cached_property
    def crisis_memory_seconds(self) -> float:
        return self.crisis_memory.total_seconds()

    @cached_property
    def min_dwell_seconds(self) -> float:
        return self.min_dwell.total_seconds()

    def threshold(self, level: Level) -> float:
        return self.thresholds[level.rank]

    @cached_property
    def thresholds(self) -> tuple[float, float, float, float]:
        """Each level's threshold by its rank (normal's is 0): what the core reads at every
        event, without a call into this interpreted class."""
        return (0.0, self.watch_threshold, self.warning_threshold, self.critical_threshold)

    @cached_property
    def scale(self) -> GoldsteinScale:
        return goldstein_scale(self.goldstein_scale)

    @cached_property
    def stamp_fields(self) -> dict[str, Any]:
        """`computed_with` as the keyword arguments every IndexUpdate and Alert takes."""
        return self.computed_with.model_dump()

    @cached_property
    def computed_with(self) -> ComputedWith:
        """The stamp put on every result: scale, its version, and a digest of all of this."""
        canonical = json.dumps(
            {**self.model_dump(mode="json"), "scale_version": self.scale.version},
            sort_keys=True,
        )
        return ComputedWith(
            scale=self.scale.name,
            scale_version=self.scale.version,
            config_hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
        )
