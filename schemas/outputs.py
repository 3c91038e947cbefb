"""What the engine derives from the log: index updates, alerts, dead letters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.events import DyadKey, Identifier, StrictModel

EXAMPLE_STAMP = {
    "scale": "gdelt",
    "scale_version": "sha256:5f0c3e1a9b2d",
    "config_hash": "3c1d0a2b4e5f6789",
}


class Level(StrEnum):
    NORMAL = "normal"
    WATCH = "watch"
    WARNING = "warning"
    CRITICAL = "critical"

    @cached_property
    def rank(self) -> int:
        """0 to 3: the order of levels (also the `crisismon_level` metric). Cached on the
        member: the core asks it several times per event, and a lookup by member hashes the
        member in Python (`Enum.__hash__`)."""
        return _RANKS[self]


_RANKS = {level: rank for rank, level in enumerate(Level)}


class ComputedWith(StrictModel):
    """How a result was computed, so two results can be compared or reproduced."""

    scale: str = Field(max_length=32, description="the Goldstein scale's name")
    scale_version: str = Field(max_length=64)
    config_hash: str = Field(max_length=64, description="digest of the whole engine configuration")


class JudgedAgainst(StrictModel):
    """What a dyad's level was judged against: its normal bands and its open crisis."""

    escalation_baseline: float = Field(
        default=0.0,
        ge=0,
        description="the top of this dyad's normal band for the escalation index; levels follow "
        "the surge above it (0: no normal of its own yet, or published before it was added)",
    )
    de_escalation_baseline: float = Field(
        default=0.0, ge=0, description="the same for the de-escalation index"
    )
    crisis_since: AwareDatetime | None = Field(
        default=None,
        description="when the dyad's open crisis reached warning: it stays at watch or above until "
        "resolved or quiet for the crisis memory (none: no crisis open)",
    )


class IndexUpdate(ComputedWith, JudgedAgainst):
    """A dyad's indices after an event (or retraction) changed them."""

    model_config = ComputedWith.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "dyad": "IRN-PAK",
                    "as_of": "2024-01-16T16:00:00Z",
                    "escalation_index": 10.0,
                    "de_escalation_index": 8.9,
                    "level": "watch",
                    "triggered_by": "pkir24-005",
                    "triggered_at": "2024-01-16T16:00:00Z",
                    "events_in_window": 5,
                    **EXAMPLE_STAMP,
                }
            ]
        }
    }

    dyad: DyadKey
    as_of: AwareDatetime = Field(description="event time the indices are evaluated at")
    escalation_index: float = Field(ge=0)
    de_escalation_index: float = Field(ge=0)
    level: Level
    triggered_by: Identifier = Field(description="the event or retraction that changed the dyad")
    triggered_at: AwareDatetime | None = Field(
        default=None,
        description="event time of the record that changed the dyad (a retraction's: when it was issued),"
        " where a curve shows the change; absent from updates published before it was added: read `as_of`",
    )
    events_in_window: int = Field(
        ge=0, description="events held one by one for this dyad (those within `lateness` of its latest)"
    )


class Contributor(StrictModel):
    event_id: Identifier
    event_time: AwareDatetime
    index: Literal["escalation", "de-escalation"]
    contribution: float = Field(ge=0, description="the event's decayed weight at the alert's time")


AlertKind = Literal["escalation", "de-escalation"]
ReasonCode = Literal[
    "level-rise",
    "level-fall",
    "cooperation-overtakes",
    "crisis-resolved",
    "crisis-quiet",
    "correction",
]


class Alert(ComputedWith, JudgedAgainst):
    """A level transition of one dyad, with the events that drove it."""

    model_config = ComputedWith.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "alert_id": "4f6c2a0e9d8b7a6c5e4d3c2b1a0f9e8d",
                    "dyad": "IRN-PAK",
                    "kind": "escalation",
                    "level": "watch",
                    "previous_level": "normal",
                    "reason": "escalation surge 10.00 (above this dyad's normal) reached the watch"
                    " threshold 6",
                    "reason_code": "level-rise",
                    "event_time": "2024-01-16T16:00:00Z",
                    "escalation_index": 10.0,
                    "de_escalation_index": 8.9,
                    "triggered_by": "pkir24-005",
                    "contributors": [
                        {
                            "event_id": "pkir24-005",
                            "event_time": "2024-01-16T16:00:00Z",
                            "index": "escalation",
                            "contribution": 10.0,
                        }
                    ],
                    "emitted_at": "2026-11-26T22:00:00Z",
                    **EXAMPLE_STAMP,
                }
            ]
        }
    }

    alert_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="deterministic: same input, same id")
    dyad: DyadKey
    kind: AlertKind
    level: Level = Field(description="the level after the alert")
    previous_level: Level
    reason: str = Field(max_length=500)
    reason_code: ReasonCode
    event_time: AwareDatetime = Field(description="event time of the triggering record")
    escalation_index: float = Field(ge=0)
    de_escalation_index: float = Field(ge=0)
    triggered_by: Identifier
    contributors: list[Contributor] = Field(max_length=50)
    emitted_at: AwareDatetime | None = Field(
        default=None,
        description="wall-clock time of publication, set by the engine that ran",
    )

    def touches(self, level: Level) -> bool:
        """Whether whoever watches `level` should hear of it: it rises to that level or above,
        or falls from there (a fall from warning matters to whoever watches warning)."""
        return self.reach >= level.rank

    @property
    def reach(self) -> int:
        """The rank of the higher of its two levels: the highest level it `touches`."""
        return max(self.level.rank, self.previous_level.rank)


class DeadLetter(StrictModel):
    """Input that could not be used, kept with the reason and where it came from."""

    model_config = StrictModel.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "reason": "cameo_code: Value error, unknown CAMEO code '999'",
                    "raw": '{"event_id": "x", "cameo_code": "999"}',
                    "raw_truncated": False,
                    "origin": "crisis.events",
                    "partition": 3,
                    "offset": 41,
                    "line": None,
                    "received_at": "2026-11-26T22:00:00Z",
                }
            ]
        }
    }

    reason: str = Field(max_length=2000)
    raw: str = Field(max_length=65536, description="the input as text (undecodable bytes escaped)")
    raw_truncated: bool = False
    origin: str = Field(max_length=500, description="topic or file it came from")
    partition: int | None = None
    offset: int | None = None
    line: int | None = None
    received_at: datetime
