"""How much one event weighs on a dyad's escalation and de-escalation indices."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.cameo import GoldsteinScale
from schemas.events import CrisisEvent


@dataclass(frozen=True)
class Score:
    goldstein: float
    conflict: float
    cooperation: float


def score(event: CrisisEvent, scale: GoldsteinScale) -> Score:
    """Conflict (Goldstein < 0) feeds escalation, cooperation (> 0) de-escalation, by weight."""
    goldstein = event.goldstein if event.goldstein is not None else scale.score(event.cameo_code)
    magnitude = abs(goldstein) * event.weight
    return Score(
        goldstein=goldstein,
        conflict=magnitude if goldstein < 0 else 0.0,
        cooperation=magnitude if goldstein > 0 else 0.0,
    )
