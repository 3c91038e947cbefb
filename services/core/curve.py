"""A dyad's index curve over event time, from the index updates it published: the one sampler
behind every drawing (the backtest's report, the API's curve that the dashboard plots).

An index update holds E and D evaluated at the dyad's latest event (`as_of`); it is drawn
where the record that caused it happened (its anchor's `shown_at`), never before the previous
jump. So a retraction issued three days after the dyad's last event shows, at the
retraction's time, the indices without the retracted event, decayed to that time; the jump
before it stays as it was published. Between anchors the indices only decay.

Each update also says what the dyad was judged against: the top of its normal band for E
(`escalation_baseline`; levels follow E above it). The engine judges only at events, so the
curve holds it as a step: each anchor's from its jump to the next, 0 before the first.
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
    escalation_baseline: float
    """The top of the dyad's normal band for E that the update was judged against."""


@dataclass
class AnchorTrail:
    """A dyad's anchors as its updates come, in columns (compact on long runs): one per
    distinct `shown_at`, the last update there winning, as the state after all of them."""

    _columns: tuple[array[float], ...] = field(default_factory=lambda: tuple(array("d") for _ in range(5)))

    def add(
        self,
        as_of: float,
        record_time: float,
        escalation: float,
        de_escalation: float,
        escalation_baseline: float,
    ) -> None:
        """An update evaluated at `as_of`, caused by a record of event time `record_time`, judged
        against `escalation_baseline`."""
        shown, *_ = self._columns
        shown_at = max(as_of, record_time, shown[-1] if shown else as_of)
        if shown and shown[-1] == shown_at:
            for column in self._columns:
                column.pop()
        for column, value in zip(
            self._columns, (shown_at, as_of, escalation, de_escalation, escalation_baseline), strict=True
        ):
            column.append(value)

    def __len__(self) -> int:
        return len(self._columns[0])

    @property
    def anchors(self) -> list[Anchor]:
        return [Anchor(*values) for values in zip(*self._columns, strict=True)]


@dataclass(frozen=True)
class Curve:
    """Samples in time order; a jump repeats its time (the value before it, then after)."""

    times: list[float]
    escalation: list[float]
    de_escalation: list[float]
    escalation_baseline: list[float]
    """At each of `times`: the normal E was judged against, held from one anchor to the next."""


def sample(anchors: list[Anchor], half_life: float, until: float | None = None) -> Curve | None:
    """E and D at jumps and along the decay between them, from a flat zero just before the
    first anchor up to `until` (default: TAIL_HALF_LIVES after the last), with the baseline
    of each anchor held up to the next. None: no anchor."""
    if not anchors:
        return None
    first = anchors[0].shown_at
    curve = Curve([first - LEAD_HALF_LIVES * half_life, first], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0])
    previous: Anchor | None = None
    for anchor in anchors:
        if previous is not None:
            _sample_decay(curve, previous, anchor.shown_at, half_life)
        curve.times.append(anchor.shown_at)
        curve.escalation.append(decay.decayed(anchor.escalation, anchor.as_of, anchor.shown_at, half_life))
        curve.de_escalation.append(
            decay.decayed(anchor.de_escalation, anchor.as_of, anchor.shown_at, half_life)
        )
        curve.escalation_baseline.append(anchor.escalation_baseline)
        previous = anchor
    last = anchors[-1]
    end = last.shown_at + TAIL_HALF_LIVES * half_life if until is None else until
    _sample_decay(curve, last, end, half_life)
    return curve


def _sample_decay(curve: Curve, start: Anchor, until: float, half_life: float) -> None:
    """Append the decay of `start`'s indices from where it was drawn up to `until`, and its
    baseline, which holds until the next anchor (at `until`, the value before that jump)."""
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
        curve.escalation_baseline.append(start.escalation_baseline)
