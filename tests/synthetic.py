"""Larger, deterministic event files: many dyads over months (`write_events`), or one busy dyad
over a year (`write_busy_dyad`)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from tests.builders import START, event
from tests.gdelt_feed import USA_CHN_CSV, gdelt_rows

COUNTRIES = ["IRN", "PAK", "CHN", "USA", "IND", "RUS", "TUR", "AFG", "SAU", "ISR"]
CODES = ["195", "190", "138", "111", "0256", "042", "0356", "087", "057", "010", "172", "061"]


def write_events(path: Path, count: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    lines = []
    for number in range(count):
        source, target = rng.sample(COUNTRIES, 2)
        record = event(f"syn-{number:06d}", cameo_code=rng.choice(CODES))
        record = record.model_copy(
            update={
                "event_time": START + timedelta(minutes=rng.randrange(0, 120 * 24 * 60)),
                "source": record.source.model_copy(
                    update={"code": source, "name": source, "country": source}
                ),
                "target": record.target.model_copy(
                    update={"code": target, "name": target, "country": target}
                ),
            }
        )
        lines.append(record.model_dump_json())
    path.write_text("\n".join(lines) + "\n")
    return path


def write_busy_dyad(path: Path, days: int = 365, per_day: int = 100, seed: int = 7) -> Path:
    """USA-CHN at `per_day` events a day for `days` days, in event-time order: what the state of a
    busy dyad grows to. Each event draws its direction, CAMEO code and Goldstein score from a real
    USA-CHN GDELT row (tests/data), so the mix of conflict and cooperation is a real one."""
    rng = random.Random(seed)
    real = [row.line.split("\t") for row in gdelt_rows(USA_CHN_CSV)]
    # GDELT 2.0 columns: the actors' countries (7, 17), EventCode (26), GoldsteinScale (30).
    mix = [(cols[7], cols[17], cols[26], float(cols[30])) for cols in real if cols[30]]
    lines = []
    for number in range(days * per_day):
        source, target, code, goldstein = rng.choice(mix)
        record = event(f"busy-{number:06d}", number * 24 / per_day, code, source, target, goldstein=goldstein)
        lines.append(record.model_dump_json())
    path.write_text("\n".join(lines) + "\n")
    return path
