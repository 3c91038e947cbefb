"""How much one event weighs on a dyad's escalation and de-escalation indices."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from schemas.actors import ActorRole
from schemas.cameo import GoldsteinScale
from schemas.events import CrisisEvent
from services.core.config import EngineConfig
from services.core.record import Record
from services.core.timeutil import to_seconds

_SHA256 = hashlib.sha256()


def short_sha256(text: str, length: int) -> str:
    """The first `length` hex digits of `text`'s SHA-256. From a copy of an empty digest: each
    of hashlib's constructor calls looks SHA-256 up in OpenSSL again, which cost the core more
    than the hashing itself."""
    digest = _SHA256.copy()
    digest.update(text.encode())
    return digest.hexdigest()[:length]


@dataclass(init=False)
class Score(Record):
    """An event's Goldstein score and what it weighs on each index (a `Record`)."""

    goldstein: Final[float]
    conflict: Final[float]
    cooperation: Final[float]

    def __init__(self, goldstein: float, conflict: float, cooperation: float) -> None:
        self.goldstein, self.conflict, self.cooperation = goldstein, conflict, cooperation


def fingerprint(event: CrisisEvent) -> str:
    """A digest of what the index reads of an event: when, which countries in which roles, the
    CAMEO code and Goldstein score. Not its weight and rows (a later copy may add rows: see
    `CrisisEvent.witnesses`), nor its wording and provenance (each source tells it its own way).

    Two records with one event_id and different fingerprints are a conflict: the engine keeps
    the first and refuses the other (a correction is a retraction and a new event, never an
    edit). 8 hex digits: a changed copy slips through once in four billion, and a dyad keeps
    one per event it holds.
    """
    source, target = event.source, event.target
    facts = (
        repr(to_seconds(event.event_time)),
        str(source.country),
        str(source.acting_role),
        str(target.country),
        str(target.acting_role),
        event.cameo_code,
        repr(event.goldstein),
    )
    return short_sha256("|".join(facts), 8)


def goldstein_of(event: CrisisEvent, scale: GoldsteinScale) -> float:
    """The event's own Goldstein score, or its CAMEO code's on the scale."""
    return event.goldstein if event.goldstein is not None else scale.score(event.cameo_code)


def score(event: CrisisEvent, config: EngineConfig, weight: float | None = None) -> Score:
    """Conflict (Goldstein < 0) feeds escalation, cooperation (> 0) de-escalation, by weight
    (the event's own, or `weight`: what its witnesses add up to so far).

    Each non-state side multiplies the weight by `non_state_weight`: an event between a
    government and a foreign citizen says less about the two states than one between their
    governments, and one between two countries' citizens less again.
    """
    goldstein = goldstein_of(event, config.scale)
    sides = (event.source.acting_role, event.target.acting_role)
    non_state_sides = sides.count(ActorRole.NON_STATE)
    magnitude = (
        abs(goldstein)
        * (event.weight if weight is None else weight)
        * config.non_state_weight**non_state_sides
    )
    return Score(
        goldstein=goldstein,
        conflict=magnitude if goldstein < 0 else 0.0,
        cooperation=magnitude if goldstein > 0 else 0.0,
    )
