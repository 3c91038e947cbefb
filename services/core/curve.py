"""A dyad's index curve over event time, from the index updates it published: the one sampler
behind every drawing (the backtest's report, the API's curve that the dashboard plots).

An index update holds E and D evaluated at the dyad's latest event (`as_of`); it is drawn
where the record that caused it happened (its anchor's `shown_at`), never before the previous
jump. So a retraction issued three days after the dyad's last event shows, at the
retraction's time, the indices without the retracted event, decayed to that time; the jump
before it stays as it was published. Between anchors the indices only decay.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

from services.core import decay

TAIL_HALF_LIVES = 3.0
"""How far past the last anchor a curve goes by default: enough to see the decay, no more."""
LEAD_HALF_LIVES = 0.25
"""Flat zero drawn before the first anchor, so its jump is not hidden by the axis."""
MIN_SAMPLES_PER_GAP = 30
SAMPLES_PER_HALF_LIFE = 8
MAX_SAMPLES_PER_GAP = 600


@dataclass(frozen=True, slots=True)
class Anchor:
    """An index update placed on the curve."""

    shown_at: float
    as_of: float
    escalation: float
    de_escalation: float


@dataclass
class AnchorTrail:
    """A dyad's anchors as its updates come, in columns (compact on long runs): one per
    distinct `shown_at`, the last update there winning, as the state after all of them."""

    _columns: tuple[array[float], ...] = field(default_factory=lambda: tuple(array("d") for _ in range(4)))

    def add(self, as_of: float, record_time: float, escalation: float, de_escalation: float) -> None:
        """An update evaluated at `as_of`, caused by a record of event time `record_time`."""
        shown, *_ = self._columns
        shown_at = max(as_of, record_time, shown[-1] if shown else as_of)
        if shown and shown[-1] == shown_at:
            for column in self._columns:
                column.pop()
        for column, value in zip(self._columns, (shown_at, as_of, escalation, de_escalation), strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self._columns[0])

    @property
    def anchors(self) -> list[Anchor]:
        return [Anchor(*values) for values in zip(*self._columns, strict=True)]


@dataclass(frozen=True)
class Curve:
    times: list[float]
    escalation: list[float]
    de_escalation: list[float]


def sample(anchors: list[Anchor], half_life: float, until: float | None = None) -> Curve | None:
    """E and D at jumps and along the decay between them, from a flat zero just before the
    first anchor up to `until` (default: TAIL_HALF_LIVES after the last). None: no anchor."""
    if not anchors:
        return None
    first = anchors[0].shown_at
    curve = Curve([first - LEAD_HALF_LIVES * half_life, first], [0.0, 0.0], [0.0, 0.0])
    previous: Anchor | None = None
    for anchor in anchors:
        if previous is not None:
            _sample_decay(curve, previous, anchor.shown_at, half_life)
        curve.times.append(anchor.shown_at)
        curve.escalation.append(decay.decayed(anchor.escalation, anchor.as_of, anchor.shown_at, half_life))
        curve.de_escalation.append(
            decay.decayed(anchor.de_escalation, anchor.as_of, anchor.shown_at, half_life)
        )
        previous = anchor
    last = anchors[-1]
    end = last.shown_at + TAIL_HALF_LIVES * half_life if until is None else until
    _sample_decay(curve, last, end, half_life)
    return curve


def _sample_decay(curve: Curve, start: Anchor, until: float, half_life: float) -> None:
    """Append the decay of `start`'s indices from where it was drawn up to `until`."""
    gap = until - start.shown_at
    if gap <= 0:
        return
    count = min(
        MAX_SAMPLES_PER_GAP,
        max(MIN_SAMPLES_PER_GAP, math.ceil(gap / half_life * SAMPLES_PER_HALF_LIFE)),
    )
    for i in range(1, count + 1):
        at = start.shown_at + gap * i / count
        curve.times.append(at)
        curve.escalation.append(decay.decayed(start.escalation, start.as_of, at, half_life))
        curve.de_escalation.append(decay.decayed(start.de_escalation, start.as_of, at, half_life))
