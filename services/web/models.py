"""What the JSON API answers: pydantic models, also the source of its OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import CrisisEvent, DyadKey, Identifier, Retraction
from schemas.outputs import Alert, IndexUpdate, Level
from services.web.paging import decode


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class DyadSummary(Answer):
    dyad: DyadKey
    escalation_index: float
    de_escalation_index: float
    level: Level
    escalation_baseline: float = Field(description="the top of the dyad's normal band E was judged against")
    crisis_since: AwareDatetime | None = Field(
        description="when the dyad's open crisis reached warning (none: no crisis open); a crisis that"
        " went quiet unresolved keeps the dyad at watch"
    )
    as_of: AwareDatetime = Field(description="event time of the latest index update")
    last_change: AwareDatetime | None = Field(
        description="event time of the latest alert (level change or cooperation overtaking)"
    )
    last_alert: Alert | None
    alerts: int = Field(description="alerts raised for the dyad")


class DyadList(Answer):
    dyads: list[DyadSummary] = Field(description="most serious first: level, then escalation index")


class History(Answer):
    dyad: DyadKey
    updates: list[IndexUpdate] = Field(description="in event-time order")
    truncated: bool = Field(description="older updates were let go (see api_history_per_dyad)")


class DyadCurve(Answer):
    """A dyad's indices along event time as the core samples them (services.core.curve): a jump
    where each change happened, the decay between. The dashboard plots exactly this."""

    dyad: DyadKey
    times: list[float] = Field(
        description="event times in seconds since the epoch (UTC), as uPlot takes them; ascending,"
        " a jump repeats its time (the value before it, then after)"
    )
    escalation: list[float] = Field(description="E at each of `times`")
    de_escalation: list[float] = Field(description="D at each of `times`")
    escalation_baseline: list[float] = Field(
        description="at each of `times`, the top of the dyad's normal band for E that its levels"
        " follow (a level is reached at this plus its threshold): as its latest update was judged,"
        " held until the next; 0 before the first update, or with no normal of its own"
    )
    truncated: bool = Field(description="older updates were let go (see api_history_per_dyad)")


def _checked_cursor(cursor: str) -> str:
    decode(cursor)  # refused here, with the query's other mistakes, not halfway through a search
    return cursor


PageCursor = Annotated[str, Field(max_length=512), AfterValidator(_checked_cursor)]
NEXT_PAGE = "the cursor of the next page (pass it as `cursor`); null on the last page"
CURSOR = "where this page starts: the `next` of the previous page"


class AlertList(Answer):
    alerts: list[Alert] = Field(description="newest event time first (ties: highest id first)")
    next: str | None = Field(description=NEXT_PAGE)


class EventDetail(Answer):
    event: CrisisEvent
    dyad: DyadKey | None = Field(description="the dyad the event counts for; none: not two countries")
    retracted_by: Retraction | None = None
    cameo_description: str | None = Field(default=None, description="what the CAMEO code means")
    goldstein: float | None = Field(
        default=None, description="the score the engine used: the event's own, or the scale's for its code"
    )
    feeds: Literal["escalation", "de-escalation", "neither"] | None = Field(
        default=None, description="the index the event adds to"
    )


class EventList(Answer):
    events: list[EventDetail] = Field(description="newest event time first (ties: highest id first)")
    next: str | None = Field(description=NEXT_PAGE)


class Thresholds(Answer):
    levels: list[Level] = Field(
        description="lowest first; each but the first is reached at the threshold of its name"
    )
    watch: float
    warning: float
    critical: float
    clearing_ratio: float = Field(description="a level is left below its threshold times this ratio")
    half_life_seconds: float
    config_hash: str


class ViewStatus(Answer):
    caught_up: bool = Field(description="the view has read every topic to its end at least once")
    records_read: int
    dyads: int
    events_kept: int
    subscribers: int = Field(description="open /api/stream connections")
    stalls: list[str] = Field(
        default=[],
        description="what the worker found stuck past its limit (empty: nothing; see /health)",
    )


class Health(Answer):
    """`/health`: 200 while the worker is not stuck, 503 (with what is) once a check is past
    its limit, for a supervisor's health check. Past twice the limit the worker exits."""

    healthy: bool
    stalls: list[str]


