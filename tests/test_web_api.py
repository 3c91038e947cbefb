"""The JSON API, the token and the live stream of a real worker on a real Kafka broker."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtools.broker import Broker
from schemas.outputs import Alert
from tests.live import WorkerProcess, by_dyad, eventually, latest_index, replay, wait_processed
from tests.synthetic import write_events
from tests.test_pipeline import ARTICLE, offline

TOKEN = "s3cret-token"


def status_of(running: WorkerProcess, path: str, **headers: str) -> int:
    request = urllib.request.Request(running.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def problem(running: WorkerProcess, path: str) -> tuple[int, dict[str, Any]]:
    try:
        running.get_json(path)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    raise AssertionError(f"{path} did not fail")


def metric_samples(running: WorkerProcess, name: str) -> dict[str, float]:
    """The samples of one metric in the worker's /metrics, by their label text."""
    with urllib.request.urlopen(f"{running.url}/metrics", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    samples = {}
    for line in lines:
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line[len(name) :].rsplit(" ", 1)
            samples[labels] = float(value)
    return samples


def test_two_workers_each_answer_for_every_dyad(
    kafka_broker: Broker, kafka_namespace: str, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap
    first, second = worker("first").wait_for_web(), worker("second").wait_for_web()
    both = tmp_path / "both.jsonl"
    both.write_text(ARTICLE.read_text() + write_events(tmp_path / "many.jsonl", 300).read_text())
    replay(both, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace, 180, first, second)
    topic_index = latest_index(bootstrap, kafka_namespace)
    expected_alerts, _ = offline(both)

    for running in (first, second):

        def complete(running: WorkerProcess = running) -> dict[str, Any] | None:
            dyads = {row["dyad"]: row for row in running.get_json("/api/dyads")["dyads"]}
            done = {d: (r["escalation_index"], r["level"]) for d, r in dyads.items()} == {
                d: (u.escalation_index, u.level.value) for d, u in topic_index.items()
            }
            return dyads if done else None

        dyads = eventually(complete, what=f"{running.url} to show every dyad")
        assert {d: row["alerts"] for d, row in dyads.items() if row["alerts"]} == {
            d: len(ids) for d, ids in expected_alerts.items()
        }
        alerts = running.get_json("/api/alerts?limit=10000")["alerts"]
        assert (
            by_dyad([Alert.model_validate_json(json.dumps(a)) for a in reversed(alerts)]) == expected_alerts
        )
        times = [a["event_time"] for a in alerts]
        assert times == sorted(times, reverse=True)
        detail = running.get_json("/api/events/pkir24-005")
        assert "airstrike inside Pakistani territory" in detail["event"]["provenance"]["quote"]
        history = running.get_json("/api/dyads/IRN-PAK/history?from=2024-01-16T00:00:00Z&to=2024-01-18")
        in_range = [u["triggered_by"] for u in history["updates"] if u["triggered_by"].startswith("pkir24")]
        assert in_range == [
            e["event_id"]
            for e in map(json.loads, ARTICLE.read_text().splitlines())
            if "2024-01-16" <= e["event_time"] <= "2024-01-18"
            and {e["source"]["country"], e["target"]["country"]} == {"IRN", "PAK"}
        ]
        assert all("2024-01-16" <= u["as_of"] <= "2024-01-18" for u in history["updates"])
        assert running.get_json("/api/status")["caught_up"] is True

    assert first.get_json("/api/dyads/IRN-PAK/history") == second.get_json("/api/dyads/IRN-PAK/history")
    assert first.get_json("/api/dyads/IRN-PAK/curve") == second.get_json("/api/dyads/IRN-PAK/curve")
    # The curve carries, sample by sample, the normal the dyad's updates were judged against.
    curve = first.get_json("/api/dyads/IRN-PAK/curve?points=10000")
    assert len(curve["escalation_baseline"]) == len(curve["times"]) == len(curve["escalation"]) > 0
    judged = {u["escalation_baseline"] for u in first.get_json("/api/dyads/IRN-PAK/history")["updates"]}
    assert set(curve["escalation_baseline"]) <= judged | {0.0}

    # Metrics are per worker: each reports the dyads of its partitions, and together all records.
    accepted = [metric_samples(w, "crisismon_events_total")['{outcome="accepted"}'] for w in (first, second)]
    ignored = [metric_samples(w, "crisismon_events_total")['{outcome="ignored"}'] for w in (first, second)]
    assert sum(accepted) + sum(ignored) == 26 + 300
    owners = [w for w in (first, second) if '{dyad="IRN-PAK"}' in metric_samples(w, "crisismon_level")]
    assert len(owners) == 1
    escalation = metric_samples(owners[0], "crisismon_escalation_index")['{dyad="IRN-PAK"}']
    assert escalation == topic_index["IRN-PAK"].escalation_index


def test_bad_questions_get_one_line_problems(
    kafka_broker: Broker, worker: Callable[..., WorkerProcess]
) -> None:
    running = worker().wait_for_web()
    assert problem(running, "/api/alerts?min_level=severe")[0] == 400
    assert problem(running, "/api/alerts?colour=red")[1]["detail"].startswith("colour:")
    assert problem(running, "/api/dyads/IRAN/history") == (
        400,
        {"status": 400, "detail": "'IRAN' is not a dyad: two 3-letter country codes, sorted, e.g. IRN-PAK"},
    )
    assert problem(running, "/api/dyads/IRN-PAK/history")[0] == 404
    assert problem(running, "/api/dyads/IRN-PAK/curve")[0] == 404
    assert problem(running, "/api/dyads/IRAN/curve")[0] == 400
    assert problem(running, "/api/dyads/IRN-PAK/curve?points=1")[1]["detail"].startswith("points:")
    assert problem(running, "/api/events/nope")[0] == 404
    assert problem(running, "/api/nothing-here") == (404, {"status": 404, "detail": "Not Found"})


def test_the_token_guards_everything_but_metrics(
    kafka_broker: Broker, worker: Callable[..., WorkerProcess]
) -> None:
    running = worker(CRISISMON_API_TOKEN=TOKEN).wait_for_web()
    for path in ("/", "/api/dyads", "/api/openapi.json", "/api/stream", "/static/index.html"):
        assert status_of(running, path) == 401, path
        assert status_of(running, path, Authorization="Bearer wrong") == 401, path
    assert status_of(running, "/api/dyads", Authorization=f"Bearer {TOKEN}") == 200
    assert running.get_json("/api/openapi.json", token=TOKEN)["security"] == [{"bearer": []}]
    assert status_of(running, "/metrics") == 200

    # The dashboard is opened once with the token in its address; the cookie carries it on.
    cookies = urllib.request.HTTPCookieProcessor()
    browser = urllib.request.build_opener(cookies)
    with browser.open(f"{running.url}/?access_token={TOKEN}", timeout=10) as page:
        assert page.status == 200
    with browser.open(f"{running.url}/api/dyads", timeout=10) as answer:
        assert json.load(answer) == {"dyads": []}
    (cookie,) = cookies.cookiejar
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_the_stream_sends_index_updates_alerts_and_events_as_they_happen(
    kafka_broker: Broker, kafka_namespace: str, worker: Callable[..., WorkerProcess]
) -> None:
    running = worker().wait_for_web()

    async def listen() -> list[tuple[str, dict[str, Any]]]:
        received: list[tuple[str, dict[str, Any]]] = []
        async with aiohttp.ClientSession() as session, session.get(f"{running.url}/api/stream") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            replaying = asyncio.create_task(
                asyncio.to_thread(replay, ARTICLE, kafka_broker.bootstrap, kafka_namespace)
            )
            kind = ""
            resolved_by = None  # the record of the article's last alert: the crisis is over
            indexed: set[str] = set()
            async with asyncio.timeout(120):
                async for raw in stream.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        received.append((kind, data))
                        if kind == "alert" and data["reason_code"] == "crisis-resolved":
                            resolved_by = data["triggered_by"]
                        elif kind == "index":
                            indexed.add(data["triggered_by"])
                        # The topics are read side by side: the index update of the record
                        # that resolved the crisis may come just before its alert or just after.
                        if resolved_by is not None and resolved_by in indexed:
                            break
            await replaying
        return received

    received = asyncio.run(listen())
    kinds = {kind for kind, _ in received}
    assert kinds == {"index", "alert", "event"}
    levels = [data["level"] for kind, data in received if kind == "alert"]
    assert levels == ["watch", "warning", "watch"]
    assert any(data["event"]["event_id"] == "pkir24-005" for kind, data in received if kind == "event")


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/config"])
def test_the_api_describes_itself(
    kafka_broker: Broker, worker: Callable[..., WorkerProcess], path: str
) -> None:
    running = worker().wait_for_web()
    answer = running.get_json(path)
    if path == "/api/config":
        assert (answer["watch"], answer["warning"], answer["critical"]) == (6.0, 15.0, 30.0)
        assert answer["levels"] == ["normal", "watch", "warning", "critical"]
    else:
        assert {"/api/dyads/{dyad}/history", "/api/dyads/{dyad}/curve"} <= set(answer["paths"])
        assert "security" not in answer
