"""`make bench`: `crisismon backtest` on two large GDELT 2.0 files, next to pyarrow parsing them.

Both files are built from the real GDELT rows of tests/data (tests/gdelt_samples.py), each
row a distinct event: a fresh GLOBALEVENTID, a day within DAYS days (rows in publication
order, some reporting days past), and the real row's event code, Goldstein score, actor
types and NumMentions/NumSources/NumArticles (mostly one source, now and then dozens).

- realistic: a quarter of the rows are events between two countries, among DYADS dyads
  (some much busier than others); the rest are the real rows of no dyad as they are (an
  actor without a country, or both actors of one country), as most of GDELT's rows are.
- stress: every row is an event between two countries.

pyarrow reads each file as tab-separated text (all 61 columns as strings, nothing else), best
of PARSES runs: the floor any reader of it pays. The backtest runs once, as the installed
command does, with --json to /dev/null; its peak memory is its own (VmHWM, see `backtest`).
Targets: within 2x of parse-only on the realistic file, 5x on the stress file, and
under 500 MB on both. Then the core alone: the same records played in this process, only the
engine's calls timed, what no faster reader could take away.
A benchmark, not a test: it asserts nothing. `make bench` runs it after the live part and puts
its figures in the one table (`measure`); alone: `python -m tests.bench.backtest_gdelt [ROWS]`.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
from pyarrow import csv as pa_csv

from replay.ordering import read_in_play_order
from schemas.actors import role_from_cameo
from schemas.countries import country_codes
from services.backtest.run import frozen_as_played
from services.core import Engine, EngineConfig
from tests.bench.harness import peak_rss_mb
from tests.gdelt_samples import as_gdelt2, georgia_rows
from tests.live import children_of

ROWS = 1_000_000
CRISISMON = Path(sys.executable).parent / "crisismon"
SEED = 2024
FIRST_DAY = datetime(2024, 1, 1)
DAYS = 120
COUNTRIES = 60
DYADS = 300
MAX_LAG = 10
FIRST_ID = 1_200_000_000
LINES_PER_WRITE = 20_000
PARSES = 3
RSS_POLL_SECONDS = 0.05
JOBS = len(os.sched_getaffinity(0))
"""The backtest's default processes here (`backtest_jobs` unset: one per CPU)."""
ACTORS = {"Actor1": (5, 6, 7, (12, 13, 14)), "Actor2": (15, 16, 17, (22, 23, 24))}
"""Per actor, the 2.0 columns of its code, name, country and type codes."""
EVENT_CODE = 26


@dataclass(frozen=True)
class Case:
    name: str
    dyad_share: Fraction
    ratio_target: float


CASES = (Case("realistic", Fraction(1, 4), 2.0), Case("stress", Fraction(1), 5.0))
MEMORY_TARGET_MB = 500


@dataclass(frozen=True)
class CaseRun:
    """One file's figures: seconds of pyarrow's parse (best of PARSES), of the backtest and of
    the core alone, and the backtest's peak memory."""

    case: Case
    rows: int
    dyad_rows: int
    parse_seconds: float
    run_seconds: float
    peak_mb: float
    core_seconds: float
    jobs: int
    """The processes the run played its dyads in (the command's default: one per CPU)."""
    one_process_seconds: float
    one_process_peak_mb: float

    @property
    def ratio(self) -> float:
        return self.run_seconds / self.parse_seconds

    @property
    def core_microseconds(self) -> float:
        """The core's cost per two-country event: what each of them costs, whatever the reader."""
        return self.core_seconds / self.dyad_rows * 1e6


