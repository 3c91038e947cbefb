"""Run event files through the core in play order and keep what a person needs to see.

What is kept is bounded whatever the input's size: per dyad, its counts and one chart anchor
per distinct event time; the alerts in an archive that spills to disk (archive.py); the
records themselves are listed only up to LISTED_RECORDS, since the alerts name the events
that drove them anyway. `--json` takes each alert as it comes (`on_alert`).

With `--jobs`, the dyads are played in several processes (parts.py), each keeping the same
records for its own dyads, and `_merged` puts their results together as one run's.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from replay.ordering import MAX_BAD_ROWS_KEPT, ReadReport, play_key, read_in_play_order
from replay.readers import Located
from replay.readers.base import WHOLE, BadRow, Part, ReaderOptions, SourceLine
from schemas.events import CrisisEvent
from schemas.outputs import Alert, Level
from services.backtest.archive import AlertArchive
from services.backtest.parts import KeyedLog, in_parts, merged_in_key_order, parts_folder
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
CONFLICTING_COPY = "conflicting copy"
"""The bad-row category of a copy the core refused (what the worker dead-letters)."""
Placed = tuple[int, bool, Any]
"""Where a bad row comes in a run's report: the index of the last input read by then (of
`ReadReport.inputs`), whether it was met in play rather than read, then its line (read: a
row's number, or infinity for the "unreadable" rest of an input, reported at its end) or its
record's key (played)."""


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
    keeps_alerts: bool = True
    """False in a part of a split run: its alerts go to the merge, which archives them."""

    def add(self, step: Step) -> None:
        self.counts[step.outcome.fate] += 1
        if step.outcome.refusal is not None:  # what the worker dead-letters, reported as a bad row
            raw = step.item.record.model_dump_json()
            self.read.add_bad(BadRow(step.item.where, CONFLICTING_COPY, step.outcome.refusal, raw))
        moment = step.item.record.event_time
        if self.first_time is None or moment < self.first_time:
            self.first_time = moment
        if self.last_time is None or moment > self.last_time:
            self.last_time = moment
        if self.keeps_alerts:
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
    jobs: int = 1,
) -> BacktestResult:
    """Read and play every file (InputError if one can't be read at all); `on_alert` is given
    each alert in play order.

    With `jobs` over 1, that many processes play the files' dyads in parts (parts.py), and
    their results are merged in play order: the same alerts, ids, counts and report as one
    process, the alerts handed to `on_alert` once every part has ended.
    """
    options, paths = options or ReaderOptions(), list(paths)
    if jobs <= 1:
        result = BacktestResult(config, watched=frozenset(watched))
        on_step = None if on_alert is None else partial(_hand_alerts, on_alert)
        return _play(paths, file_format, options, progress, WHOLE, result, on_step)
    with parts_folder() as folder:
        play = partial(_play_part, paths, config, file_format, options, progress, watched, Path(folder))
        return _merged(in_parts(jobs, Path(folder), play), config, watched, on_alert)


def _play(
    paths: list[Path],
    file_format: str,
    options: ReaderOptions,
    progress: bool,
    part: Part,
    result: BacktestResult,
    on_step: Callable[[Step], None] | None,
) -> BacktestResult:
    """`part`'s records played into `result`, each step shown to `on_step` before it."""
    engine = Engine(result.config)
    read = read_in_play_order(paths, file_format, replace(options, part=part), result.read, progress)
    for item in tqdm(frozen_as_played(read), desc="play", unit=" records", disable=not progress):
        step = Step(item, engine.process(item.record))
        if on_step is not None:
            on_step(step)
        result.add(step)
    result.counts["no-dyad"] += result.read.no_dyad
    return result


def _hand_alerts(on_alert: Callable[[Alert], None], step: Step) -> None:
    for alert in step.outcome.alerts:
        on_alert(alert)


class RunKey(NamedTuple):
    """Where a record was played in the whole run, the same in every part: the inputs read by
    then (files played one by one in `published` order, each input's records after the last
    one's; every input before any record in `event-time` order), then its play key."""

    inputs: int
    time: datetime
    record_id: str
    dyad: str


