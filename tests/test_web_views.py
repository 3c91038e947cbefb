"""The API's projection, the metrics' dyad budget and the OpenAPI document, without Kafka.

The projection is fed what the core really produces (the engine run over test events), the
way the worker's topics would carry it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from prometheus_client import generate_latest

from schemas.events import CrisisEvent, Retraction
from schemas.outputs import Alert, IndexUpdate, Level
from services.backtest.run import run_backtest
from services.core import EngineConfig
from services.core.engine import Engine
from services.core.timeutil import from_seconds, to_seconds
from services.web.app import WebApp, openapi_document
from services.web.metrics import WorkerMetrics
from services.web.models import EventDetail
from services.web.projection import Projection
from services.web.view import View
from tests.builders import event, retraction
from tests.curves import (
    DYAD,
    NORMAL_CASE_END,
    NORMAL_DYAD,
    PEAK,
    RETRACTED_AT,
    THREAT_AT,
    expected_normal,
    report_curve,
    shown_at,
    shown_before,
    write_dyad_with_a_normal,
    write_retracted_strike,
)

HALF_LIFE = EngineConfig().half_life_seconds


def crisis() -> tuple[list[IndexUpdate], list[Alert]]:
    """A strike, a threat, then calm: index updates and alerts as the worker publishes them."""
    engine = Engine(EngineConfig())
    updates: list[IndexUpdate] = []
    alerts: list[Alert] = []
    for record in [event("a", 0), event("b", 10, cameo_code="138"), event("c", 24 * 9, cameo_code="042")]:
        outcome = engine.process(record)
        assert outcome.index_update is not None
        updates.append(outcome.index_update)
        alerts += outcome.alerts
    return updates, alerts


def fed(projection: Projection) -> Projection:
    updates, alerts = crisis()
    for update in updates:
        projection.add_index(update)
    for alert in alerts:
        projection.add_alert(alert)
    return projection


def test_a_dyad_summary_is_its_latest_update_and_alert() -> None:
    updates, alerts = crisis()
    (summary,) = fed(Projection(100, 100)).summaries()
    assert summary.escalation_index == updates[-1].escalation_index
    assert summary.level == updates[-1].level
    assert summary.last_alert == alerts[-1] and summary.alerts == len(alerts)
    assert summary.escalation_baseline == updates[-1].escalation_baseline
    assert summary.crisis_since == updates[-1].crisis_since


def test_a_dyad_summary_says_when_its_open_crisis_began() -> None:
    updates, _ = crisis()
    opened = next(update for update in updates if update.crisis_since is not None)
    projection = Projection(100, 100)
    for update in updates[: updates.index(opened) + 1]:
        projection.add_index(update)
    (summary,) = projection.summaries()
    assert summary.crisis_since == opened.crisis_since and summary.level.rank >= 2


def test_repeated_alerts_and_updates_count_once() -> None:
    projection = fed(Projection(100, 100))
    updates, alerts = crisis()
    assert not any(projection.add_alert(alert) for alert in alerts)  # a restarted worker's repeats
    for update in updates:
        projection.add_index(update)
    history = projection.history("IRN-PAK", None, None)
    assert history is not None and history[0] == updates
    assert projection.summaries()[0].alerts == len(alerts)


def test_a_late_update_does_not_replace_the_latest() -> None:
    projection = fed(Projection(100, 100))
    updates, _ = crisis()
    projection.add_index(updates[0].model_copy(update={"triggered_by": "late"}))
    assert projection.summaries()[0].as_of == updates[-1].as_of


def test_history_is_bounded_per_dyad_and_says_so() -> None:
    projection = fed(Projection(100, 2))
    history = projection.history("IRN-PAK", None, None)
    assert history is not None
    assert [u.triggered_by for u in history[0]] == ["b", "c"] and history[1] is True


def test_history_between_two_times_naive_taken_as_utc() -> None:
    projection = fed(Projection(100, 100))
    history = projection.history("IRN-PAK", datetime(2024, 1, 1, 5), datetime(2024, 1, 2, tzinfo=UTC))
    assert history is not None and [u.triggered_by for u in history[0]] == ["b"]


def test_min_level_keeps_alerts_that_rise_to_or_fall_from_it() -> None:
    projection = fed(Projection(100, 100))
    _, alerts = crisis()
    expected = [a for a in alerts if Level.WARNING in (a.level, a.previous_level)]
    assert expected
    assert projection.find_alerts(None, Level.WARNING, None, 100) == (
        sorted(expected, key=lambda a: (a.event_time, a.alert_id), reverse=True),
        None,
    )
    assert projection.find_alerts("CHN-USA", None, None, 100) == ([], None)


def test_events_are_bounded_and_a_retraction_marks_its_event_even_if_it_came_first() -> None:
    projection = Projection(max_events=2, history_per_dyad=10)
    assert projection.add_record(retraction("b")) is None
    for name in "abc":
        projection.add_record(event(name))
    assert list(projection.events) == ["b", "c"]
    assert (kept := projection.event("b")) is not None and kept.retracted_by == retraction("b")
    marked = projection.add_record(retraction("c"))
    assert marked is not None and marked.retracted_by is not None
    assert projection.add_record(event("c")) is None  # a repeat shows nothing new


def test_metrics_label_at_most_max_dyads_the_most_recently_active() -> None:
    metrics = WorkerMetrics(max_dyads=2)
    updates, alerts = crisis()
    for dyad in ("CHN-USA", "IRN-PAK", "IND-PAK"):
        metrics.observe_index(updates[0].model_copy(update={"dyad": dyad}), partition=1)
        metrics.observe_alert(alerts[0].model_copy(update={"dyad": dyad}), partition=1)
    text = generate_latest(metrics.registry).decode()
    assert 'dyad="CHN-USA"' not in text
    assert 'crisismon_escalation_index{dyad="IND-PAK"}' in text
    assert 'crisismon_alerts_total{dyad="IRN-PAK",kind="escalation",level="watch"} 1.0' in text
    assert "crisismon_dyads_evicted_total 1.0" in text and "crisismon_dyads_labelled 2.0" in text


def test_metrics_forget_the_dyads_of_revoked_partitions() -> None:
    metrics = WorkerMetrics(max_dyads=10)
    updates, _ = crisis()
    metrics.observe_index(updates[0], partition=3)
    metrics.observe_index(updates[0].model_copy(update={"dyad": "CHN-USA"}), partition=4)
    metrics.forget_partitions("crisis.events", {3})
    text = generate_latest(metrics.registry).decode()
    assert 'dyad="IRN-PAK"' not in text and 'dyad="CHN-USA"' in text


def test_the_openapi_document_is_valid_and_describes_every_route() -> None:
    from services.web.view import View

    web = WebApp(
        View(Projection(10, 10)), WorkerMetrics(10).registry, EngineConfig(), "127.0.0.1", 0, token=None
    )
    for secured in (False, True):
        document = openapi_document(web.routes, secured)
        validate(document)
        assert set(document["paths"]) == {route.path for route in web.routes}
    alerts = document["paths"]["/api/alerts"]["get"]
    assert {p["name"] for p in alerts["parameters"]} == {"dyad", "min_level", "since", "limit", "cursor"}
    curve = document["paths"]["/api/dyads/{dyad}/curve"]["get"]
    assert {p["name"] for p in curve["parameters"]} == {"dyad", "from", "to", "points"}
    answer = document["components"]["schemas"]["DyadCurve"]
    assert {"times", "escalation", "de_escalation", "escalation_baseline"} <= set(answer["required"])
    assert answer["properties"]["escalation_baseline"]["items"] == {"type": "number"}
    assert "threshold" in answer["properties"]["escalation_baseline"]["description"]
    assert document["security"] == [{"bearer": []}]


def test_an_alert_read_before_its_index_update_still_counts() -> None:
    updates, alerts = crisis()
    projection = Projection(100, 100)
    for alert in alerts:
        projection.add_alert(alert)
    for update in updates:
        projection.add_index(update)
    (summary,) = projection.summaries()
    assert summary.alerts == len(alerts) and summary.last_alert == alerts[-1]


def test_an_event_shows_its_code_and_the_score_the_engine_took() -> None:
    projection = Projection(10, 10)
    kept = projection.add_record(event("a", cameo_code="195"))
    assert kept is not None
    detail = projection.detail(kept)
    assert (detail.goldstein, detail.feeds) == (-10.0, "escalation")
    assert detail.cameo_description == "Employ aerial weapons"


def test_the_view_keeps_a_record_as_read_unless_padding_makes_it_heavier() -> None:
    """The JSON read is kept as it is (not written again), but no heavier than a compact one:
    whitespace must not let the view's memory grow past what its caps allow."""
    projection = Projection(10, 10)
    read = event("a").model_dump_json(indent=1).encode()
    padded = event("b").model_dump_json().encode() + b" " * 60_000  # under MAX_RECORD_BYTES: valid
    projection.add_record(event("a"), read)
    projection.add_record(event("b"), padded)
    assert projection.events["a"].json is read
    assert projection.events["b"].json == event("b").model_dump_json().encode()
    for event_id in ("a", "b"):
        shown = projection.event(event_id)
        assert shown is not None and shown.event == event(event_id) and shown.feeds == "escalation"


