"""The input log's records: events and retractions (`crisis.events`, native JSON Lines).

Input is untrusted, so every string and list is bounded and unknown fields are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.actors import ActorRole, role_from_cameo
from schemas.cameo import cameo_codes

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="3-letter CAMEO country code")]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w.:@/+-]+$")]
DyadKey = Annotated[str, Field(pattern=r"^[A-Z]{3}-[A-Z]{3}$", description="e.g. IRN-PAK")]

EARLIEST_EVENT_TIME = datetime(1800, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2200, 1, 1, tzinfo=UTC)
"""Outside these a date is a typo or an attack, and times near datetime's own limits (year 1,
year 9999) overflow when converted to UTC. Times too far ahead of the clock are refused at the
edges (the `max_future_skew` setting), not here: a schema cannot read a clock."""
EventTime = Annotated[
    AwareDatetime,
    Field(
        ge=EARLIEST_EVENT_TIME,
        lt=LATEST_EVENT_TIME,
        description="ISO 8601 with a zone, from 1800 to 2199; stored as UTC",
    ),
]


class TimePrecision(StrEnum):
    """How far `event_time` can be trusted: sources say "earlier that week", "last month"."""

    EXACT = "exact"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class StrictModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CopiedAnew(BaseModel):
    """A model that caches what it derives from its fields (`functools.cached_property`): a
    copy is made as a new model, `update` validated and nothing cached carried over.

    Pydantic's `model_copy` takes `update` unchecked and copies the instance's `__dict__`,
    where cached values live: a copy with another field would keep what the original derived.
    """

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        return self.model_validate({**self.model_dump(), **(update or {})})


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class Actor(CopiedAnew, StrictModel):
    code: str | None = Field(default=None, max_length=32, description="CAMEO actor code, e.g. IRNGOV")
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode | None = Field(default=None, description="none for the UN, NGOs, ...")
    role: ActorRole | None = Field(
        default=None,
        description="state or non-state; when absent, read from `code` (IRNGOV, IRN: state;"
        " IRNCVL, IRNREB: non-state), and state when there is no code",
    )

    @cached_property
    def acting_role(self) -> ActorRole:
        """The role given, or the one its CAMEO code implies (see schemas/actors.py). Cached:
        the core reads each event's roles four times, and a reader shares one Actor among the
        rows that name it."""
        return self.role if self.role is not None else role_from_cameo(self.code, self.country)


MAX_WITNESSES = 100
"""A record names at most this many witnesses: shares are at least 1/full_weight_sources, and
a record stops naming them once they add up to a whole event."""
Share = Annotated[float, Field(gt=0, le=1, description="the row's share of one confirmed event")]
Witnesses = dict[Identifier, Share]
"""Source rows (GDELT's GLOBALEVENTID, ICEWS's Event ID) that report one event, by their share."""


def witnessed_weight(witnesses: Witnesses) -> float:
    """What rows reporting one event weigh together: their shares added up, to one event at most.

    `math.fsum` is exact, so the weight does not depend on the order the rows arrived in: the
    same rows give the same weight to a backtest and to a follower that met them file by file.
    """
    return min(1.0, math.fsum(witnesses.values()))


def corroborated(counted: Witnesses | None, named: Witnesses | None) -> Witnesses | None:
    """An event's rows once a record naming `named` is added to the rows `counted` so far; None
    when the record adds none: it names no rows (a native copy), only rows counted already, or
    the event is whole (`counted` None). A row counted already keeps the share it came with."""
    if counted is None or not named or named.keys() <= counted.keys():
        return None
    return named | counted


def dyad_of(first: str | None, second: str | None) -> str | None:
    """Two countries' dyad: their codes sorted and joined by '-'; none when a country is missing
    or shared."""
    if first is None or second is None or first == second:
        return None
    return f"{first}-{second}" if first < second else f"{second}-{first}"


class Provenance(StrictModel):
    document: str = Field(min_length=1, max_length=500, description="where the event was reported")
    quote: str = Field(min_length=1, max_length=2000, description="verbatim from the document")
    coded_by: str = Field(min_length=1, max_length=200, description="who or what coded the event")


class CrisisEvent(StrictModel):
    """Who did what to whom, when, with the words it was reported in."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "pkir24-005",
                    "event_time": "2024-01-16T16:00:00Z",
                    "time_precision": "day",
                    "source": {
                        "code": "IRNMIL",
                        "name": "Iran (armed forces)",
                        "country": "IRN",
                    },
                    "target": {"code": "PAK", "name": "Pakistan", "country": "PAK"},
                    "cameo_code": "195",
                    "summary": "Iran strikes two alleged Jaish al-Adl bases at Sabz Koh, Balochistan.",
                    "provenance": {
                        "document": "seeds/000_9f8af8cabbe7d3db.txt",
                        "quote": "Iran carried out an airstrike inside Pakistani territory of Sabza Koh",
                        "coded_by": "crisismon curators (hand-coded from the article)",
                    },
                }
            ]
        }
    )

    event_id: Identifier
    event_time: EventTime
    time_precision: TimePrecision = TimePrecision.EXACT
    source: Actor
    target: Actor
    cameo_code: str = Field(pattern=r"^\d{2,4}$")
    goldstein: float | None = Field(
        default=None,
        ge=-10,
        le=10,
        description="taken from the configured scale when absent",
    )
    weight: float = Field(default=1.0, ge=0, le=1000)
    witnesses: Witnesses | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_WITNESSES,
        description="for machine-coded sources, the source rows this record stands for, each with"
        " its share of one confirmed event; `weight` is then their shares added up (at most 1). The"
        " rows of one event arrive over hours or days: a later record with the same event_id that"
        " names new rows adds their shares to the event; one that names none is a duplicate",
    )
    summary: str = Field(default="", max_length=1000)
    provenance: Provenance

    _utc = field_validator("event_time")(_as_utc)

    @model_validator(mode="after")
    def _weight_of_witnesses(self) -> Self:
        if self.witnesses is not None and not math.isclose(
            self.weight, witnessed_weight(self.witnesses), abs_tol=1e-9
        ):
            raise ValueError("weight must be the witnesses' shares added up, at most 1")
        return self

    @field_validator("cameo_code")
    @classmethod
    def _known_code(cls, code: str) -> str:
        if code not in cameo_codes():
            raise ValueError(f"unknown CAMEO code {code!r}")
        return code

    @property
    def dyad(self) -> str | None:
        return dyad_of(self.source.country, self.target.country)


