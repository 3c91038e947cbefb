"""Labels: what happened in a past crisis, and so what a good monitor should have said.

A labels file (YAML) names the dyad, the period it speaks for, the onset, peak and
resolution days, the alerts expected, and the calm periods in which any escalation alert is
a false alarm. `replay/data/crises/` holds one per curated crisis.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.events import DyadKey
from schemas.validation import describe
from services.core.config import Duration

LABELS_SUFFIX = ".labels.yaml"


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to", description="inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError("a period's `to` comes before its `from`")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment.astimezone(UTC).date() <= self.end


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    escalation: bool
    warning: bool
    de_escalation: bool


class Tolerance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    onset: Duration = Field(default=timedelta(days=7), description="how late an onset alert still counts")
    resolution: Duration = Field(
        default=timedelta(days=14),
        description="how far from the resolution (before, after the peak, or after) a de-escalation counts",
    )


class CrisisLabels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    dyad: DyadKey
    events: str | None = Field(default=None, description="the event file, relative to the labels file")
    covers: Period
    onset: date | None = None
    peak: date | None = None
    resolution: date | None = None
    expect: Expect
    calm: list[Period] = Field(default_factory=list)
    tolerance: Tolerance = Tolerance()
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        days = [day for day in (self.onset, self.peak, self.resolution) if day is not None]
        if days != sorted(days):
            raise ValueError("onset, peak and resolution must come in that order")
        if self.onset is None and (self.expect.escalation or self.expect.warning):
            raise ValueError("an escalation or warning is expected but no onset is labelled")
        if any(self.covers.start > day or day > self.covers.end for day in days):
            raise ValueError("onset, peak and resolution must lie in `covers`")
        return self

    @property
    def calm_days(self) -> int:
        return sum(period.days for period in self.calm)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def label_files(path: Path) -> list[Path]:
    """A labels file, or every *.labels.yaml in a directory."""
    return sorted(path.glob(f"*{LABELS_SUFFIX}")) if path.is_dir() else [path]


def load_labels(paths: list[Path]) -> list[CrisisLabels]:
    """Raises ValueError with one line naming the file when one cannot be read."""
    return [crisis for _, crisis in load_labelled(paths)]


def load_labelled(paths: list[Path]) -> list[tuple[Path, CrisisLabels]]:
    """Each labels file with what it says; raises as load_labels does."""
    crises = []
    for path in [file for given in paths for file in label_files(given)]:
        try:
            crises.append(
                (path, CrisisLabels.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))
            )
        except ValidationError as error:
            raise ValueError(f"{path}: {describe(error)}") from None
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: {str(error).splitlines()[0]}") from None
    if not crises:
        raise ValueError(f"no labels file in {', '.join(map(str, paths))}")
    return crises


def events_path(labels_path: Path, crisis: CrisisLabels) -> Path | None:
    """The event file a labels file names, resolved against the labels file's folder."""
    return None if crisis.events is None else (labels_path.parent / crisis.events).resolve()


def unread_events(labelled: list[tuple[Path, CrisisLabels]], inputs: list[Path]) -> list[str]:
    """A note for each labels file whose named event file is not among the inputs.

    `events:` documents which file the labels speak for; the backtest scores every labels file
    against whatever it is given, so several labels files can share one event file (it is read
    once), and a labels file whose own file is not given is scored on the others: usually a
    mistake worth a line on stderr, not a refusal.
    """
    given = {path.resolve() for path in inputs}
    notes = []
    for path, crisis in labelled:
        events = events_path(path, crisis)
        if events is not None and events not in given:
            notes.append(
                f"{path}: note: its events file {crisis.events} is not among the inputs;"
                f" {crisis.dyad} is scored on the inputs given"
            )
    return notes
