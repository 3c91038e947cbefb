"""GDELT event exports: 2.0 (61 tab-separated columns), 1.0 (57 or 58), or CSV with a header.

Raw exports are tab-separated with no quoting, so a row is one `split`; that is what keeps a
multi-gigabyte backtest near the speed of a columnar parser. The CSV form (a header row with
GDELT's column names, quoted values, `NA` for nulls) goes through the csv module.

GDELT writes one row per article that reports an event, so one real event comes in many
rows. With `repeats: merge` (the default) rows with the same day, actors and event code
share one event id and the play order merges them into one event whose weight adds up their
mentions (see `weight_of`); with `rows`, every row is its own event.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from pydantic import ValidationError

from replay.readers.base import (
    BadRow,
    Located,
    NoDyadRows,
    ReaderOptions,
    ReadItem,
    SourceLine,
    blocks,
    describe,
    text_of,
)
from schemas.cameo import cameo_codes
from schemas.countries import country_codes
from schemas.events import CrisisEvent, TimePrecision

FIELDS = (
    "GLOBALEVENTID",
    "SQLDATE",
    "Actor1Code",
    "Actor1Name",
    "Actor1CountryCode",
    "Actor2Code",
    "Actor2Name",
    "Actor2CountryCode",
    "EventCode",
    "GoldsteinScale",
    "NumSources",
    "SOURCEURL",
)
_FIRST_COLUMNS = {  # the same positions in 1.0 and 2.0 exports
    "GLOBALEVENTID": 0,
    "SQLDATE": 1,
    "Actor1Code": 5,
    "Actor1Name": 6,
    "Actor1CountryCode": 7,
    "Actor2Code": 15,
    "Actor2Name": 16,
    "Actor2CountryCode": 17,
    "EventCode": 26,
    "GoldsteinScale": 30,
    "NumSources": 32,
}
VERSION_BY_COLUMNS = {61: "GDELT 2.0", 58: "GDELT 1.0", 57: "GDELT 1.0"}
_URL_COLUMN = {61: 60, 58: 57}
_ACTOR_CODE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_NULLS = ("", "NA")


@dataclass(frozen=True)
class Layout:
    """Where each field is in a row of one file."""

    name: str
    columns: int
    index: dict[str, int]

    @classmethod
    def raw(cls, columns: int) -> Layout:
        url = _URL_COLUMN.get(columns)
        index = _FIRST_COLUMNS | ({"SOURCEURL": url} if url is not None else {})
        return cls(VERSION_BY_COLUMNS[columns], columns, index)

    @classmethod
    def from_header(cls, header: list[str]) -> Layout | None:
        positions = {name.strip(): at for at, name in enumerate(header)}
        missing = [name for name in FIELDS[:-1] if name not in positions]
        if missing:
            return None
        index = {name: positions[name] for name in FIELDS if name in positions}
        return cls("GDELT CSV", len(header), index)


def is_header(first_line: bytes) -> bool:
    return b"GLOBALEVENTID" in first_line[:200]


def raw_columns(first_line: bytes) -> int:
    return first_line.count(b"\t") + 1


def read_gdelt(handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    """Every row of a GDELT export; the layout is recognised from the first line."""
    first = handle.readline(4096)
    handle.seek(0)
    if is_header(first):
        yield from _read_csv(handle, name, options)
    else:
        yield from _read_raw(handle, name, options)


def _read_raw(handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    """Rows are split as bytes and their actor countries looked at first: the rows of no dyad
    (most of them) are only counted, never decoded."""
    countries = {code.encode() for code in country_codes()}
    first_country, second_country = _FIRST_COLUMNS["Actor1CountryCode"], _FIRST_COLUMNS["Actor2CountryCode"]
    layouts = {columns: Layout.raw(columns) for columns in VERSION_BY_COLUMNS}
    for block in blocks(handle, name):
        if isinstance(block, BadRow):
            yield block
            continue
        first_number, chunk = block
        no_dyad = 0
        for number, raw in enumerate(chunk, start=first_number):
            fields = raw.split(b"\t")
            layout = layouts.get(len(fields))
            if layout is None:
                if raw.strip():
                    yield _wrong_columns(len(fields), SourceLine(name, number), raw)
                continue
            first, second = fields[first_country], fields[second_country]
            if first == second or first not in countries or second not in countries:
                no_dyad += 1
                continue
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            yield row_to_item(text.split("\t"), layout, SourceLine(name, number), text, options)
        if no_dyad:
            yield NoDyadRows(no_dyad)


def _wrong_columns(columns: int, where: SourceLine, raw: bytes) -> BadRow:
    reason = f"{columns} tab-separated columns; a GDELT export row has 57, 58 or 61"
    return BadRow(where, reason, text_of(raw))


def _read_csv(handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
    try:
        yield from _csv_rows(csv.reader(text), name, options)
    finally:
        text.detach()  # the stream stays open for its owner


def _csv_rows(rows: Any, name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    layout: Layout | None = None
    while True:
        try:
            fields = next(rows)
        except StopIteration:
            return
        except csv.Error as error:
            yield BadRow(SourceLine(name, rows.line_num), f"not CSV: {error}", "")
            continue
        where = SourceLine(name, rows.line_num)
        if layout is None:
            layout = Layout.from_header(fields)
            if layout is None:
                yield BadRow(where, "the header lacks GDELT's column names", ",".join(fields)[:500])
                return
            continue
        if len(fields) != layout.columns:
            yield BadRow(where, f"{len(fields)} columns; the header has {layout.columns}", ",".join(fields))
            continue
        yield row_to_item(fields, layout, where, ",".join(fields), options)


class _Row:
    """A row's fields by GDELT column name; nulls (empty or `NA`) read as ''."""

    __slots__ = ("fields", "layout")

    def __init__(self, fields: list[str], layout: Layout) -> None:
        self.fields, self.layout = fields, layout

    def __getitem__(self, field: str) -> str:
        at = self.layout.index.get(field)
        value = self.fields[at].strip() if at is not None else ""
        return "" if value in _NULLS else value


