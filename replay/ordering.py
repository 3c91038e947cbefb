"""The one order in which records are played: event time, then record id.

The replay producer and the offline backtest both read through `read_in_play_order`, so
the worker and the backtest see each dyad's records in the same order, GDELT repeats merged
the same way. Sorting is external: runs of RUN_SIZE records are sorted in memory and, past
the first, spilled to temporary files and merged, so memory stays flat on any input size.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from tqdm import tqdm

from replay.readers import BadRow, Located
from replay.readers.base import NoDyadRows, ReaderOptions
from replay.readers.dispatch import Input, inputs_of, read_input
from schemas.events import CrisisEvent, record_id

RUN_SIZE = 50_000
MAX_BAD_ROWS_KEPT = 1_000
_PICKLED_BATCH = 2_000


def play_key(item: Located) -> tuple[datetime, str]:
    return (item.record.event_time, record_id(item.record))


@dataclass
class ReadReport:
    """What reading found besides records, kept bounded whatever the input's size."""

    rows: int = 0
    no_dyad: int = 0
    merged: int = 0
    bad_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    def add_bad(self, bad: BadRow) -> None:
        self.bad_count += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append(bad)

    @property
    def bad_reasons(self) -> Counter[str]:
        """Kept bad rows by the field (or check) their reason names first."""
        return Counter(bad.reason.split(":", 1)[0] for bad in self.bad_rows)


def read_in_play_order(
    paths: Iterable[Path],
    file_format: str = "auto",
    options: ReaderOptions | None = None,
    report: ReadReport | None = None,
    progress: bool = False,
) -> Iterator[Located]:
    """Every readable record of the files in play order; the rest is counted in `report`.

    Raises InputError (on the first `next`) when a file cannot be read at all.
    """
    report = report if report is not None else ReadReport()
    located = _read_all(list(paths), file_format, options or ReaderOptions(), report, progress)
    return merge_repeats(external_sort(located), report)


def _read_all(
    paths: list[Path], file_format: str, options: ReaderOptions, report: ReadReport, progress: bool
) -> Iterator[Located]:
    total = sum(path.stat().st_size for path in paths if path.is_file())
    with tqdm(total=total, unit="B", unit_scale=True, desc="read", disable=not progress) as bar:
        for path in paths:
            with ExitStack() as stack:
                for source in inputs_of(path, stack):
                    report.inputs.append(source.name)
                    yield from _read_one(source, file_format, options, report, bar)


def _read_one(
    source: Input, file_format: str, options: ReaderOptions, report: ReadReport, bar: tqdm[None]
) -> Iterator[Located]:
    shown = 0
    for item in read_input(source, file_format, options):
        if isinstance(item, Located):
            report.rows += 1
            yield item
        elif isinstance(item, NoDyadRows):
            report.rows += item.count
            report.no_dyad += item.count
        else:
            report.rows += 1
            report.add_bad(item)
        if report.rows % 20_000 == 0 and not bar.disable:
            bar.update(source.consumed_on_disk() - shown)
            shown = source.consumed_on_disk()
    bar.update(source.disk_size - shown)


def external_sort(items: Iterable[Located], run_size: int = RUN_SIZE) -> Iterator[Located]:
    """`items` sorted by play_key, holding at most `run_size` of them in memory at a time."""
    with ExitStack() as stack:
        runs: list[IO[bytes]] = []
        batch: list[Located] = []
        for item in items:
            batch.append(item)
            if len(batch) >= run_size:
                runs.append(_spill(sorted(batch, key=play_key), stack))
                batch = []
        batch.sort(key=play_key)
        if not runs:
            yield from batch
            return
        runs.append(_spill(batch, stack))
        yield from heapq.merge(*(_unspill(run) for run in runs), key=play_key)


def _spill(run: list[Located], stack: ExitStack) -> IO[bytes]:
    spill = stack.enter_context(tempfile.TemporaryFile(prefix="crisismon-sort-"))  # noqa: SIM115 (closed by stack)
    for start in range(0, len(run), _PICKLED_BATCH):
        pickle.dump(run[start : start + _PICKLED_BATCH], spill, protocol=pickle.HIGHEST_PROTOCOL)
    spill.seek(0)
    return spill


def _unspill(spill: IO[bytes]) -> Iterator[Located]:
    while True:
        try:
            yield from pickle.load(spill)
        except EOFError:
            return


def merge_repeats(ordered: Iterable[Located], report: ReadReport) -> Iterator[Located]:
    """Adjacent rows of one real event (same id, mergeable) become one, their weights added up to 1."""
    pending: Located | None = None
    for item in ordered:
        if pending is not None and item.mergeable and record_id(item.record) == record_id(pending.record):
            pending = _combined(pending, item)
            report.merged += 1
            continue
        if pending is not None:
            yield pending
        pending = item
    if pending is not None:
        yield pending


def _combined(first: Located, other: Located) -> Located:
    assert isinstance(first.record, CrisisEvent) and isinstance(other.record, CrisisEvent)
    weight = min(1.0, first.record.weight + other.record.weight)
    return Located(first.where, first.record.model_copy(update={"weight": weight}), mergeable=True)
