"""The contracts: pydantic models of every record CrisisMon reads or writes."""

from schemas.events import (
    Actor,
    CrisisEvent,
    Provenance,
    Retraction,
    TimePrecision,
    parse_record,
)
from schemas.outputs import (
    Alert,
    ComputedWith,
    Contributor,
    DeadLetter,
    IndexUpdate,
    Level,
)

__all__ = [
    "Actor",
    "Alert",
    "ComputedWith",
    "Contributor",
    "CrisisEvent",
    "DeadLetter",
    "IndexUpdate",
    "Level",
    "Provenance",
    "Retraction",
    "TimePrecision",
    "parse_record",
]