def test_the_stream_tells_an_event_as_it_was_when_read_though_written_later() -> None:
    """An event's message on /api/stream is written only when a client first needs it, but says
    what the view had then: a client that comes after its retraction sees both steps."""
    view = View(Projection(10, 10))
    for record in (event("a"), retraction("a")):  # both on the events topic
        view.ingest("event", record.model_dump_json().encode())
    client = view.broadcaster.subscribe(f"{view.broadcaster.epoch}-0")  # from the first message
    told = []
    while not client.empty():
        message = client.get_nowait()
        assert message is not None
        told.append(EventDetail.model_validate_json(message.split("data: ", 1)[1]))
    assert [detail.event.event_id for detail in told] == ["a", "a"]
    assert [detail.retracted_by for detail in told] == [None, retraction("a")]
    assert told[0].goldstein == -10.0


def test_an_event_names_its_dyad_as_the_engine_routes_it() -> None:
    projection = Projection(10, 10)
    crossed = projection.add_record(event("a", source="PAK", target="IRN"))
    internal = projection.add_record(event("b", source="IRN", target="IRN"))
    assert crossed is not None and crossed.dyad == "IRN-PAK"
    assert internal is not None and internal.dyad is None
    assert projection.find_events("IRN-PAK", 10) == ([projection.detail(crossed)], None)


