"""The one order in which records are played: event time, then record id.

The replay producer and the offline backtest both read through `read_in_play_order`, so
the worker and the backtest see each dyad's records in the same order, GDELT repeats merged
the same way. Sorting is external: runs of RUN_SIZE records are sorted in memory and, past
the first, spilled to temporary files and merged, so memory stays flat on any input size.
"""

from __future__ import annotations

import gc
import heapq
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from tqdm import tqdm

from replay.readers import BadRow, Located
from replay.readers.base import NoDyadRows, Pending, ReaderOptions, SourceLine, category_of
from replay.readers.dispatch import Input, inputs_of, read_input
from schemas.events import Witnesses, parse_record, record_id, witnessed_weight
from schemas.validation import describe
from services.core.timeutil import too_far_ahead

RUN_SIZE = 150_000
"""About 1.5 kB a row held (GDELT, with its quote): a run is some 220 MB at most."""
PROGRESS_EVERY = 50_000
MAX_BAD_ROWS_KEPT = 1_000
_PICKLED_BATCH = 2_000
_FREEZE_EVERY = 2_000


Playable = Located | Pending


def dyad_of_item(item: Playable) -> str | None:
    return item.row.dyad if isinstance(item, Pending) else item.record.dyad


def play_key(item: Playable) -> tuple[datetime, str, str]:
    """Event time, record id, then dyad. Rows of one id and two dyads (one GLOBALEVENTID given
    again with other countries) are two events, each in its own dyad; and records tied on time
    and id come in one order whichever of their dyads a process reads (`Part`)."""
    if isinstance(item, Pending):
        return (item.event_time, item.event_id, item.row.dyad or "")
    return (item.record.event_time, record_id(item.record), item.record.dyad or "")


@dataclass
class ReadReport:
    """What reading found besides records, kept bounded whatever the input's size."""

    rows: int = 0
    no_dyad: int = 0
    merged: int = 0
    bad_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    """The first MAX_BAD_ROWS_KEPT; `bad_reasons` counts them all."""
    bad_reasons: Counter[str] = field(default_factory=Counter)
    """Bad rows by category (BadRow.category: "columns", "SQLDATE"...), the full reasons left
    to the rows kept; in the order first met."""
    bad_rows_from: list[int] = field(default_factory=list)
    """The input each kept bad row came from, as its index in `inputs` (a file given twice is
    two inputs of one name): how a split run's parts put their bad rows back in order."""
    first_met: dict[str, tuple[int, SourceLine]] = field(default_factory=dict)
    """Where each category was first met (input index, line): how a split run's parts put
    `bad_reasons` back in order."""
    inputs: list[str] = field(default_factory=list)

    def add_bad(self, bad: BadRow) -> None:
        """Of the input read last."""
        self.bad_count += 1
        self.bad_reasons[bad.category] += 1
        self.first_met.setdefault(bad.category, (len(self.inputs) - 1, bad.where))
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append(bad)
            self.bad_rows_from.append(len(self.inputs) - 1)


def read_in_play_order(
    paths: Iterable[Path],
    file_format: str = "auto",
    options: ReaderOptions | None = None,
    report: ReadReport | None = None,
    progress: bool = False,
    names: Mapping[Path, str] | None = None,
) -> Iterator[Located]:
    """Every readable record of the files in play order (of the dyads of `options.part`); the
    rest is counted in `report`. `names` names files in SourceLines where their path would not
    say where they came from (a downloaded file: its URL).

    In `published` order (`options.order`) each file is a batch played whole before the next,
    in file name order (GDELT's names are their publication times): what `crisismon follow`
    produces, file by file as they are published, so a backtest in this order gives its alerts.
    The rows of one event spread over several files then make several records, which the
    engine adds together (see `CrisisEvent.witnesses`).

    Raises InputError (on the first `next`) when a file cannot be read at all; every file is
    opened before any record is played, so a missing one stops the run before it starts.
    """
    report = report if report is not None else ReadReport()
    options = options or ReaderOptions()
    paths = list(paths)
    batches = [[path] for path in sorted(paths, key=lambda p: (p.name, str(p)))]
    if options.order == "event-time":
        batches = [paths]
    return _played(batches, file_format, options, report, progress, names or {})


def _played(
    batches: list[list[Path]],
    file_format: str,
    options: ReaderOptions,
    report: ReadReport,
    progress: bool,
    names: Mapping[Path, str],
) -> Iterator[Located]:
    for path in (path for batch in batches for path in batch):
        with ExitStack() as stack:
            next(inputs_of(path, stack, names.get(path)), None)  # InputError: a file that can't be opened
    total = sum(path.stat().st_size for batch in batches for path in batch if path.is_file())
    with tqdm(total=total, unit="B", unit_scale=True, desc="read", disable=not progress) as bar:
        for batch in batches:
            playable = _read_all(batch, file_format, options, report, bar, names)
            run_size = RUN_SIZE // options.part.count  # the parts together hold what one would
            yield from merge_repeats(external_sort(playable, run_size), report)


def _read_all(
    paths: list[Path],
    file_format: str,
    options: ReaderOptions,
    report: ReadReport,
    bar: tqdm[None],
    names: Mapping[Path, str],
) -> Iterator[Playable]:
    for path in paths:
        with ExitStack() as stack:
            for source in inputs_of(path, stack, names.get(path)):
                report.inputs.append(source.name)
                yield from _read_one(source, file_format, options, report, bar)


