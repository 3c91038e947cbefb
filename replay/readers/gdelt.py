"""GDELT event exports: raw (tab-separated), or CSV (BigQuery's, R's) with or without a header.

The layouts, told apart by the first line (`GdeltReader.read`):

- Raw exports, as GDELT publishes them: no header, 61 tab-separated columns (2.0), 57 or 58
  (1.0 daily files), no quoting, nulls left empty. A row is one `split`, and a row of no dyad
  is counted from its bytes, never decoded: that is what keeps a multi-gigabyte backtest near
  the speed of a columnar parser.
- CSV with a header row naming GDELT's columns (`GLOBALEVENTID,SQLDATE,...`, quoted or not, in
  any order): the columns are found by name (`Layout.from_header`). R's `write.csv` and
  BigQuery's exports with a header look like this.
- CSV without a header, as BigQuery exports the events tables (`gdelt-bq.full.events`: 1.0,
  58 columns; `gdelt-bq.gdeltv2.events`: 2.0, 61 columns): the raw export's columns in the raw
  export's order, comma-separated, fields quoted (every one, or only where needed). A first
  line whose first field is a number and that the csv module reads as 57, 58 or 61 fields is
  such a row (`is_headerless_csv`); each row's layout is then the raw one of its column count.

Both CSV forms go through the csv module (quoted fields hold commas: "Beijing, China") and
share `_csv_rows`. In every layout a null may be spelt empty, `NA` (R) or `NULL` (BigQuery's
clients): see NULLS. An export that typed the CAMEO code columns as numbers (the real BigQuery
sample in tests/data did) lost the leading zero of roots 01..09; `_event_code` restores it.

GDELT writes one row per article that reports an event, so one real event comes in many
rows. With `repeats: merge` (the default) rows with the same day, actors, actor roles and
event code share one event id and the play order merges them into one event whose weight adds
up their mentions (see `weight_of`); with `rows`, every row is its own event.

Each actor's role (state or non-state, see schemas/actors.py) comes from its type codes
(Actor1Type1Code..Actor1Type3Code, the same for Actor2), or from its actor code when the row
gives no types.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import IO, Any, NamedTuple

from replay.readers.base import (
    BadField,
    BadRow,
    NoDyadRows,
    Pending,
    ReaderOptions,
    ReadItem,
    SourceLine,
    actor,
    blocks,
    is_blank,
    text_of,
)
from schemas.actors import ActorRole, role_from_cameo
from schemas.cameo import cameo_codes
from schemas.countries import country_codes
from schemas.events import CrisisEvent, TimePrecision, Witnesses, dyad_of, witnessed_weight

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
)
"""What the reader uses; a CSV header must name all of them."""
OPTIONAL_FIELDS = ("EventRootCode", "SOURCEURL")
"""What the reader uses when a file has it (read as null when not): GDELT 1.0 files of 57
columns have no SOURCEURL, and a CSV header may lack either (see `_event_code` for the root)."""
ACTOR_FIELDS = {
    side: (f"{side}Code", f"{side}CountryCode", f"{side}Type1Code", f"{side}Type2Code", f"{side}Type3Code")
    for side in ("Actor1", "Actor2")
}
"""What an actor's role is read from (see `Layout.roles`); a CSV header may lack the types."""
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
    "EventRootCode": 28,
    "GoldsteinScale": 30,
    "NumSources": 32,
}
_TYPE_COLUMNS = {  # the same positions in 1.0 and 2.0 exports (GDELT Event Codebook 2.0)
    "Actor1Type1Code": 12,
    "Actor1Type2Code": 13,
    "Actor1Type3Code": 14,
    "Actor2Type1Code": 22,
    "Actor2Type2Code": 23,
    "Actor2Type3Code": 24,
}
VERSION_BY_COLUMNS = {61: "GDELT 2.0", 58: "GDELT 1.0", 57: "GDELT 1.0"}
_URL_COLUMN = {61: 60, 58: 57}
RAW_COLUMNS = "a GDELT export row has 57, 58 or 61"
"""What a row without a header is checked against, for the reason of a row of another width."""
_ACTOR_CODE = re.compile(r"^[A-Za-z0-9]{1,32}$")
NULLS = frozenset({"", "NA", "NULL"})
"""How exports spell a null field: raw exports leave it empty, R writes `NA`, BigQuery's
clients `NULL`. No field the reader uses has any of them as a real value."""
_HEADER = re.compile(rb'(?:^|[,\t])"?GLOBALEVENTID"?(?:[,\t\r\n]|$)')
"""GDELT's first column name as a whole field, not a word inside one: a native line's
provenance says "GLOBALEVENTID 83784238", which is no header."""
_CSV_ROW_START = re.compile(rb'^(?:"[0-9]{1,40}"|[0-9]{1,40}),')
"""A CSV export's row: a GLOBALEVENTID, quoted or not, then a comma (a raw export's has a tab)."""

