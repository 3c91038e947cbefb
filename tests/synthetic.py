"""A larger, deterministic event file: many dyads, conflict and cooperation, over months."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from tests.builders import START, event

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
