"""The article's event log: every line valid, in time order, every quote verbatim."""

import json
from pathlib import Path

import pytest

from schemas.events import CrisisEvent, parse_record

DATA = Path(__file__).parent.parent / "replay" / "data"
LOG = DATA / "pakistan-iran-2024.jsonl"
ARTICLE = DATA / "sources" / "pakistan-iran-2024.article.txt"


def normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def events() -> list[CrisisEvent]:
    records = [parse_record(line) for line in LOG.read_text().splitlines()]
    assert all(isinstance(record, CrisisEvent) for record in records)
    return records  # type: ignore[return-value]


def test_every_quote_occurs_in_the_article(events: list[CrisisEvent]) -> None:
    article = normalised(ARTICLE.read_text(encoding="utf-8"))
    missing = [e.event_id for e in events if normalised(e.provenance.quote) not in article]
    assert missing == []


def test_the_log_is_in_event_time_order_with_unique_ids(events: list[CrisisEvent]) -> None:
    keys = [(e.event_time, e.event_id) for e in events]
    assert keys == sorted(keys)
    assert len({e.event_id for e in events}) == len(events)


def test_the_log_covers_the_crisis(events: list[CrisisEvent]) -> None:
    dyads = {e.dyad for e in events}
    assert {"IRN-PAK", "CHN-PAK", "CHN-IRN", None} <= dyads
    strikes = [e for e in events if e.cameo_code == "195"]
    assert [(s.source.country, s.event_time.date().isoformat()) for s in strikes] == [
        ("IRN", "2024-01-16"),
        ("PAK", "2024-01-18"),
    ]


def test_every_line_is_one_compact_json_object() -> None:
    for line in LOG.read_text().splitlines():
        assert isinstance(json.loads(line), dict)