class Problem(Answer):
    """An error (RFC 9457 style): one line that says what to fix."""

    status: int
    detail: str


class Reload(Answer):
    """The messages a reconnecting client missed are not all kept: fetch the state again."""

    reason: str


class StreamMessage(Answer):
    """What /api/stream sends: the SSE `id:` field is `id`, `event:` is `kind`, `data:` the `data`
    object. Send the last id seen as `Last-Event-ID` when reconnecting (browsers do) to get what
    was missed first, or one `reload` message when that is no longer kept."""

    id: str = Field(description="<epoch>-<number>: the worker process and the message's place in it")
    kind: Literal["index", "alert", "event", "reload"]
    data: IndexUpdate | Alert | EventDetail | Reload


class HistoryQuery(Answer):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: datetime | None = Field(default=None, alias="from", description="ISO 8601, inclusive")
    to: datetime | None = Field(default=None, description="ISO 8601, inclusive")


class CurveQuery(HistoryQuery):
    to: datetime | None = Field(
        default=None,
        description="ISO 8601, inclusive; by default the latest event time the view has seen, of any"
        " dyad, so a quiet dyad's curve decays up to the present",
    )
    points: int = Field(
        default=1_000,
        ge=10,
        le=10_000,
        description="at most this many samples: past it, the highest E and D of each slice of time",
    )


class AlertQuery(Answer):
    model_config = ConfigDict(extra="forbid")

    dyad: DyadKey | None = None
    min_level: Level | None = Field(
        default=None, description="alerts that rise to or fall from this level or higher"
    )
    since: datetime | None = Field(default=None, description="event time, ISO 8601, inclusive")
    limit: int = Field(default=200, ge=1, le=10_000)
    cursor: PageCursor | None = Field(default=None, description=CURSOR)


class EventQuery(Answer):
    model_config = ConfigDict(extra="forbid")

    id: Identifier | None = Field(
        default=None, description="only this event: for ids that cannot stand in a path, such as `..`"
    )
    dyad: DyadKey | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
    cursor: PageCursor | None = Field(default=None, description=CURSOR)


BodyLayout = Literal["json-lines", "json-array", "json-object"]
MAX_REJECTIONS_LISTED = 1_000
"""An answer lists at most this many refused records (all are counted): a body of a million
one-byte lines must not get an answer fifty times its size."""


class Rejection(Answer):
    """A record of a POSTed body that was refused, and why."""

    number: int = Field(
        ge=1,
        description="where it was: its line in JSON Lines, its position in a JSON array, 1 for a"
        " single object (counting from 1)",
    )
    reason: str = Field(description="one line: the field and what is wrong with it")


class PostedEvents(Answer):
    """What `POST /api/events` did with a body (200: some were appended; 422: none were)."""

    read_as: BodyLayout = Field(description="how the body was read")
    accepted: list[Identifier] = Field(
        description="the ids (event_id or retraction_id) of the records on crisis.events, in the"
        " body's order: Kafka acknowledged every one before this answer was sent"
    )
    rejected: list[Rejection] = Field(
        description=f"refused records in the body's order: the first {MAX_REJECTIONS_LISTED}"
    )
    rejected_total: int = Field(description="refused records, all of them")


class UnacknowledgedEvents(Problem):
    """503 from `POST /api/events`: Kafka did not acknowledge some valid records. Sending those
    again is safe (the worker counts a repeated id as a duplicate)."""

    unacknowledged: list[Identifier] = Field(
        description="ids of valid records Kafka did not acknowledge: they may or may not be on the log"
    )
    accepted: list[Identifier] = Field(description="ids of the records Kafka did acknowledge")
    rejected: list[Rejection] = Field(
        description=f"refused records in the body's order: the first {MAX_REJECTIONS_LISTED}"
    )
    rejected_total: int = Field(description="refused records, all of them")