_Pick = Callable[[list[str]], Any]


@dataclass(frozen=True)
class Layout:
    """Where each field is in a row of one file."""

    name: str
    columns: int
    index: dict[str, int]
    actors: tuple[tuple[int, ...], tuple[int, ...]]
    """Per actor, where its ACTOR_FIELDS are: code, country, then the type codes the file has."""
    _pick: _Pick = field(init=False, repr=False, compare=False)
    _actor_picks: tuple[_Pick, _Pick] = field(init=False, repr=False, compare=False)
    _country_pick: _Pick = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Itemgetters take a row's fields at once: `values` and `roles` run once per dyad row,
        `dyad` once per row."""
        object.__setattr__(self, "_pick", itemgetter(*self.index.values()))
        source, target = self.actors
        object.__setattr__(self, "_actor_picks", (itemgetter(*source), itemgetter(*target)))
        countries = itemgetter(self.index["Actor1CountryCode"], self.index["Actor2CountryCode"])
        object.__setattr__(self, "_country_pick", countries)

    @classmethod
    def raw(cls, columns: int) -> Layout:
        url = _URL_COLUMN.get(columns)
        index = _FIRST_COLUMNS | ({"SOURCEURL": url} if url is not None else {})
        where = _FIRST_COLUMNS | _TYPE_COLUMNS
        source, target = (tuple(where[name] for name in ACTOR_FIELDS[side]) for side in ACTOR_FIELDS)
        return cls(VERSION_BY_COLUMNS[columns], columns, index, (source, target))

    def dyad(self, fields: list[str]) -> str | None:
        """The row's dyad, when its actors are of two different countries: the one check a CSV
        row of no dyad (most rows of a whole-table export) gets before it is counted."""
        first, second = (code.strip() for code in self._country_pick(fields))
        countries = country_codes()
        return dyad_of(first, second) if first in countries and second in countries else None

    def values(self, fields: list[str]) -> dict[str, str]:
        """The fields the reader uses, by name; nulls (any of NULLS) read as '', `layout` is
        the layout's name."""
        values = {
            name: "" if (value := raw.strip()) in NULLS else value
            for name, raw in zip(self.index, self._pick(fields), strict=True)
        }
        for name in OPTIONAL_FIELDS:
            values.setdefault(name, "")
        values["layout"] = self.name
        return values

    def roles(self, fields: list[str]) -> tuple[ActorRole, ActorRole]:
        """Both actors' roles, from their type codes, or from their actor codes without types."""
        source, target = self._actor_picks
        return _role(source(fields)), _role(target(fields))

    @classmethod
    def from_header(cls, header: list[str]) -> Layout | None:
        positions = {name.strip(): at for at, name in enumerate(header)}
        missing = [name for name in FIELDS if name not in positions]
        if missing:
            return None
        index = {name: positions[name] for name in (*FIELDS, *OPTIONAL_FIELDS) if name in positions}
        source, target = (
            tuple(positions[name] for name in ACTOR_FIELDS[side] if name in positions)
            for side in ACTOR_FIELDS
        )
        return cls("GDELT CSV", len(header), index, (source, target))


@lru_cache(maxsize=8192)
def _role(fields: tuple[str, ...]) -> ActorRole:
    """An actor's role from its raw code, country and type codes. Cached: a file's actors repeat
    (USAGOV, RUSMIL, ...), so most rows cost one lookup."""
    code, country, *types = ("" if (value := raw.strip()) in NULLS else value for raw in fields)
    return role_from_cameo(code, country, types)


