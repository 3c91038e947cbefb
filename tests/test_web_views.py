"""The API's projection, the metrics' dyad budget and the OpenAPI document, without Kafka.

The projection is fed what the core really produces (the engine run over test events), the
way the worker's topics would carry it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from openapi_spec_validator import validate
from prometheus_client import generate_latest

from schemas.outputs import Alert, IndexUpdate, Level
from services.core import EngineConfig
from services.core.engine import Engine
from services.web.app import WebApp, openapi_document
from services.web.metrics import WorkerMetrics
from services.web.projection import Projection
from tests.builders import event, retraction


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
    assert projection.find_alerts(None, Level.WARNING, None, 100) == sorted(
        expected, key=lambda a: a.event_time, reverse=True
    )
    assert projection.find_alerts("CHN-USA", None, None, 100) == []


def test_events_are_bounded_and_a_retraction_marks_its_event_even_if_it_came_first() -> None:
    projection = Projection(max_events=2, history_per_dyad=10)
    assert projection.add_record(retraction("b")) is None
    for name in "abc":
        projection.add_record(event(name))
    assert list(projection.events) == ["b", "c"]
    assert projection.events["b"].retracted_by == retraction("b")
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
    metrics.forget_partitions({3})
    text = generate_latest(metrics.registry).decode()
    assert 'dyad="IRN-PAK"' not in text and 'dyad="CHN-USA"' in text


def test_the_openapi_document_is_valid_and_describes_every_route() -> None:
    from services.kafka.feed import Feed
    from services.kafka.topics import Topics
    from services.web.stream import Broadcaster

    feed = Feed("127.0.0.1:1", Topics(), Projection(10, 10), Broadcaster())
    web = WebApp(feed, WorkerMetrics(10), EngineConfig(), "127.0.0.1", 0, token=None)
    for secured in (False, True):
        document = openapi_document(web.routes, secured)
        validate(document)
        assert set(document["paths"]) == {route.path for route in web.routes}
    alerts = document["paths"]["/api/alerts"]["get"]
    assert {p["name"] for p in alerts["parameters"]} == {"dyad", "min_level", "since", "limit"}
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
    detail = Projection(10, 10).add_record(event("a", cameo_code="195"))
    assert detail is not None
    assert (detail.goldstein, detail.feeds) == (-10.0, "escalation")
    assert detail.cameo_description == "Employ aerial weapons"