@dataclass
class PartRun:
    """What a part of a split run hands back: its result (without its alerts) and what the
    merge puts it back in play order by."""

    result: BacktestResult
    alerts: KeyedLog[Alert]
    """Its alerts with the keys of the records that raised them."""
    first_keys: dict[str, RunKey] = field(default_factory=dict)
    """Each dyad's first record's key."""
    conflict_keys: list[RunKey] = field(default_factory=list)
    """The keys of the conflicting copies it reported as bad rows, in order."""

    def note(self, step: Step) -> None:
        key = RunKey(len(self.result.read.inputs), *play_key(step.item))
        for alert in step.outcome.alerts:
            self.alerts.add(key, alert)
        if step.outcome.dyad is not None:
            self.first_keys.setdefault(step.outcome.dyad, key)
        if step.outcome.refusal is not None:
            self.conflict_keys.append(key)


def _play_part(
    paths: list[Path],
    config: EngineConfig,
    file_format: str,
    options: ReaderOptions,
    progress: bool,
    watched: Iterable[str],
    folder: Path,
    part: Part,
) -> PartRun:
    """One part played, in its own process (`in_parts`); the first shows the progress."""
    alerts: KeyedLog[Alert] = KeyedLog(folder / f"alerts-{part.index}")
    run = PartRun(BacktestResult(config, watched=frozenset(watched), keeps_alerts=False), alerts)
    _play(paths, file_format, options, progress and part.counts_the_rest, part, run.result, run.note)
    alerts.close()
    return run


def _merged(
    runs: list[PartRun],
    config: EngineConfig,
    watched: Iterable[str],
    on_alert: Callable[[Alert], None] | None,
) -> BacktestResult:
    """The parts' results as one run's: alerts and dyads in play order, counts added up."""
    result = BacktestResult(config, read=_merged_report(runs), watched=frozenset(watched))
    for alert in merged_in_key_order([run.alerts for run in runs]):
        result.alert_archive.add(alert)
        if on_alert is not None:
            on_alert(alert)
    first_keys = {dyad: key for run in runs for dyad, key in run.first_keys.items()}
    traces = {dyad: trace for run in runs for dyad, trace in run.result.dyads.items()}
    for dyad in sorted(traces, key=first_keys.__getitem__):
        result.dyads[dyad] = traces[dyad]
        traces[dyad].archive = result.alert_archive
    parts = [run.result for run in runs]
    for part in parts:
        result.counts.update(part.counts)
        result.strong_conflict.update(part.strong_conflict)
    result.first_time = min((part.first_time for part in parts if part.first_time), default=None)
    result.last_time = max((part.last_time for part in parts if part.last_time), default=None)
    records = sum(trace.records for trace in traces.values())
    result.listed, result.complete_listing = min(records, LISTED_RECORDS), records <= LISTED_RECORDS
    if not result.complete_listing:
        for trace in traces.values():
            trace.steps.clear()
    return result


def _merged_report(runs: list[PartRun]) -> ReadReport:
    """The parts' reading reports as one: each counted its own dyads' rows, the first part what
    belongs to no dyad; the bad rows in a single run's order: by input and line as read, each
    conflicting copy once the inputs read before it was played."""
    reports = [run.result.read for run in runs]
    report = ReadReport(inputs=reports[0].inputs)

    def read_at(input_at: int, where: SourceLine) -> Placed:
        return input_at, False, where.line or math.inf

    def played_at(key: RunKey) -> Placed:
        return key.inputs - 1, True, key

    def category_met_at(category: str) -> Placed:
        if category == CONFLICTING_COPY:
            return played_at(min(run.conflict_keys[0] for run in runs if run.conflict_keys))
        return read_at(*report.first_met[category])

    def in_order(run: PartRun) -> Iterator[tuple[Placed, BadRow]]:
        """The part's kept bad rows with their places (its conflict keys name the first ones)."""
        conflicts = iter(run.conflict_keys)
        for bad, input_at in zip(run.result.read.bad_rows, run.result.read.bad_rows_from, strict=True):
            if bad.category != CONFLICTING_COPY:
                yield read_at(input_at, bad.where), bad
            elif (key := next(conflicts, None)) is not None:
                yield played_at(key), bad

    for part in reports:
        report.rows += part.rows
        report.no_dyad += part.no_dyad
        report.merged += part.merged
        report.bad_count += part.bad_count
        for category, met in part.first_met.items():
            report.first_met[category] = min(
                report.first_met.get(category, met), met, key=lambda at: read_at(*at)
            )
    for category in sorted(report.first_met, key=category_met_at):
        report.bad_reasons[category] = sum(part.bad_reasons[category] for part in reports)
    merged = heapq.merge(*(in_order(run) for run in runs), key=lambda placed: placed[0])
    for (input_at, _, _), bad in itertools.islice(merged, MAX_BAD_ROWS_KEPT):
        report.bad_rows.append(bad)
        report.bad_rows_from.append(input_at)
    return report


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