def _read_one(
    source: Input, file_format: str, options: ReaderOptions, report: ReadReport, bar: tqdm[None]
) -> Iterator[Playable]:
    """The source's records of `options.part`, and the rows it counts (every row in a run of one
    part): a row goes to the part of its dyad, good or bad; what has none, to the first."""
    shown = 0
    next_update = PROGRESS_EVERY
    part = options.part
    for item in read_input(source, file_format, options):
        if isinstance(item, NoDyadRows):
            if part.counts_the_rest:
                report.rows += item.count
                report.no_dyad += item.count
        elif isinstance(item, BadRow):
            if part.owns(item.dyad):
                report.rows += 1
                report.add_bad(item)
        elif not part.owns(dyad_of_item(item)):
            pass  # another part's, which its reader did not skip itself (ICEWS, native)
        elif refusal := _too_far_ahead(item, options):
            report.rows += 1
            report.add_bad(refusal)
        else:
            report.rows += 1
            yield item
        if report.rows >= next_update and not bar.disable:
            next_update = report.rows + PROGRESS_EVERY
            bar.update(source.consumed_on_disk() - shown)
            shown = source.consumed_on_disk()
    bar.update(source.disk_size - shown)


def _too_far_ahead(item: Playable, options: ReaderOptions) -> BadRow | None:
    if options.clock is None:
        return None
    event_time, event_id, _ = play_key(item)
    reason = too_far_ahead(event_time, options.clock, options.max_future_skew)
    return None if reason is None else BadRow(item.where, "event_time", reason, event_id)


def external_sort(items: Iterable[Playable], run_size: int = RUN_SIZE) -> Iterator[Playable]:
    """`items` sorted by play_key, holding at most `run_size` of them in memory at a time (and,
    while the runs are merged, a batch of each run spilled).

    Full runs are spilled; the last one, shorter, stays in memory and is merged with them from
    there: it would be read back at once. While a run fills, what it holds is frozen out of the
    cyclic garbage collector: records are never cyclic garbage, and rescanning a growing run at
    every collection costs more than reading it (a third of a GDELT backtest's time, measured).
    Refcounting still frees them; `gc.unfreeze` hands them back once they are all played.
    """
    with ExitStack() as stack:
        stack.callback(gc.unfreeze)
        runs: list[IO[bytes]] = []
        batch: list[Playable] = []
        for item in items:
            batch.append(item)
            if len(batch) % _FREEZE_EVERY == 0:
                gc.freeze()
            if len(batch) >= run_size:
                runs.append(_spill(sorted(batch, key=play_key), stack))
                batch = []
                gc.unfreeze()
        batch.sort(key=play_key)
        yield from heapq.merge(*(_unspill(run) for run in runs), _played_from(batch), key=play_key)


def _played_from(run: list[Playable]) -> Iterator[Playable]:
    """A sorted run, emptied as it is played: each row is let go once played."""
    run.reverse()
    while run:
        yield run.pop()


def _spill(run: list[Playable], stack: ExitStack) -> IO[bytes]:
    """A sorted run to a temporary file: Pending rows as they are, records as their JSON."""
    spill = stack.enter_context(tempfile.TemporaryFile(prefix="crisismon-sort-"))  # noqa: SIM115 (closed by stack)
    for start in range(0, len(run), _PICKLED_BATCH):
        rows = [
            item if isinstance(item, Pending) else (item.where, item.record.model_dump_json())
            for item in run[start : start + _PICKLED_BATCH]
        ]
        pickle.dump(rows, spill, protocol=pickle.HIGHEST_PROTOCOL)
    spill.seek(0)
    return spill


def _unspill(spill: IO[bytes]) -> Iterator[Playable]:
    while True:
        try:
            rows = pickle.load(spill)
        except EOFError:
            return
        for row in rows:
            yield row if isinstance(row, Pending) else Located(row[0], parse_record(row[1]))


def merge_repeats(ordered: Iterable[Playable], report: ReadReport) -> Iterator[Located]:
    """Each run of Pending rows with one id and dyad becomes one event that names them as its
    witnesses.

    A record read whole (native) passes as it is: a repeated id there is a duplicate, which
    the engine counts once. Rows of one event read in another batch (a later GDELT file) make
    another record with the same id, which the engine adds to the event (see `witnesses_of`).
    """
    run: list[Pending] = []
    for item in ordered:
        if (
            isinstance(item, Pending)
            and run
            and item.event_id == run[0].event_id
            and item.row.dyad == run[0].row.dyad
        ):
            run.append(item)
            report.merged += 1
            continue
        if run:
            yield from _built(run, report)
            run = []
        if isinstance(item, Pending):
            run.append(item)
        else:
            yield item
    if run:
        yield from _built(run, report)


def witnesses_of(run: list[Pending]) -> Witnesses:
    """The run's distinct rows with their shares, in the order read, up to a whole event.

    Rows past the one that completes the event add nothing to its weight, so they are not named:
    a record stays small however many articles repeat an event, and the engine stops counting
    rows for an event it holds whole.
    """
    witnesses: Witnesses = {}
    for row in run:
        witnesses.setdefault(row.row_id, row.weight)  # a row given twice is one witness
        if witnessed_weight(witnesses) >= 1.0:
            break
    return witnesses


def _built(run: list[Pending], report: ReadReport) -> Iterator[Located]:
    """The first row's event (its source and quote), standing for the run's rows.

    The readers check every field first, so building cannot fail; if it ever did, the row
    would be reported like any bad row rather than stop the run.
    """
    try:
        yield run[0].located(witnesses_of(run))
    except (ValidationError, ValueError) as error:
        report.add_bad(BadRow(run[0].where, category_of(error), describe(error), run[0].event_id))
