"""Exponential decay in event time, computed so that results are exact and order-free.

A decayed sum at time t is sum(v_j * 2 ** -((t - t_j) / h)). Keeping it as a running
sum in a fixed "frame" (anchor time A) turns each event into a constant term
v_j * 2 ** ((t_j - A) / h), and the value at t into sum * 2 ** -((t - A) / h). Frames are
cut on a fixed grid of event time (a cell every FRAME_HALF_LIVES half-lives) so terms stay
within float range, and because the grid and the summation order (event time, then id)
depend only on the events, never on their arrival, the same events always give the same
bits.
"""

from __future__ import annotations

import math
from math import exp2  # a name of the module's: compiled, `math.exp2` is a lookup per call

FRAME_HALF_LIVES = 64


def frame_of(time: float, half_life: float) -> float:
    """The anchor of the grid cell holding `time` (seconds)."""
    cell = FRAME_HALF_LIVES * half_life
    return math.floor(time / cell) * cell


def term(value: float, time: float, anchor: float, half_life: float) -> float:
    return value * exp2((time - anchor) / half_life)


def value_at(frame_sum: float, time: float, anchor: float, half_life: float) -> float:
    return frame_sum * exp2(-(time - anchor) / half_life)


def decayed(value: float, since: float, until: float, half_life: float) -> float:
    """One event's weight `until`, having happened at `since`."""
    return value * exp2(-(until - since) / half_life)