class Rows:
    """The real rows as 2.0 columns, and the dyads and days the synthetic rows spread over."""

    def __init__(self, seed: int) -> None:
        header, rows = georgia_rows()
        self.templates = [as_gdelt2(header, row).split("\t") for row in rows]
        countries = country_codes()
        self.no_dyad = [
            columns
            for columns in self.templates
            if not (columns[7] in countries and columns[17] in countries and columns[7] != columns[17])
        ]
        signatures: dict[tuple[str, ...], int] = {}
        self.signature = [
            signatures.setdefault(_signature(columns), len(signatures)) for columns in self.templates
        ]
        self.signatures = len(signatures)
        rng = random.Random(seed)
        chosen = rng.sample(sorted(countries), COUNTRIES)
        pairs = [(a, b) for at, a in enumerate(chosen) for b in chosen[at + 1 :]]
        self.dyads = rng.sample(pairs, DYADS)
        self.dyad_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.5 for rank in range(DYADS)))
        """Cumulative: a few dyads are much busier than the rest."""
        self.days = [FIRST_DAY + timedelta(days=offset) for offset in range(DAYS)]


def _signature(columns: list[str]) -> tuple[str, ...]:
    """What sets a dyad row's event id apart besides its day and countries (see `with_countries`):
    its actors' codes past their country, their roles, and its event code."""
    signature = [columns[EVENT_CODE]]
    for code, _, country, types in ACTORS.values():
        suffix = _past_country(columns[code], columns[country])
        signature += [suffix, role_from_cameo(suffix, None, [columns[at] for at in types])]
    return tuple(signature)


def _past_country(code: str, country: str) -> str:
    return code[len(country) :] if country and code.startswith(country) else code


def with_countries(template: list[str], source: str, target: str) -> list[str]:
    """A real row's actors moved to two countries, their types (and so roles) kept."""
    columns = template.copy()
    for (code, name, country, _), new in zip(ACTORS.values(), (source, target), strict=True):
        columns[code] = new + _past_country(columns[code], columns[country])
        columns[country] = new
        columns[name] = columns[name] or new
    return columns


def build(path: Path, rows: Rows, count: int, dyad_share: Fraction) -> int:
    """Writes `count` rows in publication order, each a distinct event (no two dyad rows share
    a day, direction, actors and event code); returns how many are of two countries."""
    rng = random.Random(SEED)
    taken: dict[int, set[int]] = {}
    dyad_rows = 0
    block: list[str] = []
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            published = number * DAYS // count
            taken.pop(published - MAX_LAG - 1, None)  # no row reaches that far back any more
            lag = 0 if rng.random() < 0.8 else rng.randint(1, MAX_LAG)  # articles on days past
            day_index = max(published - lag, 0)
            day = rows.days[day_index]
            if (number + 1) * dyad_share // 1 > number * dyad_share // 1:
                columns = _dyad_row(rows, rng, taken.setdefault(day_index, set()))
                dyad_rows += 1
            else:
                columns = rows.no_dyad[rng.randrange(len(rows.no_dyad))].copy()
            row_id = str(FIRST_ID + number)
            columns[0], columns[1] = row_id, f"{day:%Y%m%d}"
            columns[2], columns[3], columns[4] = f"{day:%Y%m}", f"{day:%Y}", f"{day:%Y}.{day_index:04d}"
            columns[59] = f"{rows.days[published]:%Y%m%d}{number % 96 // 4:02d}{number % 4 * 15:02d}00"
            columns[60] = f"https://news.example/{row_id}"
            block.append("\t".join(columns))
            if len(block) == LINES_PER_WRITE:
                handle.write("\n".join(block) + "\n")
                block = []
        handle.write("".join(line + "\n" for line in block))
    return dyad_rows


def _dyad_row(rows: Rows, rng: random.Random, taken: set[int]) -> list[str]:
    """A real row (as often as its kind is) moved to a dyad, a new event on its day."""
    while True:
        template_at = rng.randrange(len(rows.templates))
        dyad_at = bisect.bisect(rows.dyad_weights, rng.random() * rows.dyad_weights[-1])
        flipped = rng.random() < 0.5
        key = (dyad_at * 2 + flipped) * rows.signatures + rows.signature[template_at]
        if key not in taken:
            taken.add(key)
            source, target = rows.dyads[dyad_at][:: -1 if flipped else 1]
            return with_countries(rows.templates[template_at], source, target)


