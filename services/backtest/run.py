"""Run event files through the core in play order and keep what a person needs to see.

What is kept is bounded whatever the input's size: per dyad, its counts, alerts and one
chart anchor per distinct event time; the records themselves are listed only up to
LISTED_RECORDS, since the alerts name the events that drove them anyway.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from replay.ordering import ReadReport, read_in_play_order
from replay.readers import Located
from replay.readers.base import BadRow, ReaderOptions
from schemas.events import CrisisEvent
from schemas.outputs import Alert, Level
from services.core import Engine, EngineConfig, Outcome
from services.core.curve import AnchorTrail
from services.core.scoring import goldstein_of
from services.core.timeutil import to_seconds

LISTED_RECORDS = 5_000
STRONG_CONFLICT = -9.0
"""The Goldstein baseline's threshold: an alert on every event this bad or worse."""


@dataclass(frozen=True)
class Step:
    item: Located
    outcome: Outcome


@dataclass
class DyadTrace:
    """One dyad's run: its counts, alerts, listed steps and the anchors of its curve."""

    records: int = 0
    peak: Level = Level.NORMAL
    alerts: list[Alert] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    trail: AnchorTrail = field(default_factory=AnchorTrail)

    def add(self, step: Step, listed: bool) -> None:
        self.records += 1
        self.alerts.extend(step.outcome.alerts)
        if listed:
            self.steps.append(step)
        update = step.outcome.index_update
        if update is None:
            return
        if update.level.rank > self.peak.rank:
            self.peak = update.level
        record_time = to_seconds(step.item.record.event_time)
        self.trail.add(
            to_seconds(update.as_of),
            record_time,
            update.escalation_index,
            update.de_escalation_index,
            update.escalation_baseline,
        )


@dataclass
class BacktestResult:
    config: EngineConfig
    read: ReadReport = field(default_factory=ReadReport)
    dyads: dict[str, DyadTrace] = field(default_factory=dict)
    """In order of each dyad's first record."""
    counts: Counter[str] = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    listed: int = 0
    watched: frozenset[str] = frozenset()
    """Labelled dyads: their events of Goldstein -9 or lower are kept for the baseline."""
    strong_conflict: dict[str, list[datetime]] = field(default_factory=dict)
    first_time: datetime | None = None
    last_time: datetime | None = None
    """The earliest and latest event time of the records played: the run's span of event time."""

    def add(self, step: Step) -> None:
        self.counts[step.outcome.fate] += 1
        if step.outcome.refusal is not None:  # what the worker dead-letters, reported as a bad row
            raw = step.item.record.model_dump_json()
            self.read.add_bad(BadRow(step.item.where, "conflicting copy", step.outcome.refusal, raw))
        moment = step.item.record.event_time
        if self.first_time is None or moment < self.first_time:
            self.first_time = moment
        if self.last_time is None or moment > self.last_time:
            self.last_time = moment
        self.alerts.extend(step.outcome.alerts)
        dyad = step.outcome.dyad
        if dyad is None:
            return
        record = step.item.record
        if (
            dyad in self.watched
            and step.outcome.fate == "accepted"
            and isinstance(record, CrisisEvent)
            and goldstein_of(record, self.config.scale) <= STRONG_CONFLICT
        ):
            self.strong_conflict.setdefault(dyad, []).append(record.event_time)
        listed = self.listed < LISTED_RECORDS
        self.listed += listed
        trace = self.dyads.get(dyad)
        if trace is None:
            trace = self.dyads[dyad] = DyadTrace()
        trace.add(step, listed)

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def complete_listing(self) -> bool:
        return self.listed == self.records - self.counts["no-dyad"]


def run_backtest(
    paths: Iterable[Path],
    config: EngineConfig,
    file_format: str = "auto",
    options: ReaderOptions | None = None,
    progress: bool = False,
    watched: Iterable[str] = (),
) -> BacktestResult:
    """Read and play every file (InputError if one can't be read at all)."""
    result = BacktestResult(config, watched=frozenset(watched))
    engine = Engine(config)
    records = read_in_play_order(paths, file_format, options, result.read, progress)
    for item in tqdm(records, desc="play", unit=" records", disable=not progress):
        result.add(Step(item, engine.process(item.record)))
    result.counts["no-dyad"] += result.read.no_dyad
    return result
