"""The case behind one-curve-for-all: a strike, a threat a day later, then the strike retracted
three days after it. The backtest's report draws its curve; the API and the dashboard must
draw the same one (they once put the retraction's update at the threat and lost the peak).

And a dyad with a normal of its own (six weeks of ordinary friction, then strikes), whose
thresholds every drawing puts on that normal: its curves carry the baseline of each update.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from schemas.outputs import IndexUpdate
from services.backtest.run import run_backtest
from services.core import EngineConfig
from services.core.curve import Curve, sample
from services.core.timeutil import to_seconds
from tests.builders import START, event, retraction

DYAD = "IRN-PAK"
THREAT_AT = to_seconds(START + timedelta(hours=24))
RETRACTED_AT = to_seconds(START + timedelta(hours=72))
PEAK = 14.94
"""E just after the threat: the strike (10) decayed by a day, plus the threat (7)."""


def write_retracted_strike(path: Path) -> Path:
    """The case as a native event file."""
    records = [event("strike", 0), event("threat", 24, cameo_code="138"), retraction("strike", 72)]
    path.write_text("".join(record.model_dump_json() + "\n" for record in records))
    return path


def report_curve(path: Path, config: EngineConfig, dyad: str = DYAD, until: float = RETRACTED_AT) -> Curve:
    """The report's curve of the dyad, up to `until`: by default the retraction, where the API's
    ends by default (its latest event time)."""
    result = run_backtest([path], config)
    curve = sample(result.dyads[dyad].trail.anchors, config.half_life_seconds, until=until)
    assert curve is not None
    return curve


NORMAL_DYAD = "CHN-USA"
ORDINARY_DAYS = 42
ORDINARY = (-1.0, -2.0, -1.0, -3.0)
"""One event a day, of these Goldstein scores in turn: a normal band that moves a little."""
STRIKES_AT = [ORDINARY_DAYS * 24 + 6 * n for n in range(3)]
"""Hours after START: three strikes in a day, after the weeks of friction."""
NORMAL_CASE_END = to_seconds(START + timedelta(hours=STRIKES_AT[-1]))


def write_dyad_with_a_normal(path: Path) -> Path:
    """NORMAL_DYAD's case as a native event file: six weeks of ordinary friction, then three
    strikes in a day, judged against the normal the weeks before them made."""
    ordinary = [
        event(
            f"ordinary-{day:02}",
            day * 24 + 12,
            cameo_code="112",
            goldstein=ORDINARY[day % len(ORDINARY)],
            source="CHN",
            target="USA",
        )
        for day in range(ORDINARY_DAYS)
    ]
    strikes = [event(f"strike-{n}", hours, source="CHN", target="USA") for n, hours in enumerate(STRIKES_AT)]
    path.write_text("".join(record.model_dump_json() + "\n" for record in ordinary + strikes))
    return path


def expected_normal(times: Sequence[float], updates: Sequence[IndexUpdate]) -> list[float]:
    """The baseline a curve must show at each of `times`, from the updates drawn where they were
    evaluated (events in order, no retraction): 0 before the first, then each update's held
    up to the next; at a jump (a time repeated) the value before it, then after."""
    normal_at = {to_seconds(update.as_of): update.escalation_baseline for update in updates}
    jumps = sorted(normal_at)
    expected = []
    for i, time in enumerate(times):
        before_a_jump = i + 1 < len(times) and times[i + 1] == time
        last = bisect_right(jumps, time) - (2 if before_a_jump else 1)
        expected.append(normal_at[jumps[last]] if last >= 0 else 0.0)
    return expected


def shown_at(times: Sequence[float], values: Sequence[float], moment: float) -> float:
    """What a curve shows at `moment`: after any jump there (its last sample at or before it)."""
    return values[bisect_right(times, moment) - 1]


def shown_before(times: Sequence[float], values: Sequence[float], moment: float) -> float:
    """What a curve shows just before `moment`: before any jump there."""
    return values[bisect_right(times, moment) - 2]
