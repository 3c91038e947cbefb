"""Each dyad against its own normal: the band its index usually stays in, from its recent past.

A busy dyad (RUS-USA) always has conflict in the news; a quiet one (ARG-CHL) rarely has
any. One threshold cannot serve both, so levels follow the *surge*: the index minus the top
of the dyad's own normal band. The band is read from the dyad's events in a reference window
(`baseline_window`, four weeks as in ACLED's Trendfinder) that ends `baseline_lag` before
the moment judged, so a crisis's first week is not its own baseline. While a dyad's history
is shorter than lag and window together (the start of a log), the window is what it has
seen up to the moment judged, so a busy dyad does not look like a surge on day one.

The band comes from the window's daily sums (conflict magnitude per UTC day, weighed by
Goldstein, sources and actor roles; days without events count as zero). If a day adds X
with mean μ and variance s², an index decaying by r = 2^(-1 day / half-life) a day hovers
around μ / (1 - r) with variance s² / (1 - r²); the band's top is that mean plus
`baseline_sigmas` standard deviations. Daily sums, not counts of events: news comes in
bursts, and a dyad whose normal is bursty gets a wider band than one with steady traffic.

A dyad with fewer than `baseline_min_events` events in the window has no normal of its own
(its band is zero): a quiet dyad's first strike counts in full, like ACLED's activity floor.
Sums are running totals kept on every entry, so a window costs two binary searches, and a
late event or a retraction recomputes them from where it lands, exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, NamedTuple

from services.core.record import Record

DAY = 86_400.0


@dataclass(init=False)
class Totals(Record):
    """Running totals up to and including an event: what any window's sums are made of.

    `*_day` is the sum of the event's own UTC day so far, `*_days_squared` the sum of the
    squares of the days before it: together, the sum of squared daily sums. One is built per
    event (see `Record`).
    """

    conflict: Final[float]
    conflict_day: Final[float]
    conflict_days_squared: Final[float]
    cooperation: Final[float]
    cooperation_day: Final[float]
    cooperation_days_squared: Final[float]
    events: Final[int]
    day: Final[int]

    def __init__(
        self,
        conflict: float = 0.0,
        conflict_day: float = 0.0,
        conflict_days_squared: float = 0.0,
        cooperation: float = 0.0,
        cooperation_day: float = 0.0,
        cooperation_days_squared: float = 0.0,
        events: int = 0,
        day: int = 0,
    ) -> None:
        self.conflict, self.conflict_day, self.conflict_days_squared = (
            conflict,
            conflict_day,
            conflict_days_squared,
        )
        self.cooperation, self.cooperation_day = cooperation, cooperation_day
        self.cooperation_days_squared, self.events, self.day = cooperation_days_squared, events, day

    def as_row(self) -> list[float | int]:
        """The fields in order: what snapshots store (`Totals(*row)` reads it back)."""
        return [
            self.conflict,
            self.conflict_day,
            self.conflict_days_squared,
            self.cooperation,
            self.cooperation_day,
            self.cooperation_days_squared,
            self.events,
            self.day,
        ]

    def plus(self, conflict: float, cooperation: float, time: float) -> Totals:
        day = int(time // DAY)
        new_day = day != self.day or self.events == 0
        return Totals(
            self.conflict + conflict,
            conflict + (0.0 if new_day else self.conflict_day),
            self.conflict_days_squared + (self.conflict_day**2 if new_day else 0.0),
            self.cooperation + cooperation,
            cooperation + (0.0 if new_day else self.cooperation_day),
            self.cooperation_days_squared + (self.cooperation_day**2 if new_day else 0.0),
            self.events + 1,
            day,
        )

    @property
    def conflict_squares(self) -> float:
        return self.conflict_days_squared + self.conflict_day**2

    @property
    def cooperation_squares(self) -> float:
        return self.cooperation_days_squared + self.cooperation_day**2

    def minus(self, earlier: Totals) -> Window:
        """The sums of the events between `earlier` and this (rounding never goes below 0)."""
        return Window(
            max(0.0, self.conflict - earlier.conflict),
            max(0.0, self.conflict_squares - earlier.conflict_squares),
            max(0.0, self.cooperation - earlier.cooperation),
            max(0.0, self.cooperation_squares - earlier.cooperation_squares),
            self.events - earlier.events,
        )


class Window(NamedTuple):
    """A window's sums: of each index's daily inputs, of their squares, and its event count."""

    conflict: float
    conflict_days_squared: float
    cooperation: float
    cooperation_days_squared: float
    events: int


def band_top(total: float, squares: float, days: float, half_life_days: float, sigmas: float) -> float:
    """The top of the normal band of an index fed daily sums adding to `total` (their squares
    to `squares`) over `days` days."""
    if days <= 0 or total <= 0:
        return 0.0
    mean, mean_square = total / days, squares / days
    variance = max(0.0, mean_square - mean * mean)
    daily_decay = math.exp2(-1.0 / half_life_days)
    return mean / (1 - daily_decay) + sigmas * math.sqrt(variance / (1 - daily_decay**2))