def test_the_api_draws_the_reports_curve_even_across_a_retraction(tmp_path: Path) -> None:
    config = EngineConfig()
    case = write_retracted_strike(tmp_path / "case.jsonl")
    projection = Projection(100, 100)
    updates = [step.outcome.index_update for step in run_backtest([case], config).dyads[DYAD].steps]
    for update in updates:
        assert update is not None
        projection.add_index(update)
    assert updates[-1] is not None and updates[-1].triggered_at == from_seconds(RETRACTED_AT)

    curve = projection.curve(DYAD, None, None, 1000, HALF_LIFE)
    report = report_curve(case, config)
    assert curve is not None
    assert (curve.times, curve.escalation, curve.de_escalation, curve.escalation_baseline) == (
        report.times,
        report.escalation,
        report.de_escalation,
        report.escalation_baseline,
    )
    assert set(curve.escalation_baseline) == {0.0}  # three records: no normal of its own
    assert shown_at(curve.times, curve.escalation, THREAT_AT) == pytest.approx(PEAK, abs=0.005)
    # Where the retraction was issued: the peak decayed two days, then the threat alone.
    assert shown_before(curve.times, curve.escalation, RETRACTED_AT) == pytest.approx(9.41, abs=0.005)
    assert shown_at(curve.times, curve.escalation, RETRACTED_AT) == pytest.approx(4.41, abs=0.005)


