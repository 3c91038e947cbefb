"""How much one event weighs on a dyad's escalation and de-escalation indices."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.actors import ActorRole
from schemas.cameo import GoldsteinScale
from schemas.events import CrisisEvent
from services.core.config import EngineConfig


@dataclass(frozen=True)
class Score:
    goldstein: float
    conflict: float
    cooperation: float


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