RAW_LAYOUTS = {columns: Layout.raw(columns) for columns in VERSION_BY_COLUMNS}
"""The layout of a row without a header, by its column count (raw and headerless CSV exports)."""
NO_DYAD_BATCH = 10_000
"""CSV rows of no dyad are reported in counts of this many, not one item per row."""


class GdeltRow(NamedTuple):
    """A checked GDELT row's fields, as its event needs them (see `Pending`)."""

    source_code: str
    source_name: str
    source_country: str
    source_role: ActorRole
    target_code: str
    target_name: str
    target_country: str
    target_role: ActorRole
    cameo_code: str
    goldstein: float | None
    document: str
    quote: str
    coded_by: str

    @property
    def dyad(self) -> str | None:
        return dyad_of(self.source_country, self.target_country)

    def event(self, event_id: str, event_time: datetime, witnesses: Witnesses) -> CrisisEvent:
        """The row's event, standing for the rows `witnesses` names; `_pending` checked every field."""
        description = cameo_codes()[self.cameo_code].description
        return CrisisEvent.model_validate(
            {
                "event_id": event_id,
                "event_time": event_time,
                "time_precision": TimePrecision.DAY,
                "source": actor(self.source_code, self.source_name, self.source_country, self.source_role),
                "target": actor(self.target_code, self.target_name, self.target_country, self.target_role),
                "cameo_code": self.cameo_code,
                "goldstein": self.goldstein,
                "weight": witnessed_weight(witnesses),
                "witnesses": witnesses,
                "summary": f"{self.source_name} → {self.target_name}: {description}"[:1000],
                "provenance": {"document": self.document, "quote": self.quote, "coded_by": self.coded_by},
            }
        )


def is_header(first_line: bytes) -> bool:
    """A CSV header: GDELT's GLOBALEVENTID as one of its fields."""
    return _HEADER.search(first_line) is not None


def starts_like_csv_row(first_line: bytes) -> bool:
    """A row of a CSV export rather than of a raw one: which parser the rows need."""
    return _CSV_ROW_START.match(first_line) is not None


def is_headerless_csv(first_line: bytes) -> bool:
    """A row of a CSV export without a header (BigQuery's): it starts like one and the csv
    module reads it as a GDELT export's 57, 58 or 61 fields. A first line cut at 4 KiB still
    counts them all: it is cut in its last field, SOURCEURL (the others are short), and the csv
    module reads an unclosed quote to the end."""
    if not starts_like_csv_row(first_line):
        return False
    text = first_line.decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        fields = next(csv.reader([text]))
    except csv.Error:
        return False
    return len(fields) in VERSION_BY_COLUMNS


class GdeltReader:
    """GDELT exports, raw or CSV; the layout is recognised from the first line."""

    name = "gdelt"
    description = "a GDELT export"

    def sniff(self, first_line: bytes) -> bool:
        """A header with GDELT's column names, a raw export's column count, or a CSV row of a
        GDELT export's width that starts with a number (looser tests: registered after the
        formats that have a header, and a native line starts with `{`)."""
        return (
            is_header(first_line)
            or first_line.count(b"\t") + 1 in VERSION_BY_COLUMNS
            or is_headerless_csv(first_line)
        )

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
        """The first line chooses the parser. A CSV export whose first row has the wrong width
        still goes to the csv module (it starts like a CSV row), so that only that row is bad."""
        start = handle.tell()
        first = handle.readline(4096)
        handle.seek(start)
        if is_header(first):
            yield from _read_csv(handle, name, options, has_header=True)
        elif starts_like_csv_row(first):
            yield from _read_csv(handle, name, options, has_header=False)
        else:
            yield from _read_raw(handle, name, options)


