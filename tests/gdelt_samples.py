"""GDELT 2.0 rows made from the real GDELT 1.0 sample, for reader tests and the benchmark.

`tests/data/gdelt1_georgia_jan2012.csv` is real GDELT 1.0 (a CSV with a header); raw 2.0
exports are 61 tab-separated columns without one. `as_gdelt2` lays each real row out the
2.0 way (the three ADM2 columns 2.0 added are empty, DATEADDED gains a time, SOURCEURL is
filled in), so the 2.0 reader is tested on real event codes, actors and scores.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

GEORGIA_CSV = Path(__file__).parent / "data" / "gdelt1_georgia_jan2012.csv"
ICEWS_SAMPLE = Path(__file__).parent / "data" / "icews_events.2018.sample.tab"
_ADM1 = "ADM1Code"


def georgia_rows() -> tuple[list[str], list[list[str]]]:
    with GEORGIA_CSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def as_gdelt2(header: list[str], row: list[str], shift: timedelta = timedelta(0), id_offset: int = 0) -> str:
    """One GDELT 1.0 CSV row as a GDELT 2.0 export line, its dates moved by `shift`."""
    values = {name: ("" if value == "NA" else value) for name, value in zip(header, row, strict=True)}
    day = datetime.strptime(values["SQLDATE"], "%Y%m%d") + shift
    values["GLOBALEVENTID"] = str(int(values["GLOBALEVENTID"]) + id_offset)
    values["SQLDATE"] = f"{day:%Y%m%d}"
    values["MonthYear"], values["Year"] = f"{day:%Y%m}", f"{day:%Y}"
    columns: list[str] = []
    for name in header[:56]:
        columns.append(values[name])
        if name.endswith(_ADM1):
            columns.append("")  # the ADM2 code 2.0 added after each ADM1 code
    columns.append(f"{day:%Y%m%d}120000")
    columns.append(f"https://news.example/{values['GLOBALEVENTID']}")
    return "\t".join(columns)


def gdelt2_lines(repeats: int = 1, shift_days: int = 31) -> Iterator[str]:
    """The real rows `repeats` times, each copy `shift_days` later with fresh event ids."""
    header, rows = georgia_rows()
    for copy in range(repeats):
        shift = timedelta(days=copy * shift_days)
        for row in rows:
            yield as_gdelt2(header, row, shift, id_offset=copy * 10_000_000)
