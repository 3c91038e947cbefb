"""Run event files through the core in play order and keep what a person needs to see.

What is kept is bounded whatever the input's size: per dyad, its counts and one chart anchor
per distinct event time; the alerts in an archive that spills to disk (archive.py); the
records themselves are listed only up to LISTED_RECORDS, since the alerts name the events
that drove them anyway. `--json` takes each alert as it comes (`on_alert`).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from replay.ordering import ReadReport, read_in_play_order
from replay.readers import Located
from replay.readers.base import BadRow, ReaderOptions
from schemas.events import CrisisEvent
from schemas.outputs import Alert, Level
from services.backtest.archive import AlertArchive
from services.core import Engine, EngineConfig, Outcome
from services.core.curve import AnchorTrail
from services.core.scoring import goldstein_of

LISTED_RECORDS = 5_000
FREEZE_EVERY = 10_000
"""Records played between two `gc.freeze` calls (see `frozen_as_played`)."""
FULL_COLLECTIONS_RARER = 100
"""How much rarer than the process's setting full collections are while a run plays (see
`frozen_as_played`)."""
STRONG_CONFLICT = -9.0
"""The Goldstein baseline's threshold: an alert on every event this bad or worse."""


class Step(NamedTuple):
    """A record played and what it did (a NamedTuple, as `Located` is: one is built per record)."""

    item: Located
    outcome: Outcome


@dataclass
class DyadTrace:
    """One dyad's run: its counts, listed steps and the anchors of its curve; its alerts are
    in the run's archive."""

    dyad: str
    archive: AlertArchive = field(repr=False)
    records: int = 0
    peak: Level = Level.NORMAL
    steps: list[Step] = field(default_factory=list)
    trail: AnchorTrail = field(default_factory=AnchorTrail)

    @property
    def alerts(self) -> list[Alert]:
        """Read back from the archive at each call: for drawing one dyad at a time."""
        return self.archive.of(self.dyad)

    @property
    def alert_count(self) -> int:
        return self.archive.count(self.dyad)

    def add(self, step: Step, listed: bool) -> None:
        self.records += 1
        if listed:
            self.steps.append(step)
        reading = step.outcome.index
        if reading is None:
            return
        if reading.level.rank > self.peak.rank:
            self.peak = reading.level
        self.trail.add(
            reading.as_of,
            reading.triggered_at,
            reading.escalation_index,
            reading.de_escalation_index,
            reading.escalation_baseline,
        )


@dataclass
class BacktestResult:
    config: EngineConfig
    read: ReadReport = field(default_factory=ReadReport)
    dyads: dict[str, DyadTrace] = field(default_factory=dict)
    """In order of each dyad's first record."""
    counts: Counter[str] = field(default_factory=Counter)
    alert_archive: AlertArchive = field(default_factory=AlertArchive)
    """Every alert, in play order."""
    listed: int = 0
    complete_listing: bool = True
    """Whether every record of a dyad is listed; once one is not, the run lists alerts only,
    and the steps are let go."""
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
        for alert in step.outcome.alerts:
            self.alert_archive.add(alert)
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
        if not listed and self.complete_listing:
            self.complete_listing = False
            for listed_so_far in self.dyads.values():
                listed_so_far.steps.clear()
        trace = self.dyads.get(dyad)
        if trace is None:
            trace = self.dyads[dyad] = DyadTrace(dyad, self.alert_archive)
        trace.add(step, listed)

    @property
    def alerts(self) -> list[Alert]:
        """Every alert, read back whole: for small runs; a command goes through `alert_archive`."""
        return list(self.alert_archive)

    @property
    def records(self) -> int:
        return sum(self.counts.values())


def run_backtest(
    paths: Iterable[Path],
    config: EngineConfig,
    file_format: str = "auto",
    options: ReaderOptions | None = None,
    progress: bool = False,
    watched: Iterable[str] = (),
    on_alert: Callable[[Alert], None] | None = None,
) -> BacktestResult:
    """Read and play every file (InputError if one can't be read at all); `on_alert` is given
    each alert as it is raised."""
    result = BacktestResult(config, watched=frozenset(watched))
    engine = Engine(config)
    records = frozen_as_played(read_in_play_order(paths, file_format, options, result.read, progress))
    for item in tqdm(records, desc="play", unit=" records", disable=not progress):
        step = Step(item, engine.process(item.record))
        result.add(step)
        if on_alert is not None:
            for alert in step.outcome.alerts:
                on_alert(alert)
    result.counts["no-dyad"] += result.read.no_dyad
    return result


def frozen_as_played(records: Iterator[Located]) -> Iterator[Located]:
    """The records, with what the engine holds frozen out of the cyclic garbage collector as
    it grows, and full collections FULL_COLLECTIONS_RARER times rarer while they play.

    The engine's state (every event within retention) is not cyclic garbage, and each full
    collection rescanned all of it: 19 s of a 120 s million-event GDELT backtest (measured; the
    play leaves a few hundred cyclic objects to collect). Frozen, it is not scanned again, but
    a full collection still walked what the last FREEZE_EVERY records built, every ~70,000
    allocations: rarer, a 200,000-row GDELT backtest ran 6-10% faster at the same peak memory
    (five runs of each, alternating). Refcounting still frees what the engine lets go; once
    the run ends, `gc.unfreeze` hands the rest back and the thresholds are as they were."""
    thresholds = gc.get_threshold()
    young, middle, full = thresholds
    gc.set_threshold(young, middle, full * FULL_COLLECTIONS_RARER)
    try:
        for count, item in enumerate(records, start=1):
            if count % FREEZE_EVERY == 0:
                gc.freeze()
            yield item
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
