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

from replay.readers.base import MAX_LINE_BYTES

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


def gdelt2_row(
    row_id: int, day: datetime, actors: tuple[str, str], code: str, goldstein: float, sources: int
) -> str:
    """One GDELT 2.0 export line with the fields the reader uses filled in."""
    columns = [""] * 61
    columns[0], columns[1] = str(row_id), f"{day:%Y%m%d}"
    columns[2], columns[3], columns[4] = f"{day:%Y%m}", f"{day:%Y}", f"{day:%Y}.5000"
    columns[5], columns[6], columns[7] = actors[0], actors[0], actors[0]
    columns[15], columns[16], columns[17] = actors[1], actors[1], actors[1]
    columns[25], columns[26], columns[27], columns[28] = "1", code, code[:3], code[:2]
    columns[29], columns[30], columns[31], columns[32], columns[33] = (
        "4",
        f"{goldstein}",
        f"{3 * sources}",
        f"{sources}",
        f"{2 * sources}",
    )
    columns[34] = "-5.0"
    columns[59], columns[60] = f"{day:%Y%m%d}120000", f"https://news.example/{row_id}"
    return "\t".join(columns)


def unseen_crisis_lines() -> Iterator[str]:
    """A GDELT 2.0 export of a crisis no file of the project holds: ARM-AZE, autumn 2020.

    Calm from August, fighting from 27 September (many rows, widely reported), a ceasefire
    signed on 10 November and calm after; beside it NOR-SWE, a calm dyad with GDELT's usual
    noise: now and then a row of armed force that one outlet reported.
    """
    start = datetime(2020, 8, 1)
    row_id = 900_000_000
    for offset in range(0, 150):
        day = start + timedelta(days=offset)
        rows: list[tuple[tuple[str, str], str, float, int]] = []
        if offset % 3 == 0:
            rows.append((("NOR", "SWE"), "036", 4.0, 2))
            rows.append((("SWE", "NOR"), "042", 1.9, 1))
        if offset % 11 == 5:
            rows.append((("NOR", "SWE"), "190", -10.0, 1))  # coding noise: one source
        if offset % 17 == 3:
            rows.append((("SWE", "NOR"), "112", -2.0, 2))
        fighting = datetime(2020, 9, 27) <= day < datetime(2020, 11, 10)
        if day < datetime(2020, 9, 27) and offset % 4 == 0:
            rows.append((("ARM", "AZE"), "040", 1.0, 3))
        if fighting:
            heavy = day < datetime(2020, 10, 20)
            for n in range(12 if heavy else 4):
                rows.append(((("ARM", "AZE"), ("AZE", "ARM"))[n % 2], ("190", "195", "111")[n % 3], -10.0, 4))
        if datetime(2020, 11, 10) <= day < datetime(2020, 11, 14):
            for n in range(6):
                rows.append(((("ARM", "AZE"), ("AZE", "ARM"))[n % 2], ("057", "0874", "046")[n % 3], 7.0, 5))
        if day >= datetime(2020, 11, 14) and offset % 5 == 0:
            rows.append((("AZE", "ARM"), "043", 2.8, 3))
        for actors, code, goldstein, sources in rows:
            row_id += 1
            yield gdelt2_row(row_id, day, actors, code, goldstein, sources)


def broken_gdelt2(path: Path) -> Path:
    """Real rows of one dyad (USA-RUS) with rows 2..7 broken in one way each."""
    good = [line for line in gdelt2_lines() if line.split("\t")[7] == "USA" and line.split("\t")[17] == "RUS"]
    base = good[0].split("\t")

    def broken(column: int, value: str) -> str:
        return "\t".join(value if at == column else field for at, field in enumerate(base))

    lines = [
        good[0],
        "too\tfew\tcolumns",
        broken(1, "2012-01-03"),
        broken(26, "999"),
        broken(30, "very bad"),
        broken(32, "many"),
        "x" * (MAX_LINE_BYTES + 10),
        *good[1:],
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
