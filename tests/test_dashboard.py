"""The dashboard in a real browser (Playwright with Debian's chromium) against a live worker.

The page is opened before the events are replayed, so what it shows arrives over /api/stream.
A screenshot of the crisis in progress is kept as a test artifact (it goes into the README):
`$CRISISMON_TEST_ARTIFACTS/dashboard.png`, by default `test-artifacts/dashboard.png`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devtools.broker import Broker
from services.core import EngineConfig
from tests.browser import Browser, opened_browser
from tests.curves import (
    DYAD,
    NORMAL_CASE_END,
    NORMAL_DYAD,
    PEAK,
    RETRACTED_AT,
    THREAT_AT,
    report_curve,
    shown_at,
    shown_before,
    write_dyad_with_a_normal,
    write_retracted_strike,
)
from tests.live import CRISISMON, WorkerProcess, clean_env, eventually, replay

REPO = Path(__file__).parent.parent
ARTICLE = REPO / "replay" / "data" / "pakistan-iran-2024.jsonl"
LIVE_SPEED = "43200"
"""Twelve hours of event time a second: the article's fortnight of crisis in about 30 s."""
ARRIVAL_MS = 20_000
"""How long the page may wait for records replayed a moment ago: through Kafka and the worker."""
STRIKE_QUOTE = "Iran carried out an airstrike inside Pakistani territory of Sabza Koh"
"""From pkir24-005's verbatim quote in the article file."""
ARTICLE_ALERTS = [  # newest first, as the feed shows them: (from, to, reason, event day)
    ("warning", "watch", "crisis-resolved", "2024-01-26"),
    ("watch", "warning", "level-rise", "2024-01-17"),
    ("normal", "watch", "level-rise", "2024-01-16"),
]


@pytest.fixture
def browser(kafka_namespace: str) -> Iterator[Browser]:
    # Depending on kafka_namespace closes the browser before the Kafka fixtures' teardown, which
    # needs asyncio.run (see opened_browser).
    with opened_browser() as opened:
        yield opened


