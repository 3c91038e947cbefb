"""docker-compose.yml, run for real: images built here, the article replayed through the stack.

The stack is docker-compose.yml with deploy/compose.host-network.yml (every service on the host
network, images built on a local Debian base: see devtools/compose_stack.py), started once for
this module: Kafka, the topics, two workers, the dashboard's proxy and Prometheus. The tests
share it and run in file order; the last takes it down and up again. `make test-compose` runs
only this file. Building from nothing takes minutes (Docker Compose from Go modules, the Debian
base, the images); later runs reuse what was built. In a whole session the build runs in the
background from when the tests start, and these tests run last (tests/compose_fixtures.py).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from playwright.sync_api import expect

from devtools.compose_stack import ComposeStack, StackImages, StackPorts, running_stack, tail
from schemas.topics import PARTITIONS, Topics
from tests.browser import opened_browser
from tests.live import (
    backtest_alert_ids,
    by_dyad,
    eventually,
    metric_samples,
    read_alerts,
    read_topic,
    replay,
)
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
ARTICLE = ROOT / "replay" / "data" / "pakistan-iran-2024.jsonl"
"""What the compose `replay` service replays."""
TOPICS = Topics()
"""The stack's topics: no namespace."""
PROCESSING_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def stack(stack_images: StackImages) -> Iterator[ComposeStack]:
    """The stack, up, after the compose `replay` service replayed the article into it."""
    project = f"crisismon-test-{uuid.uuid4().hex[:8]}"
    with running_stack(stack_images, project, lambda: StackPorts(*free_ports(7))) as running:
        output = running.replay()
        assert "26 records produced, 0 failed" in output, output
        yield running


@pytest.fixture(scope="module")
def expected() -> dict[str, list[str]]:
    """The backtest's alert ids per dyad, which the live stack must give."""
    ids = backtest_alert_ids(ARTICLE)
    assert ids, "the article raises alerts"
    return ids