class Retraction(StrictModel):
    """Withdraws an earlier event: the log is never edited, a correction is a new record."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "retraction_id": "pkir24-r001",
                    "retracts": "pkir24-005",
                    "dyad": "IRN-PAK",
                    "event_time": "2024-01-17T09:00:00Z",
                    "reason": "The report was withdrawn by its publisher.",
                    "retracted_by": "crisismon curators",
                }
            ]
        }
    )

    retraction_id: Identifier
    retracts: Identifier = Field(description="the event_id withdrawn")
    dyad: DyadKey | None = Field(default=None, description="the withdrawn event's dyad (routing)")
    event_time: EventTime = Field(
        description="when the retraction was issued (ISO 8601 with a zone, 1800 to 2199)"
    )
    reason: str = Field(min_length=1, max_length=1000)
    retracted_by: str = Field(min_length=1, max_length=200)

    _utc = field_validator("event_time")(_as_utc)


def _record_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "retraction" if "retracts" in value else "event"
    return "retraction" if isinstance(value, Retraction) else "event"


LogRecord = Annotated[
    Annotated[CrisisEvent, Tag("event")] | Annotated[Retraction, Tag("retraction")],
    Discriminator(_record_tag),
]
_log_record = TypeAdapter[CrisisEvent | Retraction](LogRecord)


MAX_RECORD_BYTES = 64 * 1024
"""No valid record comes near this (every field is bounded); larger input is refused unread."""


def parse_record(raw: bytes | str) -> CrisisEvent | Retraction:
    """One JSON log record; raises pydantic.ValidationError (or ValueError) on bad input."""
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError(f"record of {len(raw)} bytes is over the {MAX_RECORD_BYTES}-byte limit")
    try:  # most records are events: JSON to model in one pass (the union's tag needs a dict first)
        return CrisisEvent.model_validate_json(raw)
    except ValidationError:  # a retraction, or bad input: told apart, and described, as the union does
        return _log_record.validate_json(raw)


def record_id(record: CrisisEvent | Retraction) -> str:
    return record.event_id if isinstance(record, CrisisEvent) else record.retraction_id