def row_to_item(
    fields: list[str], layout: Layout, where: SourceLine, text: str, options: ReaderOptions
) -> ReadItem:
    """One row as an event, NoDyadRows(1), or a BadRow naming the first field that is wrong."""
    row = _Row(fields, layout)
    countries = country_codes()
    first, second = row["Actor1CountryCode"], row["Actor2CountryCode"]
    if first == second or first not in countries or second not in countries:
        return NoDyadRows(1)
    try:
        return Located(
            where,
            _event(row, where, text, options),
            mergeable=options.repeats == "merge",
        )
    except (ValidationError, ValueError) as error:
        return BadRow(where, describe(error), text)


def _event(row: _Row, where: SourceLine, text: str, options: ReaderOptions) -> CrisisEvent:
    day = _day(row["SQLDATE"])
    code = row["EventCode"]
    if code not in cameo_codes():
        raise ValueError(f"EventCode: unknown CAMEO code {code!r}")
    actors = []
    for side in ("Actor1", "Actor2"):
        country = row[f"{side}CountryCode"]
        actor_code = row[f"{side}Code"] or country
        if not _ACTOR_CODE.match(actor_code):
            raise ValueError(f"{side}Code: not a CAMEO actor code: {actor_code[:40]!r}")
        actor_name = row[f"{side}Name"] or actor_code
        actors.append({"code": actor_code, "name": actor_name[:200], "country": country})
    row_id = row["GLOBALEVENTID"]
    if not row_id.isdigit():
        raise ValueError(f"GLOBALEVENTID: not a number: {row_id[:40]!r}")
    event_id = (
        f"gdelt-{day:%Y%m%d}-{actors[0]['code']}-{actors[1]['code']}-{code}"
        if options.repeats == "merge"
        else f"gdelt-{row_id}"
    )
    description = cameo_codes()[code].description
    return CrisisEvent.model_validate(
        {
            "event_id": event_id,
            "event_time": day,
            "time_precision": TimePrecision.DAY,
            "source": actors[0],
            "target": actors[1],
            "cameo_code": code,
            "goldstein": _number(row["GoldsteinScale"], "GoldsteinScale") if row["GoldsteinScale"] else None,
            "weight": weight_of(_count(row["NumSources"], "NumSources"), options),
            "summary": f"{actors[0]['name']} → {actors[1]['name']}: {description}"[:1000],
            "provenance": {
                "document": (row["SOURCEURL"] or where.path)[:500],
                "quote": text[:2000],
                "coded_by": f"{row.layout.name} (machine-coded), GLOBALEVENTID {row_id}, {where}"[:200],
            },
        }
    )


def weight_of(sources: int, options: ReaderOptions) -> float:
    """A row's share of one confirmed event: its sources / full_weight_sources.

    A merged event adds its rows' shares up to 1, so an event one outlet reported weighs
    little (machine coding errs, often), one many outlets reported as much as a hand-coded
    event. Sources, not mentions: one article repeated many times is still one witness.
    """
    return min(1.0, max(sources, 1) / options.full_weight_sources)


@lru_cache(maxsize=4096)
def _day(value: str) -> datetime:
    """Cached: a file's rows fall on few days."""
    try:
        return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"SQLDATE: not a YYYYMMDD date: {value[:40]!r}") from None


def _number(value: str, field: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{field}: not a number: {value[:40]!r}") from None


def _count(value: str, field: str) -> int:
    if not value:
        return 1
    if not value.isdigit():
        raise ValueError(f"{field}: not a count: {value[:40]!r}")
    return int(value)
