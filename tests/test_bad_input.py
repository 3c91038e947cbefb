"""Bad input against the worker's processing path, the API's feed and the readers, without
Kafka: whatever a record holds, it costs at most itself (a dead letter, a skipped line), and
no record makes a dyad drop the events that follow or rewrites what was published.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services.kafka.worker as worker_module
from replay.ordering import ReadReport, read_in_play_order
from replay.readers.base import ReaderOptions
from schemas.events import parse_record
from services.core import Engine
from services.core.engine import Fate
from services.web.projection import Projection
from services.web.view import View
from tests.fakes import SKEW, a_worker
from tests.test_readers import read_without_raising

ARTICLE = Path(__file__).parents[1] / "replay" / "data" / "pakistan-iran-2024.jsonl"
ARTICLE_LINES = ARTICLE.read_bytes().splitlines()
TEMPLATE = json.loads(ARTICLE_LINES[4])  # pkir24-005, IRN-PAK, CAMEO 195


def at(moment: str, event_id: str = "probe", dyad: tuple[str, str] = ("IRN", "PAK")) -> bytes:
    record = json.loads(json.dumps(TEMPLATE))
    record.update(event_id=event_id, event_time=moment)
    record["source"].update(code=dyad[0], country=dyad[0])
    record["target"].update(code=dyad[1], country=dyad[1])
    return json.dumps(record).encode()


# The probes of the issue, one by one


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        ("9999-12-31T23:00:00-05:00", "less than 2200"),
        ("0001-01-01T00:00:00+05:00", "greater than or equal to 1800"),
        ("2999-01-01T00:00:00Z", "less than 2200"),
    ],
)
def test_a_date_at_the_edge_of_time_is_a_dead_letter_not_a_crash(moment: str, reason: str) -> None:
    worker = a_worker()
    assert worker.feed(at(moment, dyad=("FRA", "GBR"))) == "rejected"
    (letter,) = worker.dead_letter_records()
    assert letter.reason.startswith("event_time:") and reason in letter.reason
    assert worker.feed(at("2024-01-16T16:00:00Z", "real", ("FRA", "GBR"))) == "accepted"


def test_an_event_ahead_of_the_clock_is_refused_and_cannot_silence_its_dyad() -> None:
    worker = a_worker()
    now = datetime.now(UTC)
    ahead = (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert worker.feed(at(ahead, "from-the-future", ("KEN", "ZAF"))) == "rejected"
    assert "ahead of" in worker.dead_letter_records()[0].reason
    assert "max_future_skew" in worker.dead_letter_records()[0].reason
    # A Kafka timestamp that lies as well does not let it in: the clock caps it.
    lying = (now + timedelta(days=5)).timestamp()
    assert worker.feed(at(ahead, "lying", ("KEN", "ZAF")), produced_at=lying) == "rejected"
    # Within the skew it is accepted, and what follows on time still counts.
    soon = (now + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    today = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert worker.feed(at(soon, "tomorrow", ("KEN", "ZAF"))) == "accepted"
    assert worker.feed(at(today, "today", ("KEN", "ZAF"))) == "accepted"
    assert worker.index_updates()[-1].triggered_by == "today"


def test_the_check_follows_the_records_timestamp_so_reading_the_log_again_decides_the_same() -> None:
    """A record produced in 2024 with an event time a week later was refused then; read from
    the log today (the clock far past both), it is refused again: its timestamp decides."""
    produced = datetime(2024, 1, 10, tzinfo=UTC).timestamp()
    worker = a_worker()
    assert worker.feed(at("2024-01-17T00:00:00Z"), produced_at=produced) == "rejected"
    assert worker.feed(at("2024-01-10T12:00:00Z", "on-time"), produced_at=produced) == "accepted"


def test_an_engine_failure_costs_one_record_and_the_saved_state_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = a_worker()
    assert worker.feed(at("2024-01-16T16:00:00Z", "first")) == "accepted"

    def broken(state: Any, record: Any, config: Any) -> Any:
        state.entries.clear()  # half-done work that must not survive
        raise RuntimeError("a bug")

    monkeypatch.setattr(worker_module, "apply", broken)
    assert worker.feed(at("2024-01-17T16:00:00Z", "second")) == "rejected"
    assert "the engine failed on this record: RuntimeError('a bug')" in worker.dead_letter_records()[0].reason
    monkeypatch.undo()
    assert worker.feed(at("2024-01-18T16:00:00Z", "third")) == "accepted"
    assert worker.index_updates()[-1].events_in_window == 2, "the state saved before the failure"


def test_a_replayed_log_publishes_no_index_update_that_rewrites_history() -> None:
    """The article twice: the second pass repeats only each dyad's last update, unchanged, so
    the API's history is the backtest's (it was all 2024-01-29, E 1.93 before)."""
    worker = a_worker()
    for line in ARTICLE_LINES:
        worker.feed(line)
    first_pass = worker.index_updates()
    for line in ARTICLE_LINES:
        assert worker.feed(line) in ("duplicate", "expired", "no-dyad")  # expired: folded since
    repeated = worker.index_updates()[len(first_pass) :]
    last_per_dyad = {update.dyad: update for update in first_pass}
    assert sorted(repeated, key=lambda u: u.dyad) == sorted(last_per_dyad.values(), key=lambda u: u.dyad)

    projection = Projection(1000, 1000)
    for update in worker.index_updates():
        projection.add_index(update)
    found = projection.history("IRN-PAK", None, None)
    assert found is not None
    engine = Engine()
    expected = [
        outcome.index_update
        for line in ARTICLE_LINES
        if (outcome := engine.process(parse_record(line))).index_update is not None
        and outcome.dyad == "IRN-PAK"
    ]
    assert found[0] == expected
    (warning,) = [u for u in found[0] if u.triggered_by == "pkir24-007"]
    assert (warning.as_of.isoformat(), round(warning.escalation_index, 2)) == (
        "2024-01-17T12:00:00+00:00",
        16.96,
    )


# Arbitrary records


def _iso(moment: datetime, offset_minutes: int) -> str:
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{minutes:02d}"


DATES = st.one_of(
    st.builds(_iso, st.datetimes(), st.integers(-23 * 60 - 59, 23 * 60 + 59)),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2024-02-30T00:00Z"]),
    st.text(max_size=40),
    st.integers() | st.floats() | st.none(),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
FIELDS = [*TEMPLATE, "retracts", "retraction_id", "reason", "retracted_by", "dyad"]


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """The article's event with some fields replaced, dropped or added, dates of any kind,
    the result as JSON, cut short or as noise."""
    record: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    record["event_time"] = draw(DATES)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        if draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = draw(DATES if name == "event_time" else JSON_VALUES)
    raw = json.dumps(record).encode()
    return draw(st.sampled_from([raw, raw[: draw(st.integers(0, len(raw)))], draw(st.binary(max_size=200))]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=records(), key=st.none() | st.binary(max_size=10), produced_at=st.none() | st.floats(-1e12, 1e12))
def test_no_record_stops_the_worker_or_the_view(
    raw: bytes, key: bytes | None, produced_at: float | None
) -> None:
    worker = a_worker()
    outcome = worker.feed(raw, key=key, produced_at=produced_at)
    assert outcome in (*get_args(Fate), "rejected")
    if outcome == "rejected":
        (letter,) = worker.dead_letter_records()
        assert letter.reason
    view = View(Projection(100, 100))
    for kind in ("event", "index", "alert"):
        view.ingest(kind, raw, produced_at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(records(), max_size=5), bom=st.booleans())
def test_the_native_reader_never_raises_on_arbitrary_records(lines: list[bytes], bom: bool) -> None:
    read_without_raising((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines), "native")


def test_the_view_skips_what_the_worker_refused_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    projection = Projection(100, 100)
    view = View(projection)
    view.ingest("event", at("9999-12-31T23:00:00-05:00"))
    view.ingest("event", at("2190-01-01T00:00:00Z"), time.time())
    view.ingest("event", at("2024-01-16T16:00:00Z", "kept"), time.time())
    assert list(projection.events) == ["kept"]
    skipped = [r.getMessage() for r in caplog.records if "skips" in r.getMessage()]
    assert len(skipped) == 2 and "max_future_skew" in skipped[1]


def test_a_file_row_ahead_of_the_clock_is_a_bad_row_and_a_bom_costs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "article.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ARTICLE.read_bytes())
    report = ReadReport()
    options = ReaderOptions(clock=datetime(2024, 1, 20, tzinfo=UTC), max_future_skew=SKEW)
    played = list(read_in_play_order([path], "auto", options, report))
    late = [line for line in ARTICLE_LINES if json.loads(line)["event_time"] > "2024-01-21"]
    assert late and len(played) == len(ARTICLE_LINES) - len(late)
    assert report.bad_count == len(late) and set(report.bad_reasons) == {"event_time"}
    assert all("ahead of 2024-01-20T00:00:00Z" in bad.reason for bad in report.bad_rows)
