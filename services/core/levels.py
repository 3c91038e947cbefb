"""Levels from the escalation index, with hysteresis, and the transitions that make alerts."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.outputs import AlertKind, Level, ReasonCode
from services.core.config import EngineConfig

LEVELS = tuple(Level)


def next_level(current: Level, escalation: float, config: EngineConfig) -> Level:
    """Rise to the highest threshold reached; fall only below a level's clearing threshold.

    The gap between a threshold and its clearing threshold keeps a dyad that hovers near
    a threshold from flapping between two levels.
    """
    reached = max(
        (lv for lv in LEVELS if escalation >= config.threshold(lv)),
        key=lambda lv: lv.rank,
    )
    if reached.rank > current.rank:
        return reached
    level = current
    while level is not Level.NORMAL and escalation < config.threshold(level) * config.clearing_ratio:
        level = LEVELS[level.rank - 1]
    return level


@dataclass(frozen=True)
class Transition:
    kind: AlertKind
    reason_code: ReasonCode
    reason: str


def transition(
    before: Level,
    after: Level,
    cooperation_led: bool,
    escalation: float,
    de_escalation: float,
    config: EngineConfig,
) -> Transition | None:
    """The alert a step deserves, if any: at most one per step."""
    if after.rank > before.rank:
        return Transition(
            "escalation",
            "level-rise",
            f"escalation index {escalation:.2f} reached the {after} threshold {config.threshold(after):g}",
        )
    if after.rank < before.rank:
        return Transition(
            "de-escalation",
            "level-fall",
            f"escalation index {escalation:.2f} fell below the {before} clearing threshold "
            f"{config.threshold(before) * config.clearing_ratio:g}",
        )
    if after is not Level.NORMAL and de_escalation > escalation and not cooperation_led:
        return Transition(
            "de-escalation",
            "cooperation-overtakes",
            f"de-escalation index {de_escalation:.2f} overtook escalation index "
            f"{escalation:.2f} at level {after}",
        )
    return None