def waited(stack: ComposeStack, check: Callable[[], Any], timeout: float, what: str) -> Any:
    """`eventually`, trying again when a service does not answer yet, with the stack's logs in the
    failure: they say what the services did."""

    def attempt() -> Any:
        try:
            return check()
        except OSError:  # refused, reset, timed out: not up yet, or restarting
            return None

    try:
        return eventually(attempt, timeout, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- the stack's logs ---\n{tail(stack.logs())}") from None


def dashboard_url(stack: ComposeStack) -> str:
    """The dashboard's proxy (the `dashboard` service), in front of the `api` service."""
    return f"http://127.0.0.1:{stack.ports.dashboard}"


def worker_urls(stack: ComposeStack) -> list[str]:
    return [f"http://127.0.0.1:{port}" for port in (stack.ports.worker, stack.ports.worker_2)]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


def api_alert_ids(stack: ComposeStack) -> dict[str, list[str]]:
    body = get(f"{dashboard_url(stack)}/api/alerts")
    seen: dict[str, list[str]] = {}
    for alert in json.loads(body)["alerts"]:
        seen.setdefault(alert["dyad"], []).append(alert["alert_id"])
    return {dyad: sorted(ids) for dyad, ids in seen.items()}


def sorted_ids(ids: dict[str, list[str]]) -> dict[str, list[str]]:
    return {dyad: sorted(found) for dyad, found in ids.items()}


def prometheus(stack: ComposeStack, query: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    url = f"http://127.0.0.1:{stack.ports.prometheus}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    body = get(url)
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def partitions_of(url: str) -> set[int]:
    """The partitions of crisis.events a worker reports its lag on: the ones assigned to it."""
    return {
        int(sample.labels["partition"])
        for sample in metric_samples(url, "crisismon_consumer_lag_records")
        if sample.labels["topic"] == TOPICS.events
    }


def outcomes(urls: list[str]) -> dict[str, float]:
    """The workers' records by outcome since they started (`crisismon_events_total`), summed."""
    counted: dict[str, float] = {}
    for url in urls:
        for sample in metric_samples(url, "crisismon_events_total"):
            outcome = sample.labels["outcome"]
            counted[outcome] = counted.get(outcome, 0.0) + sample.value
    return counted


def test_the_dashboard_and_the_api_answer_with_the_backtests_alerts(
    stack: ComposeStack, expected: dict[str, list[str]]
) -> None:
    waited(
        stack,
        lambda: api_alert_ids(stack) == sorted_ids(expected),
        PROCESSING_TIMEOUT,
        f"/api/alerts to list the backtest's alerts {expected}",
    )
    # In a browser, through the `dashboard` proxy: the page, its scripts, and its live stream.
    with opened_browser() as browser:
        browser.page.goto(dashboard_url(stack) + "/")
        expect(browser.page.locator("#connection")).to_have_attribute("data-state", "live")
        alerts = sum(len(ids) for ids in expected.values())
        expect(browser.page.locator("#alerts details.alert")).to_have_count(alerts)
        assert browser.problems() == []


def test_the_alerts_topic_holds_the_backtests_ids(
    stack: ComposeStack, expected: dict[str, list[str]]
) -> None:
    waited(
        stack,
        lambda: by_dyad(read_alerts(stack.bootstrap, TOPICS.namespace)) == expected,
        PROCESSING_TIMEOUT,
        f"crisis.alerts to hold the backtest's alerts {expected}",
    )


def test_two_workers_split_the_partitions(stack: ComposeStack) -> None:
    def split() -> bool:
        first, second = (partitions_of(url) for url in worker_urls(stack))
        return bool(first and second) and not first & second and first | second == set(range(PARTITIONS))

    waited(stack, split, 60, "each worker to own a share of the partitions, together all of them")
    for url in worker_urls(stack):  # the view is the `api` service's alone
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"{url}/api/dyads")
        assert refused.value.code == 404 and b"api_view is off" in refused.value.read()


def test_prometheus_scrapes_both_workers_and_its_crisis_warning_fired(stack: ComposeStack) -> None:
    def both_up() -> bool:
        up = prometheus(stack, 'up{job="crisismon-worker"}')
        return len(up) == 2 and all(series["value"][1] == "1" for series in up)

    waited(stack, both_up, 60, "Prometheus to scrape both workers")
    # The article's dyad was at warning for nine days of event time, 18 s of the replay: its
    # alert fired then (ALERTS keeps the firing alert's series) and has since resolved.
    fired = 'max_over_time(ALERTS{alertname="CrisisWarning", alertstate="firing", dyad="IRN-PAK"}[1h])'
    waited(stack, lambda: prometheus(stack, fired), 60, "CrisisWarning to have fired for IRN-PAK")


def test_down_then_up_keeps_the_topics_and_the_state(
    stack: ComposeStack, expected: dict[str, list[str]]
) -> None:
    before = len(read_topic(stack.bootstrap, TOPICS.events))
    stack.down()
    stack.up()

    assert TOPICS.events in waited(stack, lambda: list_topics(stack.bootstrap), 30, "the topics")
    assert len(read_topic(stack.bootstrap, TOPICS.events)) == before
    waited(
        stack, lambda: api_alert_ids(stack) == sorted_ids(expected), PROCESSING_TIMEOUT, "the alerts again"
    )

    # The workers' tables came back from their changelogs (their RocksDB went with the
    # containers): the article again is all duplicates, and tells nothing new.
    replay(ARTICLE, stack.bootstrap, TOPICS.namespace)
    waited(
        stack, lambda: sum(outcomes(worker_urls(stack)).values()) >= 26, PROCESSING_TIMEOUT, "the repeat read"
    )
    counted = outcomes(worker_urls(stack))
    assert counted.get("accepted") == 0 and counted.get("corroborated") == 0, counted
    assert by_dyad(read_alerts(stack.bootstrap, TOPICS.namespace)) == expected


def list_topics(bootstrap: str) -> list[str]:
    async def names() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(names())