def fed_with_a_normal(path: Path, projection: Projection) -> tuple[Projection, list[IndexUpdate]]:
    """The projection fed the updates of NORMAL_DYAD's case, as the worker would publish them."""
    steps = run_backtest([write_dyad_with_a_normal(path)], EngineConfig()).dyads[NORMAL_DYAD].steps
    updates = [step.outcome.index_update for step in steps if step.outcome.index_update]
    for update in updates:
        projection.add_index(update)
    return projection, updates


def test_the_curve_carries_the_normal_each_update_was_judged_against(tmp_path: Path) -> None:
    projection, updates = fed_with_a_normal(tmp_path / "normal.jsonl", Projection(100, 100))
    curve = projection.curve(NORMAL_DYAD, None, None, 10_000, HALF_LIFE)
    assert curve is not None
    assert curve.escalation_baseline == expected_normal(curve.times, updates)
    assert len({normal for normal in curve.escalation_baseline if normal > 0}) > 1, "a normal that moves"
    report = report_curve(tmp_path / "normal.jsonl", EngineConfig(), NORMAL_DYAD, NORMAL_CASE_END)
    assert (curve.times, curve.escalation_baseline) == (report.times, report.escalation_baseline)


def test_a_thinned_curve_keeps_its_normal_aligned(tmp_path: Path) -> None:
    projection, _ = fed_with_a_normal(tmp_path / "normal.jsonl", Projection(100, 100))
    whole = projection.curve(NORMAL_DYAD, None, None, 10_000, HALF_LIFE)
    thin = projection.curve(NORMAL_DYAD, None, None, 40, HALF_LIFE)
    assert whole is not None and thin is not None and len(whole.times) > 40 >= len(thin.times)
    assert len(thin.times) == len(thin.escalation) == len(thin.de_escalation) == len(thin.escalation_baseline)
    samples = set(
        zip(whole.times, whole.escalation, whole.de_escalation, whole.escalation_baseline, strict=True)
    )
    assert (
        set(zip(thin.times, thin.escalation, thin.de_escalation, thin.escalation_baseline, strict=True))
        <= samples
    )
    latest = projection.dyads[NORMAL_DYAD].latest.escalation_baseline
    assert thin.escalation_baseline[-1] == whole.escalation_baseline[-1] == latest


def test_a_bounded_trail_keeps_the_normal_of_its_anchors(tmp_path: Path) -> None:
    bounded, updates = fed_with_a_normal(tmp_path / "normal.jsonl", Projection(100, 8))
    kept = bounded.dyads[NORMAL_DYAD].trail.anchors
    assert [anchor.escalation_baseline for anchor in kept] == [
        update.escalation_baseline for update in updates[-len(kept) :]
    ]
    curve = bounded.curve(NORMAL_DYAD, None, None, 10_000, HALF_LIFE)
    assert curve is not None and curve.truncated
    assert curve.escalation_baseline == expected_normal(curve.times, updates[-len(kept) :])


def test_updates_published_before_triggered_at_are_drawn_at_as_of() -> None:
    updates, _ = crisis()
    old = Projection(100, 100)
    for update in updates:
        old.add_index(update.model_copy(update={"triggered_at": None}))
    assert old.curve(DYAD, None, None, 1000, HALF_LIFE) == fed(Projection(100, 100)).curve(
        DYAD, None, None, 1000, HALF_LIFE
    )


def test_a_curve_between_two_times_keeps_the_jumps_within_them() -> None:
    projection = fed(Projection(100, 100))
    start, end = datetime(2024, 1, 1, 5), datetime(2024, 1, 3, tzinfo=UTC)
    window = projection.curve(DYAD, start, end, 1000, HALF_LIFE)
    whole = projection.curve(DYAD, None, None, 1000, HALF_LIFE)
    assert window is not None and whole is not None
    assert to_seconds(start.replace(tzinfo=UTC)) <= window.times[0] and window.times[-1] == to_seconds(end)
    threat = to_seconds(datetime(2024, 1, 1, 10, tzinfo=UTC))
    assert shown_at(window.times, window.escalation, threat) == shown_at(
        whole.times, whole.escalation, threat
    )
    assert projection.curve("CHN-USA", None, None, 1000, HALF_LIFE) is None


