"""The backtest report: a self-contained page that escapes event text, and its PNGs."""

from __future__ import annotations

import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes

from schemas.outputs import Level
from services.backtest import report
from services.backtest.budget import run_budget
from services.backtest.charts import dyad_figure
from services.backtest.labels import CrisisLabels
from services.backtest.page import inputs_read
from services.backtest.report import write_report
from services.backtest.run import BacktestResult, run_backtest
from services.backtest.tables import budget_span
from services.core.config import EngineConfig
from services.core.curve import AnchorTrail, sample
from services.core.decay import decayed
from tests.curves import NORMAL_DYAD, expected_normal, write_dyad_with_a_normal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XSS = "<script>alert(1)</script>"
IMG_XSS = '<img src=x onerror="alert(1)">'
JAVASCRIPT_URL = "javascript:alert(document.cookie)"


def _event(
    event_id: str,
    when: str,
    cameo: str,
    summary: str,
    source: str = "IRN",
    target: str = "PAK",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": when,
        "time_precision": "day",
        "source": {
            "code": f"{source}GOV",
            "name": f"{source} (government)",
            "country": source,
        },
        "target": {
            "code": f"{target}GOV",
            "name": f"{target} (government)",
            "country": target,
        },
        "cameo_code": cameo,
        "summary": summary,
        "provenance": {
            "document": "seeds/test.txt",
            "quote": "a quote",
            "coded_by": "tests",
        },
    }


