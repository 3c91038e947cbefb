"""ICEWS event files: tab-separated, a 20-column header, country names rather than codes.

Like GDELT, ICEWS codes one real event once per story that reports it. Each row is one
witness (`weight_of(1)`), and with `repeats: merge` the rows of one day, country pair, actor
roles and CAMEO code are one event (see gdelt.py and `roles_suffix`). With `rows`, an event's
id is its date and ICEWS `Event ID` together (ICEWS repeats ids across days). The row has no
text of the story, so the verbatim quote kept is the row itself.

Each actor's role (state or non-state) comes from its name, sectors and country name (see
`role_from_icews` in schemas/actors.py): "Police (United States)" is the state, "Citizen
(United Kingdom)" is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, NamedTuple

from replay.readers.base import (
    BadField,
    BadRow,
    NoDyadRows,
    Pending,
    ReaderOptions,
    ReadItem,
    SourceLine,
    actor,
    is_blank,
    lines,
    text_of,
)
from replay.readers.gdelt import roles_suffix, weight_of
from schemas.actors import ActorRole, role_from_icews
from schemas.cameo import cameo_codes
from schemas.countries import country_code
from schemas.events import CrisisEvent, TimePrecision, Witnesses, dyad_of, witnessed_weight

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


class IcewsRow(NamedTuple):
    """A checked ICEWS row's fields, as its event needs them (see `Pending`)."""

    source_name: str
    source_country: str
    source_role: ActorRole
    target_name: str
    target_country: str
    target_role: ActorRole
    cameo_code: str
    intensity: float
    summary: str
    document: str
    quote: str
    coded_by: str

    @property
    def dyad(self) -> str | None:
        return dyad_of(self.source_country, self.target_country)

    def event(self, event_id: str, event_time: datetime, witnesses: Witnesses) -> CrisisEvent:
        """The row's event, standing for the rows `witnesses` names; `_item` checked every field."""
        return CrisisEvent.model_validate(
            {
                "event_id": event_id,
                "event_time": event_time,
                "time_precision": TimePrecision.DAY,
                "source": actor(None, self.source_name, self.source_country, self.source_role),
                "target": actor(None, self.target_name, self.target_country, self.target_role),
                "cameo_code": self.cameo_code,
                "goldstein": self.intensity,
                "weight": witnessed_weight(witnesses),
                "witnesses": witnesses,
                "summary": self.summary,
                "provenance": {"document": self.document, "quote": self.quote, "coded_by": self.coded_by},
            }
        )


def is_header(first_line: bytes) -> bool:
    return first_line.startswith(b"Event ID\t") and b"CAMEO Code" in first_line


class IcewsReader:
    """ICEWS event files, recognised by their header."""

    name = "icews"
    description = "an ICEWS file"

    def sniff(self, first_line: bytes) -> bool:
        return is_header(first_line)

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
        position: dict[str, int] | None = None
        for numbered in lines(handle, name):
            if isinstance(numbered, BadRow):
                yield numbered
                continue
            number, raw = numbered
            if is_blank(raw):
                continue
            where = SourceLine(name, number)
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            fields = text.split("\t")
            if position is None:
                header = {column: at for at, column in enumerate(fields)}
                if missing := [column for column in COLUMNS if column not in header]:
                    reason = f"not an ICEWS header: no column {missing[0]!r}"
                    yield BadRow(where, "header", reason, text_of(raw)[:500])
                    return
                position = header
                continue
            if len(fields) != len(position):
                reason = f"{len(fields)} columns; the header has {len(position)}"
                yield BadRow(where, "columns", reason, text_of(raw))
                continue
            row = {column: fields[position[column]].strip() for column in COLUMNS}
            try:
                yield _item(row, where, text, options)
            except BadField as error:
                yield BadRow(where, error.category, str(error), text_of(raw))


def _country(row: dict[str, str], column: str) -> str | None:
    name = row[column]
    if name in _NULLS:
        return None
    code = country_code(name)
    if code is None:
        raise BadField(column, "unknown country name", name, category="country")
    return code


def _role(row: dict[str, str], side: str) -> ActorRole:
    """The role of the row's `side` actor (see `role_from_icews`)."""
    return role_from_icews(row[f"{side} Name"], row[f"{side} Sectors"], row[f"{side} Country"])


def _item(row: dict[str, str], where: SourceLine, text: str, options: ReaderOptions) -> ReadItem:
    """Every check a row can fail, so that building its event later cannot."""
    source, target = _country(row, "Source Country"), _country(row, "Target Country")
    if source is None or target is None or source == target:
        return NoDyadRows(1)
    try:
        day = datetime.strptime(row["Event Date"], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BadField("Event Date", "not a YYYY-MM-DD date", row["Event Date"]) from None
    code = row["CAMEO Code"]
    if code not in cameo_codes():
        raise BadField("CAMEO Code", "unknown CAMEO code", code, category="CAMEO code")
    try:
        intensity = float(row["Intensity"])
    except ValueError:
        raise BadField("Intensity", "not a number", row["Intensity"], category="Goldstein") from None
    if not -10 <= intensity <= 10:  # NaN too
        raise BadField("Intensity", "not between -10 and 10", row["Intensity"], category="Goldstein")
    if not _EVENT_ID.match(row["Event ID"]):
        raise BadField("Event ID", "not an ICEWS id", row["Event ID"])
    source_role, target_role = _role(row, "Source"), _role(row, "Target")
    merge = options.repeats == "merge"
    publisher = row["Publisher"] or "ICEWS"
    suffix = roles_suffix(source_role, target_role)
    return Pending(
        event_time=day,
        event_id=f"icews-{day:%Y%m%d}-{source}-{target}-{code}{suffix}"
        if merge
        else f"icews-{day:%Y%m%d}-{row['Event ID']}",
        row_id=f"{day:%Y%m%d}-{row['Event ID']}",
        where=where,
        weight=weight_of(1, options),
        row=IcewsRow(
            source_name=(row["Source Name"] or source)[:200],
            source_country=source,
            source_role=source_role,
            target_name=(row["Target Name"] or target)[:200],
            target_country=target,
            target_role=target_role,
            cameo_code=code,
            intensity=intensity,
            summary=f"{row['Source Name']} → {row['Target Name']}: {row['Event Text']}"[:1000],
            document=f"{publisher}, story {row['Story ID']}, sentence {row['Sentence Number']}"[:500],
            quote=text[:2000],
            coded_by=f"ICEWS (machine-coded), event {row['Event ID']}, {where}"[:200],
        ),
    )