def _read_raw(handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
    """Rows are split as bytes and their actor countries looked at first: the rows of no dyad
    (most of them) are only counted, never decoded."""
    countries = {code.encode() for code in country_codes()}
    first_country, second_country = _FIRST_COLUMNS["Actor1CountryCode"], _FIRST_COLUMNS["Actor2CountryCode"]
    part = options.part
    for block in blocks(handle, name):
        if isinstance(block, BadRow):
            yield block
            continue
        first_number, chunk = block
        no_dyad = 0
        for number, raw in enumerate(chunk, start=first_number):
            columns = raw.count(b"\t") + 1
            layout = RAW_LAYOUTS.get(columns)
            if layout is None:
                if not is_blank(raw):
                    yield _wrong_columns(columns, SourceLine(name, number), raw)
                continue
            leading = raw.split(b"\t", second_country + 1)  # the actors' countries, not the rest
            first, second = leading[first_country], leading[second_country]
            if first == second or first not in countries or second not in countries:
                no_dyad += 1
                continue
            if part.count > 1 and not part.owns(dyad_of(first.decode(), second.decode())):
                continue  # another part's dyad: that part reads the row
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            yield row_to_item(text.split("\t"), layout, SourceLine(name, number), text, options)
        if no_dyad:
            yield NoDyadRows(no_dyad)


def _wrong_columns(columns: int, where: SourceLine, raw: bytes) -> BadRow:
    reason = f"{columns} tab-separated columns; {RAW_COLUMNS}"
    return BadRow(where, "columns", reason, text_of(raw))


def _read_csv(handle: IO[bytes], name: str, options: ReaderOptions, has_header: bool) -> Iterator[ReadItem]:
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
    try:
        yield from _csv_rows(csv.reader(text), name, options, has_header)
    finally:
        text.detach()  # the stream stays open for its owner


def _csv_rows(rows: Any, name: str, options: ReaderOptions, has_header: bool) -> Iterator[ReadItem]:
    """The rows of a CSV export: with a header, in its layout; without one, in the raw layout of
    each row's column count. A row of no dyad costs its parse and two lookups (`Layout.dyad`); a
    blank line is no row."""
    layouts: dict[int, Layout] | None = None if has_header else RAW_LAYOUTS
    expected = RAW_COLUMNS
    no_dyad = 0
    while True:
        try:
            fields = next(rows)
        except StopIteration:
            break
        except csv.Error as error:
            yield BadRow(SourceLine(name, rows.line_num), "CSV", f"not CSV: {error}", "")
            continue
        if layouts is None:
            header = Layout.from_header(fields)
            if header is None:
                reason = "the header lacks GDELT's column names"
                yield BadRow(SourceLine(name, rows.line_num), "header", reason, ",".join(fields)[:500])
                return
            layouts, expected = {header.columns: header}, f"the header has {header.columns}"
            continue
        layout = layouts.get(len(fields))
        if layout is None:
            if fields:
                reason = f"{len(fields)} columns; {expected}"
                yield BadRow(SourceLine(name, rows.line_num), "columns", reason, ",".join(fields))
        elif (dyad := layout.dyad(fields)) is None:
            no_dyad += 1
            if no_dyad == NO_DYAD_BATCH:
                yield NoDyadRows(no_dyad)
                no_dyad = 0
        elif not options.part.owns(dyad):
            continue  # another part's dyad: that part reads the row
        else:
            yield row_to_item(fields, layout, SourceLine(name, rows.line_num), ",".join(fields), options)
    if no_dyad:
        yield NoDyadRows(no_dyad)


def row_to_item(
    fields: list[str], layout: Layout, where: SourceLine, text: str, options: ReaderOptions
) -> Pending | BadRow:
    """One row of a dyad (its caller checked the countries) as a Pending event, or a BadRow
    naming the first wrong field, and the dyad."""
    row = layout.values(fields)
    try:
        return _pending(row, layout.roles(fields), where, text, options)
    except BadField as error:
        return BadRow(where, error.category, str(error), text, layout.dyad(fields))


def _pending(
    row: dict[str, str],
    roles: tuple[ActorRole, ActorRole],
    where: SourceLine,
    text: str,
    options: ReaderOptions,
) -> Pending:
    """Every check a row can fail, so that building its event later cannot."""
    day = _day(row["SQLDATE"])
    code = _event_code(row["EventCode"], row["EventRootCode"])
    source_code, target_code = _actor_code(row, "Actor1"), _actor_code(row, "Actor2")
    row_id = row["GLOBALEVENTID"]
    if not row_id.isdigit() or len(row_id) > 40:
        raise BadField("GLOBALEVENTID", "not a number", row_id)
    goldstein = _goldstein(row["GoldsteinScale"])
    source_role, target_role = roles
    merge = options.repeats == "merge"
    suffix = roles_suffix(source_role, target_role)
    merged_id = f"gdelt-{row['SQLDATE']}-{source_code}-{target_code}-{code}{suffix}"
    return Pending(
        event_time=day,
        event_id=merged_id if merge else f"gdelt-{row_id}",
        row_id=row_id,
        where=where,
        weight=weight_of(_sources(row["NumSources"]), options),
        row=GdeltRow(
            source_code=source_code,
            source_name=(row["Actor1Name"] or source_code)[:200],
            source_country=row["Actor1CountryCode"],
            source_role=source_role,
            target_code=target_code,
            target_name=(row["Actor2Name"] or target_code)[:200],
            target_country=row["Actor2CountryCode"],
            target_role=target_role,
            cameo_code=code,
            goldstein=goldstein,
            document=(row["SOURCEURL"] or where.path)[:500],
            quote=text[:2000],
            coded_by=f"{row['layout']} (machine-coded), GLOBALEVENTID {row_id}, {where}"[:200],
        ),
    )


def _event_code(code: str, root: str) -> str:
    """The row's CAMEO code, with the leading zero restored that an export typing the codes as
    numbers dropped (BigQuery tables with INTEGER code columns): a code begins with its
    two-digit root, so a one-digit EventRootCode ("8") says EventCode "80" is 080, and "10"
    with root "1" is 010 (make a statement), not 10 (demand), nor "20" 20 (mass violence)."""
    lost_zero = len(root) == 1 and root != "0" and not code.startswith("0")
    restored = f"0{code}" if lost_zero else code
    if restored not in cameo_codes():
        raise BadField("EventCode", "unknown CAMEO code", code, category="CAMEO code")
    return restored


def _actor_code(row: dict[str, str], side: str) -> str:
    """The actor's CAMEO code, or its country's when the row gives none."""
    actor_code = row[f"{side}Code"] or row[f"{side}CountryCode"]
    if not _ACTOR_CODE.match(actor_code):
        raise BadField(f"{side}Code", "not a CAMEO actor code", actor_code, category="actor code")
    return actor_code


_MARKS = {ActorRole.STATE: "s", ActorRole.NON_STATE: "ns"}
_SUFFIXES = {
    (source, target): "" if source == target == ActorRole.STATE else f"-{_MARKS[source]}.{_MARKS[target]}"
    for source in ActorRole
    for target in ActorRole
}


def roles_suffix(source: ActorRole, target: ActorRole) -> str:
    """What a merged event id adds for its actors' roles: nothing for state to state (the ids
    merged events had before roles were read), else `-` and both roles, source first, as `s`
    or `ns` joined by `.` (`-ns.s`: a non-state source, a state target). Rows of one day,
    country pair and code whose roles differ (a citizens' brawl, a ministry's statement) are
    different events. Ids before the suffix end in a digit, so no suffixed id equals an
    unsuffixed one."""
    return _SUFFIXES[source, target]


def weight_of(sources: int, options: ReaderOptions) -> float:
    """A row's share of one confirmed event: its sources / full_weight_sources.

    A merged event adds its rows' shares up to 1, so an event one outlet reported weighs
    little (machine coding errs, often), one many outlets reported as much as a hand-coded
    event. Sources, not mentions: one article repeated many times is still one witness.
    """
    return min(1.0, max(sources, 1) / options.full_weight_sources)


@lru_cache(maxsize=4096)
def _day(value: str) -> datetime:
    """Cached: a file's rows fall on few days. Exactly YYYYMMDD (strptime alone takes '2012013')."""
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadField("SQLDATE", "not a YYYYMMDD date", value) from None


def _goldstein(value: str) -> float | None:
    """The row's GoldsteinScale; None when the row gives none."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadField("GoldsteinScale", "not a number", value, category="Goldstein") from None
    if not -10 <= number <= 10:  # NaN too
        raise BadField("GoldsteinScale", "not between -10 and 10", value, category="Goldstein")
    return number


def _sources(value: str) -> int:
    """The row's NumSources; 1 when the row gives none."""
    if not value:
        return 1
    if not value.isdecimal() or len(value) > 9:  # what int() takes ('²' is a digit, not decimal)
        raise BadField("NumSources", "not a count", value)
    return int(value)