@pytest.fixture
def result(tmp_path: Path) -> BacktestResult:
    rows = [
        _event("t-001", "2024-01-15T12:00:00Z", "042", "A visit to Islamabad."),
        _event("t-002", "2024-01-16T16:00:00Z", "195", "Iran strikes in Balochistan."),
        _event("t-003", "2024-01-17T12:00:00Z", "111", XSS),
        _event("t-004", "2024-01-18T12:00:00Z", "042", "A visit.", "CHN", "PAK"),
    ]
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(row) for row in rows] + ['{"event_id": "broken"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_backtest([path], EngineConfig())


def test_report_is_self_contained_and_escapes_event_text(result: BacktestResult, tmp_path: Path) -> None:
    alerts = [a for a in result.alerts if a.dyad == "IRN-PAK"]
    assert alerts, "the -10 event should raise an alert"

    page = write_report(result, tmp_path / "report")

    assert page == tmp_path / "report" / "index.html"
    assert page.is_file()
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    assert "IRN-PAK" in text and "CHN-PAK" in text
    for alert in alerts:
        assert alert.alert_id in text
    assert XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text
    assert result.config.computed_with.config_hash in text
    png = (tmp_path / "report" / "IRN-PAK.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert (tmp_path / "report" / "CHN-PAK.png").read_bytes().startswith(PNG_SIGNATURE)


def test_embedded_charts_are_the_files_beside_the_page(result: BacktestResult, tmp_path: Path) -> None:
    page = write_report(result, tmp_path)
    embedded = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.read_text())
    files = {(tmp_path / f"{d}.png").read_bytes() for d in result.dyads}
    assert {base64.b64decode(data) for data in embedded} == files


def test_curves_jump_at_updates_and_decay_between(result: BacktestResult) -> None:
    half_life = result.config.half_life_seconds
    steps = result.dyads["IRN-PAK"].steps
    curves = sample(result.dyads["IRN-PAK"].trail.anchors, half_life)
    assert curves is not None
    updates = [s.outcome.index_update for s in steps if s.outcome.index_update]
    last_per_time = {update.as_of: update for update in updates}  # updates at one time: one jump
    assert curves.times == sorted(curves.times)
    assert curves.escalation[0] == 0.0
    for update in last_per_time.values():
        at = update.as_of.timestamp()
        assert update.escalation_index in [
            e for t, e in zip(curves.times, curves.escalation, strict=True) if t == at
        ]
    last = updates[-1]
    end = last.as_of.timestamp() + 3 * half_life
    assert curves.times[-1] == pytest.approx(end)
    assert curves.escalation[-1] == pytest.approx(
        decayed(last.escalation_index, last.as_of.timestamp(), end, half_life)
    )


def test_a_curve_holds_each_updates_normal_until_the_next() -> None:
    """The engine judges a dyad only at its records: between two, the normal is the first's."""
    trail = AnchorTrail()
    trail.add(0.0, 0.0, 10.0, 0.0, 4.0)
    trail.add(100.0, 100.0, 12.0, 1.0, 5.0)
    trail.add(100.0, 100.0, 13.0, 1.0, 6.0)  # a second record at that time: the state after both
    trail.add(100.0, 250.0, 9.0, 1.0, 2.0)  # a retraction issued later: drawn where it was issued
    curve = sample(trail.anchors, half_life=1_000.0)
    assert curve is not None
    normal = dict(enumerate(curve.escalation_baseline))
    assert len(normal) == len(curve.times) == len(curve.escalation)

    def shown(low: float, high: float) -> set[float]:
        return {normal[i] for i, time in enumerate(curve.times) if low < time < high}

    assert shown(-math.inf, 0.0) == {0.0}
    assert shown(0.0, 100.0) == {4.0} and shown(100.0, 250.0) == {6.0} and shown(250.0, math.inf) == {2.0}
    at = {time: [normal[i] for i, t in enumerate(curve.times) if t == time] for time in (0.0, 100.0, 250.0)}
    assert at == {0.0: [0.0, 4.0], 100.0: [4.0, 6.0], 250.0: [6.0, 2.0]}  # before the jump, then after


def test_curves_carry_the_normal_each_update_was_judged_against(tmp_path: Path) -> None:
    config = EngineConfig()
    result = run_backtest([write_dyad_with_a_normal(tmp_path / "normal.jsonl")], config)
    trace = result.dyads[NORMAL_DYAD]
    updates = [step.outcome.index_update for step in trace.steps if step.outcome.index_update]
    curve = sample(trace.trail.anchors, config.half_life_seconds)
    assert curve is not None
    assert curve.escalation_baseline == expected_normal(curve.times, updates)
    assert len({normal for normal in curve.escalation_baseline if normal > 0}) > 1, "a normal that moves"


def test_a_quiet_dyads_curve_has_no_normal(result: BacktestResult) -> None:
    curve = sample(result.dyads["IRN-PAK"].trail.anchors, result.config.half_life_seconds)
    assert curve is not None and set(curve.escalation_baseline) == {0.0}


def drawn(axes: Axes) -> dict[str, list[float]]:
    """The values of a chart's lines, by their labels."""
    return {
        str(line.get_label()): np.asarray(line.get_ydata(), dtype=float).tolist() for line in axes.get_lines()
    }


def test_the_chart_draws_the_thresholds_on_the_dyads_normal(tmp_path: Path) -> None:
    config = EngineConfig()
    result = run_backtest([write_dyad_with_a_normal(tmp_path / "normal.jsonl")], config)
    trace = result.dyads[NORMAL_DYAD]
    curve = sample(trace.trail.anchors, config.half_life_seconds)
    assert curve is not None
    (axes,) = dyad_figure(NORMAL_DYAD, curve, trace.alerts, config).axes
    lines = drawn(axes)
    assert lines["normal"] == curve.escalation_baseline
    for level in (Level.WATCH, Level.WARNING, Level.CRITICAL):
        threshold = config.threshold(level)
        assert lines[f"{level} threshold"] == pytest.approx(
            [b + threshold for b in curve.escalation_baseline]
        )
        assert lines[f"{level} clearing"] == pytest.approx(
            [b + threshold * config.clearing_ratio for b in curve.escalation_baseline]
        )
    legend = [text.get_text() for legend in axes.figure.legends for text in legend.get_texts()]
    assert "normal (E's baseline)" in legend and "normal + threshold" in legend


def test_a_quiet_dyads_chart_keeps_its_flat_thresholds(result: BacktestResult) -> None:
    config = result.config
    trace = result.dyads["IRN-PAK"]
    curve = sample(trace.trail.anchors, config.half_life_seconds)
    assert curve is not None
    (axes,) = dyad_figure("IRN-PAK", curve, trace.alerts, config).axes
    lines = drawn(axes)
    assert "normal" not in lines
    assert set(lines["watch threshold"]) == {config.watch_threshold}
    assert set(lines["critical threshold"]) == {config.critical_threshold}


def test_dyad_without_index_update_is_listed_without_chart(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    retraction = {
        "retraction_id": "r-001",
        "retracts": "never-seen",
        "dyad": "IRN-PAK",
        "event_time": "2024-01-17T09:00:00Z",
        "reason": "withdrawn <b>",
        "retracted_by": "tests",
    }
    path.write_text(json.dumps(retraction) + "\n", encoding="utf-8")
    result = run_backtest([path], EngineConfig())
    assert list(result.dyads) == ["IRN-PAK"]

    text = write_report(result, tmp_path / "out").read_text()

    assert "IRN-PAK" in text
    assert "nothing to draw" in text
    assert "withdrawn &lt;b&gt;" in text
    assert not (tmp_path / "out" / "IRN-PAK.png").exists()


class _Markup(HTMLParser):
    """The page's elements and attributes, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def test_untrusted_event_text_never_becomes_markup(tmp_path: Path) -> None:
    row = _event("t-001", "2024-01-16T16:00:00Z", "195", f"Strike. {IMG_XSS}")
    row["source"]["name"] = f'Iran" onmouseover="alert(1) {XSS}'
    row["provenance"] = {"document": JAVASCRIPT_URL, "quote": XSS, "coded_by": IMG_XSS}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = run_backtest([path], EngineConfig())

    text = write_report(result, tmp_path / "report").read_text(encoding="utf-8")
    markup = _Markup()
    markup.feed(text)

    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in text
    assert "Iran&#34; onmouseover=&#34;alert(1) &lt;script&gt;" in text
    assert "script" not in markup.tags
    assert not [name for _, name, _ in markup.attributes if name.startswith("on")]
    links = [value for _, name, value in markup.attributes if name == "href"]
    assert links and all(link.startswith("#") for link in links)  # only to the page's own sections
    images = [value for tag, name, value in markup.attributes if tag == "img" and name == "src"]
    assert images and all(image.startswith("data:image/png;base64,") for image in images)


def test_the_page_shows_the_alert_budget(result: BacktestResult, tmp_path: Path) -> None:
    text = write_report(result, tmp_path / "report").read_text(encoding="utf-8")
    budget = run_budget(result)
    assert budget.alerts == len(result.alerts) >= 1
    assert 'id="alert-budget"' in text
    assert budget_span(budget) in text  # 2024-01-15 12:00 → 2024-01-18 12:00 UTC: 3.0 days
    assert budget.span_days == 3.0
    rate = f"{budget.per_30_days(budget.alerts):.2f}"
    assert f"<tr><td>all</td><td>{budget.alerts}</td><td>{rate}</td></tr>" in text
    assert '<tr><td><a href="#IRN-PAK">IRN-PAK</a></td>' in text  # the top dyads link to their sections


def test_a_large_run_charts_the_labelled_dyads_and_those_that_alert_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _event("t-001", "2024-01-15T12:00:00Z", "042", "A visit.", "CHN", "PAK"),
        _event("t-002", "2024-01-16T16:00:00Z", "195", "A strike.", "IRN", "PAK"),
        _event("t-003", "2024-01-17T12:00:00Z", "042", "A visit.", "CHN", "IRN"),
        _event("t-004", "2024-01-18T12:00:00Z", "042", "Another visit.", "CHN", "IRN"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = run_backtest([path], EngineConfig())
    assert [d for d, trace in result.dyads.items() if trace.alerts] == ["IRN-PAK"]
    calm = CrisisLabels.model_validate(
        {
            "name": "China–Pakistan calm",
            "dyad": "CHN-PAK",
            "covers": {"from": "2024-01-01", "to": "2024-01-31"},
            "expect": {"escalation": False, "warning": False, "de_escalation": False},
        }
    )
    monkeypatch.setattr(report, "CHART_EVERY_DYAD_UP_TO", 2)  # three dyads: a large run here
    monkeypatch.setattr(report, "CHARTED_BY_ALERTS", 0)

    plan = report.layout(result, ["CHN-PAK"])
    page = write_report(result, tmp_path / "out", [calm])
    text = page.read_text(encoding="utf-8")

    assert (plan.charted, plan.sections, plan.listed) == (["CHN-PAK"], ["CHN-PAK", "IRN-PAK"], ["CHN-IRN"])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["CHN-PAK.png"]
    assert "Not charted" in text and 'id="IRN-PAK"' in text
    assert all(alert.alert_id in text for alert in result.alerts)  # its alerts are still shown
    assert '<h2 id="other-dyads">Other dyads (1)</h2>' in text
    assert "<tr><td>CHN-IRN</td><td>2</td><td>normal</td></tr>" in text
    assert 'id="CHN-IRN"' not in text


def test_the_page_counts_an_archives_members_under_the_archive() -> None:
    members = [f"q4.zip!2018100{day}-icews-events.tab" for day in range(1, 4)]
    assert inputs_read(["a.jsonl", *members, "b.zip!only.tab"]) == [
        "a.jsonl",
        "q4.zip (3 files)",
        "b.zip (1 file)",
    ]
