"""ICEWS event files: tab-separated, a 20-column header, country names rather than codes.

Like GDELT, ICEWS codes one real event once per story that reports it. Each row is one
witness (`weight_of(1)`), and with `repeats: merge` the rows of one day, country pair and
CAMEO code are one event (see gdelt.py). With `rows`, an event's id is its date and ICEWS
`Event ID` together (ICEWS repeats ids across days). The row has no text of the story, so
the verbatim quote kept is the row itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO

from replay.readers.base import (
    BadRow,
    NoDyadRows,
    Pending,
    ReaderOptions,
    ReadItem,
    SourceLine,
    lines,
    text_of,
)
from replay.readers.gdelt import weight_of
from schemas.cameo import cameo_codes
from schemas.countries import country_code
from schemas.events import CrisisEvent, TimePrecision
from schemas.validation import describe

COLUMNS = (
    "Event ID",
    "Event Date",
    "Source Name",
    "Source Sectors",
    "Source Country",
    "Event Text",
    "CAMEO Code",
    "Intensity",
    "Target Name",
    "Target Sectors",
    "Target Country",
    "Story ID",
    "Sentence Number",
    "Publisher",
    "City",
    "District",
    "Province",
    "Country",
    "Latitude",
    "Longitude",
)
_NULLS = ("", "NA")
_EVENT_ID = re.compile(r"^[0-9A-Za-z_-]{1,40}$")


def is_header(first_line: bytes) -> bool:
    return first_line.startswith(b"Event ID\t") and b"CAMEO Code" in first_line


def read_icews(handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    position: dict[str, int] | None = None
    for numbered in lines(handle, name):
        if isinstance(numbered, BadRow):
            yield numbered
            continue
        number, raw = numbered
        where = SourceLine(name, number)
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t")
        if position is None:
            header = {column: at for at, column in enumerate(fields)}
            if missing := [column for column in COLUMNS if column not in header]:
                yield BadRow(where, f"not an ICEWS header: no column {missing[0]!r}", text_of(raw)[:500])
                return
            position = header
            continue
        if len(fields) != len(position):
            yield BadRow(where, f"{len(fields)} columns; the header has {len(position)}", text_of(raw))
            continue
        row = {column: fields[position[column]].strip() for column in COLUMNS}
        try:
            yield _item(row, where, text, options)
        except ValueError as error:
            yield BadRow(where, describe(error), text_of(raw))


def _country(row: dict[str, str], column: str) -> str | None:
    name = row[column]
    if name in _NULLS:
        return None
    code = country_code(name)
    if code is None:
        raise ValueError(f"{column}: unknown country name {name[:60]!r}")
    return code


def _item(row: dict[str, str], where: SourceLine, text: str, options: ReaderOptions) -> ReadItem:
    """Every check a row can fail, so that building its event later cannot."""
    source, target = _country(row, "Source Country"), _country(row, "Target Country")
    if source is None or target is None or source == target:
        return NoDyadRows(1)
    try:
        day = datetime.strptime(row["Event Date"], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"Event Date: not a YYYY-MM-DD date: {row['Event Date'][:40]!r}") from None
    code = row["CAMEO Code"]
    if code not in cameo_codes():
        raise ValueError(f"CAMEO Code: unknown CAMEO code {code[:40]!r}")
    try:
        intensity = float(row["Intensity"])
    except ValueError:
        raise ValueError(f"Intensity: not a number: {row['Intensity'][:40]!r}") from None
    if not -10 <= intensity <= 10:
        raise ValueError(f"Intensity: not between -10 and 10: {row['Intensity'][:40]!r}")
    if not _EVENT_ID.match(row["Event ID"]):
        raise ValueError(f"Event ID: not an ICEWS id: {row['Event ID'][:40]!r}")
    merge = options.repeats == "merge"
    return Pending(
        event_time=day,
        event_id=f"icews-{day:%Y%m%d}-{source}-{target}-{code}"
        if merge
        else f"icews-{day:%Y%m%d}-{row['Event ID']}",
        row_id=f"{day:%Y%m%d}-{row['Event ID']}",
        where=where,
        weight=weight_of(1, options),
        values=(
            (row["Source Name"] or source)[:200],
            source,
            (row["Target Name"] or target)[:200],
            target,
            code,
            row["Intensity"],
            f"{row['Source Name']} → {row['Target Name']}: {row['Event Text']}"[:1000],
            f"{row['Publisher'] or 'ICEWS'}, story {row['Story ID']}, sentence {row['Sentence Number']}"[
                :500
            ],
            text[:2000],
            f"ICEWS (machine-coded), event {row['Event ID']}, {where}"[:200],
        ),
        build=build_event,
    )


def build_event(pending: Pending, weight: float) -> CrisisEvent:
    """The event of a checked row (see `_item`) at the weight its repeats add up to."""
    source_name, source, target_name, target, code, intensity, summary, document, quote, coded_by = (
        pending.values
    )
    return CrisisEvent.model_validate(
        {
            "event_id": pending.event_id,
            "event_time": pending.event_time,
            "time_precision": TimePrecision.DAY,
            "source": {"name": source_name, "country": source},
            "target": {"name": target_name, "country": target},
            "cameo_code": code,
            "goldstein": float(intensity),
            "weight": weight,
            "summary": summary,
            "provenance": {"document": document, "quote": quote, "coded_by": coded_by},
        }
    )
