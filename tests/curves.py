"""The case behind one-curve-for-all: a strike, a threat a day later, then the strike retracted
three days after it. The backtest's report draws its curve; the API and the dashboard must
draw the same one (they once put the retraction's update at the threat and lost the peak).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

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


def report_curve(path: Path, config: EngineConfig) -> Curve:
    """The report's curve of the dyad, up to the retraction (where the API's ends by default)."""
    result = run_backtest([path], config)
    curve = sample(result.dyads[DYAD].trail.anchors, config.half_life_seconds, until=RETRACTED_AT)
    assert curve is not None
    return curve


def shown_at(times: Sequence[float], values: Sequence[float], moment: float) -> float:
    """What a curve shows at `moment`: after any jump there (its last sample at or before it)."""
    return values[bisect_right(times, moment) - 1]


def shown_before(times: Sequence[float], values: Sequence[float], moment: float) -> float:
    """What a curve shows just before `moment`: before any jump there."""
    return values[bisect_right(times, moment) - 2]
