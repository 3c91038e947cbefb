"""`make bench`: `crisismon backtest` on a large GDELT 2.0 file, next to pyarrow parsing it.

The file repeats the real GDELT rows of tests/data (laid out as 2.0 exports), each copy a
month later with fresh ids, to ROWS rows. pyarrow reads the same file as tab-separated text
(all 61 columns as strings, nothing else): that is the floor any reader of it pays. The
backtest runs as the installed command does, with --json to /dev/null; its peak memory is
the child's maximum resident set size. Prints rows per second of each, the ratio of the
times, and the peak. Targets: within 2x of parse-only, and under 500 MB whatever the size.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from pyarrow import csv as pa_csv

from tests.gdelt_samples import gdelt2_lines

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROWS_PER_COPY = 4_324
CRISISMON = Path(sys.executable).parent / "crisismon"


def build(path: Path, rows: int) -> int:
    copies = -(-rows // ROWS_PER_COPY)
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in gdelt2_lines(repeats=copies):
            handle.write(line + "\n")
            written += 1
    return written


def parse_only(path: Path) -> float:
    started = time.perf_counter()
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(autogenerate_column_names=True, block_size=1 << 22),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pa_csv.ConvertOptions(column_types={f"f{i}": pa.string() for i in range(61)}),
    )
    rows = sum(batch.num_rows for batch in reader)
    elapsed = time.perf_counter() - started
    print(f"  pyarrow parsed {rows:,} rows")
    return elapsed


def backtest(path: Path) -> tuple[float, float]:
    started = time.perf_counter()
    run = subprocess.run(
        [str(CRISISMON), "backtest", "--format", "gdelt", str(path), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"backtest failed: {run.stderr}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mb


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crisismon-bench-") as folder:
        path = Path(folder) / "gdelt2.export.CSV"
        rows = build(path, ROWS)
        size_mb = path.stat().st_size / 1e6
        print(f"GDELT 2.0 file: {rows:,} rows, {size_mb:,.0f} MB")
        parse = parse_only(path)
        run, peak_mb = backtest(path)
    print(f"  parse only (pyarrow): {rows / parse:,.0f} rows/s ({parse:.2f} s)")
    print(f"  crisismon backtest:   {rows / run:,.0f} rows/s ({run:.2f} s), peak memory {peak_mb:,.0f} MB")
    print(f"  backtest / parse-only time: {run / parse:.2f}x (target within 2x; memory target < 500 MB)")


if __name__ == "__main__":
    main()