def parse_only(path: Path) -> tuple[float, int]:
    """The best of PARSES runs: a few seconds each, and the one most sensitive to the load."""
    timings = []
    for _ in range(PARSES):
        started = time.perf_counter()
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, block_size=1 << 22),
            parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pa_csv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(61)}),
        )
        rows = sum(batch.num_rows for batch in reader)
        timings.append(time.perf_counter() - started)
    return min(timings), rows


def backtest(path: Path, *flags: str) -> tuple[float, float]:
    """Seconds, and the peak resident set of the command and the parts it forks (`--jobs`): the
    sum of their VmHWMs, read every RSS_POLL_SECONDS while they run (each process's own peak, so
    never under the peak of their sum). Its rusage would not do: a child's maximum counts the
    pages of the parent it was forked from, and this process holds pyarrow's buffers and the
    core's states by then."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(
            [str(CRISISMON), "backtest", "--format", "gdelt", str(path), "--json", *flags],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        peaks: dict[int, float] = {}
        while child.poll() is None:
            with contextlib.suppress(OSError):  # it ended between the two calls
                for pid in (child.pid, *children_of(child.pid)):
                    peaks[pid] = max(peaks.get(pid, 0.0), peak_rss_mb(pid))
            time.sleep(RSS_POLL_SECONDS)
        peak_mb = sum(peaks.values())
        elapsed = time.perf_counter() - started
        if child.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"backtest failed: {errors.read().decode(errors='replace')[-2000:]}")
    return elapsed, peak_mb


def core_alone(path: Path) -> float:
    """Seconds in `Engine.process` over the file's records in play order, read as the backtest
    reads them (its garbage collector kept the same way) but not timed."""
    engine, spent = Engine(EngineConfig()), 0.0
    for item in frozen_as_played(read_in_play_order([path], "gdelt")):
        started = time.perf_counter()
        engine.process(item.record)
        spent += time.perf_counter() - started
    return spent


def measure(row_count: int = ROWS) -> list[CaseRun]:
    """Both files built, parsed, backtested and played through the core alone, one at a time
    (only one is on disk at once); each prints its details as it ends."""
    rows, runs = Rows(SEED), []
    with tempfile.TemporaryDirectory(prefix="crisismon-bench-") as folder:
        for case in CASES:
            path = Path(folder) / f"{case.name}.export.CSV"
            started = time.perf_counter()
            dyad_rows = build(path, rows, row_count, case.dyad_share)
            built = time.perf_counter() - started
            print(
                f"{case.name}: {row_count:,} rows, {dyad_rows:,} of two countries ({DYADS} dyads,"
                f" {DAYS} days), {path.stat().st_size / 1e6:,.0f} MB (built in {built:.1f} s)"
            )
            parse, parsed = parse_only(path)
            run_seconds, peak_mb = backtest(path)
            one_process_seconds, one_process_peak_mb = backtest(path, "--jobs", "1")
            core_seconds = core_alone(path)
            run = CaseRun(
                case,
                row_count,
                dyad_rows,
                parse,
                run_seconds,
                peak_mb,
                core_seconds,
                JOBS,
                one_process_seconds,
                one_process_peak_mb,
            )
            path.unlink()
            print(f"  pyarrow parse only:  {parse:6.2f} s ({parsed / parse:,.0f} rows/s)")
            rate = row_count / run_seconds
            print(f"  crisismon backtest:  {run_seconds:6.2f} s ({rate:,.0f} rows/s, {JOBS} processes)")
            print(f"  in one process:      {one_process_seconds:6.2f} s, {one_process_peak_mb:,.0f} MB")
            print(f"  backtest/parse-only: {run.ratio:6.2f}x (target <= {case.ratio_target:g}x)")
            print(f"  peak RSS:            {peak_mb:6.0f} MB (target <= {MEMORY_TARGET_MB} MB)")
            print(
                f"  the core alone:      {run.core_seconds:6.2f} s ({run.core_seconds / parse:.1f}x"
                f" parse only, {run.core_microseconds:.0f} us per two-country event)"
            )
            runs.append(run)
    return runs


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