def artifact(name: str) -> Path:
    folder = Path(os.environ.get("CRISISMON_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_the_article_plays_out_live_on_the_dashboard(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    browser: Browser,
    tmp_path: Path,
) -> None:
    bootstrap, page = kafka_broker.bootstrap, browser.page
    running = worker().wait_for_web()
    # The article opens with an attack a month before the crisis. Played at once, it leaves the
    # fortnight of crisis to play live, instead of a month of waiting first.
    first, *rest = ARTICLE.read_text().splitlines(keepends=True)
    prologue, crisis = tmp_path / "prologue.jsonl", tmp_path / "crisis.jsonl"
    prologue.write_text(first)
    crisis.write_text("".join(rest))
    replay(prologue, bootstrap, kafka_namespace)

    page.goto(running.url + "/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded
    playing = subprocess.Popen(
        [
            CRISISMON,
            "replay",
            str(crisis),
            "--speed",
            LIVE_SPEED,
            "--bootstrap",
            bootstrap,
            "--namespace",
            kafka_namespace,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    irn_pak = page.locator('.card[data-dyad="IRN-PAK"]')
    alerts = page.locator("#alerts details.alert")
    try:
        expect(irn_pak).to_have_attribute("data-level", "warning", timeout=30_000)
        expect(irn_pak.locator(".crisis-open")).to_contain_text("crisis open since 2024-01-17")
        # Cooperation resolves the crisis on Jan 26 (some 18 s of replay later): the level
        # steps down to watch. The alert to warning opens to the strike that drove it.
        expect(alerts.and_(page.locator('[data-reason="crisis-resolved"]'))).to_be_visible(timeout=30_000)
        expect(irn_pak).to_have_attribute("data-level", "watch")
        to_warning = alerts.and_(page.locator('[data-from="watch"][data-level="warning"]'))
        to_warning.locator("summary").click()
        strike = to_warning.locator('li.contributor[data-contributor="pkir24-005"]')
        expect(strike.locator("blockquote.quote")).to_contain_text(STRIKE_QUOTE)
        expect(strike.locator(".actors")).to_contain_text("Iran (armed forces)")
        expect(strike.locator(".cameo")).to_have_text("CAMEO 195")
        expect(strike.locator(".cameo")).to_have_attribute("title", "Employ aerial weapons")
        expect(strike.locator(".goldstein.escalation")).to_have_text("-10.0")
        expect(page.locator("#chart canvas").first).to_be_visible()
        page.screenshot(path=artifact("dashboard.png"), full_page=True)
        _, errors = playing.communicate(timeout=90)
        assert playing.returncode == 0, errors
    finally:
        if playing.poll() is None:
            playing.kill()
            playing.wait()

    expect(alerts).to_have_count(len(ARTICLE_ALERTS), timeout=ARRIVAL_MS)
    shown = [
        (
            alert.get_attribute("data-from"),
            alert.get_attribute("data-level"),
            alert.get_attribute("data-reason"),
            (alert.get_attribute("data-time") or "")[:10],
        )
        for alert in alerts.all()
    ]
    assert shown == ARTICLE_ALERTS
    assert all(alert.get_attribute("data-dyad") == "IRN-PAK" for alert in alerts.all())
    expect(irn_pak).to_have_attribute("data-level", "watch")  # resolved; the index not yet cleared
    expect(irn_pak.locator(".crisis-open")).to_have_count(0)
    expect(page.locator("#chart-alerts .marker")).to_have_count(len(ARTICLE_ALERTS))
    expect(page.locator("#events article.event")).to_have_count(len(rest) + 1)
    latest = page.locator('#events article[data-event-id="pkir24-026"]')
    expect(latest.locator(".quote")).to_contain_text("official visit to Pakistan on 29th January 2024")
    expect(page.locator("#clock")).to_have_text("2024-01-29 12:00 UTC")
    # Every card ends with the values the API holds, whatever order the topics were read in.
    for row in running.get_json("/api/dyads")["dyads"]:
        card = page.locator(f'.card[data-dyad="{row["dyad"]}"]')
        expect(card.locator(".value.e")).to_have_text(f"E{row['escalation_index']:.1f}")
        expect(card.locator(".value.d")).to_have_text(f"D{row['de_escalation_index']:.1f}")
    assert page.evaluate("window.__sameDocument") is True, "the updates came by reloading the page"
    # Clicking a card chooses the dyad the chart shows.
    page.locator('.card[data-dyad="CHN-PAK"]').click()
    expect(page.locator('.card[data-dyad="CHN-PAK"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#chart")).to_have_attribute("data-dyad", "CHN-PAK")
    expect(page.locator("#chart-alerts .marker")).to_have_count(0)
    assert browser.problems() == []


CHART_DATA = "() => window.__crisismonChart?.plot?.data ?? null"
"""What the chart draws, as uPlot holds it: [times (s), E, D, the normal E is judged against]."""


def test_the_chart_draws_the_reports_curve_through_a_retraction(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    browser: Browser,
    tmp_path: Path,
) -> None:
    """A strike, a threat a day later, the strike retracted two days after that: the peak at
    the threat stays, and E drops where the retraction was issued, as in the backtest's report."""
    page = browser.page
    running = worker().wait_for_web()
    page.goto(f"{running.url}/#{DYAD}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    case = write_retracted_strike(tmp_path / "retracted-strike.jsonl")
    replay(case, kafka_broker.bootstrap, kafka_namespace)
    report = report_curve(case, EngineConfig())

    def through_the_retraction() -> list[list[float]] | None:
        data: list[list[float]] | None = page.evaluate(CHART_DATA)
        return data if data and data[0] and data[0][-1] >= RETRACTED_AT else None

    def check(where: str) -> None:
        times, escalation, de_escalation, normal = eventually(
            through_the_retraction, ARRIVAL_MS / 1000, f"the chart to reach the retraction ({where})"
        )
        assert shown_at(times, escalation, THREAT_AT) == pytest.approx(PEAK, abs=0.005), where
        assert shown_at(times, escalation, RETRACTED_AT) < shown_before(times, escalation, RETRACTED_AT), (
            where
        )
        assert (times, escalation, de_escalation) == (
            pytest.approx(report.times),
            pytest.approx(report.escalation),
            pytest.approx(report.de_escalation),
        ), where
        assert normal == report.escalation_baseline == [0.0] * len(times), where  # no normal of its own

    check("as it arrived over the stream")
    page.reload()
    check("from the API after a reload")
    assert browser.problems() == []


def test_the_chart_puts_the_thresholds_on_the_dyads_normal(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    browser: Browser,
    tmp_path: Path,
) -> None:
    """Weeks of ordinary friction, then strikes: the chart gets the normal each update was judged
    against (it draws the thresholds on it), the report's, and names it in its legend."""
    page = browser.page
    running = worker().wait_for_web()
    page.goto(f"{running.url}/#{NORMAL_DYAD}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    case = write_dyad_with_a_normal(tmp_path / "normal.jsonl")
    replay(case, kafka_broker.bootstrap, kafka_namespace)
    report = report_curve(case, EngineConfig(), NORMAL_DYAD, NORMAL_CASE_END)
    assert len(report.times) <= 1500, "the chart asks for 1500 points: more would be thinned"

    def through_the_strikes() -> list[list[float]] | None:
        data: list[list[float]] | None = page.evaluate(CHART_DATA)
        return data if data and data[0] and data[0][-1] >= NORMAL_CASE_END else None

    times, _, _, normal = eventually(through_the_strikes, ARRIVAL_MS / 1000, "the chart to reach the strikes")
    assert times == pytest.approx(report.times)
    assert normal == pytest.approx(report.escalation_baseline)
    assert max(normal) > 0
    expect(page.locator("#chart .u-legend")).to_contain_text("normal")
    assert browser.problems() == []


INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
HOSTILE_NAME = '<b onmouseover="window.__pwned=3">Iran</b>'
HOSTILE_QUOTE = "<script>window.__pwned=6</script>“quoted” & <i>kept</i>"
HOSTILE_DOCUMENT = "javascript:window.__pwned=5"
HOSTILE_REASON = '<img src=y onerror="window.__pwned=8">withdrawn'
HOSTILE_RETRACTOR = "<script>window.__pwned=9</script>"
HOSTILE_ID = ".."


def hostile_records() -> list[dict[str, object]]:
    """A valid event (IRN→PAK, CAMEO 190) and its retraction, every free-text field markup, and
    an id, `..`, that a URL path cannot carry (the browser resolves it away)."""
    event: dict[str, object] = {
        "event_id": HOSTILE_ID,
        "event_time": "2024-03-01T12:00:00Z",
        "time_precision": "day",
        "source": {"code": "IRNMIL", "name": HOSTILE_NAME, "country": "IRN"},
        "target": {"code": "PAK", "name": "Pakistan<svg onload=window.__pwned=4>", "country": "PAK"},
        "cameo_code": "190",
        "summary": INJECTION,
        "provenance": {
            "document": HOSTILE_DOCUMENT,
            "quote": HOSTILE_QUOTE,
            "coded_by": "<iframe src=javascript:window.__pwned=7></iframe>",
        },
    }
    retraction: dict[str, object] = {
        "retraction_id": "xss-r1",
        "retracts": HOSTILE_ID,
        "dyad": "IRN-PAK",
        "event_time": "2024-03-01T13:00:00Z",
        "reason": HOSTILE_REASON,
        "retracted_by": HOSTILE_RETRACTOR,
    }
    return [event, retraction]


NOTHING_FROM_THE_DATA = """() => ({
    pwned: typeof window.__pwned,
    markup: document.querySelectorAll('img, iframe, b, i, main script, main svg:not(.sparkline)').length,
    handlers: [...document.querySelectorAll('*')].filter(
        (el) => [...el.attributes].some((a) => a.name.toLowerCase().startsWith('on'))).length,
    scripts: [...document.scripts].map((s) => s.getAttribute('src')),
    javascriptLinks: document.querySelectorAll('a[href^="javascript" i]').length,
})"""


def test_event_text_is_shown_as_text_never_as_markup(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    browser: Browser,
    tmp_path: Path,
) -> None:
    page = browser.page
    running = worker().wait_for_web()
    page.goto(running.url + "/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text("".join(json.dumps(record) + "\n" for record in hostile_records()))
    replay(hostile, kafka_broker.bootstrap, kafka_namespace)

    def check(where: str) -> None:
        shown = page.locator(f'#events article[data-event-id="{HOSTILE_ID}"]')
        expect(shown.locator(".summary")).to_have_text(INJECTION, timeout=ARRIVAL_MS)
        expect(shown.locator(".quote")).to_have_text(HOSTILE_QUOTE)
        expect(shown.locator(".actors")).to_contain_text(HOSTILE_NAME)
        expect(shown.locator(".provenance")).to_contain_text(HOSTILE_DOCUMENT)
        expect(shown).to_have_attribute("data-retracted", "true")
        expect(shown.locator(".retraction-reason")).to_have_text(HOSTILE_REASON)
        expect(shown.locator(".retracted-by")).to_have_text(HOSTILE_RETRACTOR)
        # The alert the event raised opens to it, shown as text there too.
        raised = page.locator('#alerts details.alert[data-reason="level-rise"]')
        raised.locator("summary").click()
        contributor = raised.locator(f'li.contributor[data-contributor="{HOSTILE_ID}"]')
        expect(contributor.locator(".summary")).to_have_text(INJECTION)
        found = page.evaluate(NOTHING_FROM_THE_DATA)
        assert found == {
            "pwned": "undefined",
            "markup": 0,
            "handlers": 0,
            "scripts": ["/static/vendor/uplot/uPlot.iife.min.js", "/static/app.js"],
            "javascriptLinks": 0,
        }, where

    check("as it arrived over the stream")
    page.reload()
    check("from the API after a reload")
    assert browser.problems() == []


def test_with_a_token_the_page_says_how_to_get_in(
    kafka_broker: Broker,
    kafka_namespace: str,
    worker: Callable[..., WorkerProcess],
    browser: Browser,
) -> None:
    page = browser.page
    running = worker("guarded", CRISISMON_API_TOKEN="first-token").wait_for_web()
    replay(ARTICLE, kafka_broker.bootstrap, kafka_namespace)

    refused = page.goto(running.url + "/")
    assert refused is not None and refused.status == 401
    expect(page.locator("body")).to_contain_text("/?access_token=<token>")

    opened = page.goto(running.url + "/?access_token=first-token")
    assert opened is not None and opened.status == 200
    irn_pak = page.locator('.card[data-dyad="IRN-PAK"]')
    expect(page.locator("#alerts details.alert")).to_have_count(len(ARTICLE_ALERTS), timeout=ARRIVAL_MS)
    expect(irn_pak).to_have_attribute("data-level", "watch", timeout=ARRIVAL_MS)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert "access_token" not in page.url, "the token stays in the address bar"
    assert page.evaluate("document.cookie") == "", "the token cookie is readable by scripts"

    # The worker comes back with another token: the open page loses the stream, then says how
    # to get in; opened once with the new token (in another tab), it carries on by itself.
    running.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    running.environment["CRISISMON_API_TOKEN"] = "second-token"
    running.start().wait_for_web()
    banner = page.locator("#banner")
    expect(banner).to_contain_text("/?access_token=", timeout=20_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "unauthorised")
    page.context.new_page().goto(running.url + "/?access_token=second-token")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=20_000)
    expect(banner).to_be_hidden()
    expect(irn_pak).to_be_visible()
    # Expected: the 401s, and the requests the stopped worker never answered (a card's history
    # may be loading the moment it goes).
    assert browser.problems("Failed to load resource", "TypeError: Failed to fetch") == []