def test_a_curve_thinned_to_a_few_points_keeps_its_peaks() -> None:
    projection = fed(Projection(100, 100))
    whole = projection.curve(DYAD, None, None, 10_000, HALF_LIFE)
    thin = projection.curve(DYAD, None, None, 10, HALF_LIFE)
    assert whole is not None and thin is not None and len(whole.times) > 10 >= len(thin.times)
    assert thin.times == sorted(thin.times)
    assert max(thin.escalation) == max(whole.escalation)
    assert max(thin.de_escalation) == max(whole.de_escalation)


def test_a_dyads_curve_is_bounded_like_its_history_and_keeps_its_latest_jumps() -> None:
    engine = Engine(EngineConfig())
    bounded, unbounded = Projection(100, 8), Projection(100, 1000)
    for step in range(30):
        records: list[CrisisEvent | Retraction] = [
            event(f"e{step}", 10 * step, cameo_code="042" if step % 2 else "138")
        ]
        if step % 3 == 2:  # issued after the dyad's latest event: drawn later than its as_of
            records.append(retraction(f"e{step - 1}", 10 * step + 5))
        for record in records:
            update = engine.process(record).index_update
            assert update is not None
            bounded.add_index(update)
            unbounded.add_index(update)
    kept = bounded.dyads[DYAD].trail.anchors
    assert 8 <= len(kept) <= 10
    assert kept == unbounded.dyads[DYAD].trail.anchors[-len(kept) :]
    curve = bounded.curve(DYAD, None, None, 1000, HALF_LIFE)
    assert curve is not None and curve.truncated


def test_the_updates_kept_over_all_dyads_are_bounded_by_cutting_the_busiest_first() -> None:
    engine = Engine(EngineConfig())
    projection = Projection(100, history_per_dyad=1000, max_updates=60)
    fed_to: dict[str, list[IndexUpdate]] = {}
    quiet = [("CHN", "USA"), ("IRN", "CHN"), ("PAK", "USA")]
    plan = [(pair, 5) for pair in quiet] + [(("IRN", "PAK"), 120), (("IRN", "USA"), 50)]
    for (source, target), count in plan:
        for step in range(count):
            record = event(f"{source}{target}{step}", step, "042" if step % 2 else "138", source, target)
            update = engine.process(record).index_update
            assert update is not None
            projection.add_index(update)
            fed_to.setdefault(update.dyad, []).append(update)
            kept = [len(view.history) for view in projection.dyads.values()]
            assert sum(kept) == projection.updates_kept <= 60
    for dyad, updates in fed_to.items():
        found = projection.history(dyad, None, None)
        assert found is not None
        history, truncated = found
        assert history == updates[-len(history) :]  # the latest, read back from their JSON as fed
        assert truncated == (len(updates) > 5)
        assert len(history) == 5 if len(updates) == 5 else len(history) == projection.per_dyad < 50


def test_past_one_update_per_dyad_each_dyad_keeps_its_latest() -> None:
    projection = Projection(100, history_per_dyad=10, max_updates=100)
    (first, *_), _ = crisis()
    dyads = [f"A{first}{second}-B{first}{second}" for first in "ABCDEFGHIJ" for second in "ABCDEFGHIJKLMNO"]
    for step in range(3):
        for dyad in dyads:
            projection.add_index(first.model_copy(update={"dyad": dyad, "triggered_by": f"{dyad}/{step}"}))
    assert projection.per_dyad == 1 and projection.updates_kept == len(dyads)
    for dyad in dyads:
        found = projection.history(dyad, None, None)
        assert found is not None and [u.triggered_by for u in found[0]] == [f"{dyad}/2"] and found[1]
