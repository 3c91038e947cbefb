"""A backtest as a report a person can read: charts of the dyads and one HTML page.

This module only decides what goes in which file and which dyads are drawn: charts.py draws,
page.py writes the HTML. The PNGs are kept beside the page (which also embeds them) for slides
and diffs; with labels, the scores (and the alert budget) are also in scores.json, for scripts.

A small run charts every dyad. A large one (a quarter of ICEWS has some 3,000 dyads) charts
the labelled dyads and the dyads that raise most alerts: a chart per dyad would take many
minutes and make a page of hundreds of megabytes. The other dyads with alerts keep a section
with their alerts; the rest are one line each in a table.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from services.backtest.budget import run_budget
from services.backtest.charts import render_dyad_chart, render_sweep_chart
from services.backtest.labels import CrisisLabels
from services.backtest.page import Layout, dyad_slug, render_page
from services.backtest.run import BacktestResult
from services.backtest.scoring import Evaluation
from services.backtest.sweep import SweepPoint
from services.core.curve import sample

CHART_EVERY_DYAD_UP_TO = 40
"""A run with at most this many dyads gets a chart and a section for each."""
CHARTED_BY_ALERTS = 20
"""Past that, the labelled dyads are charted, and this many more: those that raise most alerts."""


def layout(result: BacktestResult, labelled: Iterable[str]) -> Layout:
    """Which dyads are charted, which get a section, and which are only listed."""
    dyads = list(result.dyads)
    if len(dyads) <= CHART_EVERY_DYAD_UP_TO:
        return Layout(charted=dyads, sections=dyads, listed=[])
    traces = result.dyads
    alerting = sorted((d for d in dyads if traces[d].alert_count), key=lambda d: (-traces[d].alert_count, d))
    first = [d for d in dict.fromkeys(labelled) if d in traces]
    charted = first + [d for d in alerting if d not in first][:CHARTED_BY_ALERTS]
    sections = charted + [d for d in alerting if d not in charted]
    shown = set(sections)
    listed = sorted((d for d in dyads if d not in shown), key=lambda d: (-traces[d].records, d))
    return Layout(charted=charted, sections=sections, listed=listed)


def write_report(
    result: BacktestResult,
    directory: Path,
    crises: list[CrisisLabels] | None = None,
    evaluation: Evaluation | None = None,
    sweep: list[SweepPoint] | None = None,
) -> Path:
    """Writes the PNG charts (and the sweep's) and an index.html embedding them."""
    directory.mkdir(parents=True, exist_ok=True)
    labelled = {labels.dyad: labels for labels in crises or []}
    plan = layout(result, labelled)
    budget = evaluation.budget if evaluation and evaluation.budget else run_budget(result)
    charts: dict[str, bytes] = {}
    for dyad in plan.charted:
        trace = result.dyads[dyad]
        curves = sample(trace.trail.anchors, result.config.half_life_seconds)
        if curves is None:
            continue
        chart = render_dyad_chart(dyad, curves, trace.alerts, result.config, labelled.get(dyad))
        (directory / f"{dyad_slug(dyad)}.png").write_bytes(chart)
        charts[dyad] = chart
    sweep_chart = render_sweep_chart(sweep, evaluation) if sweep else None
    if sweep_chart is not None:
        (directory / "sweep.png").write_bytes(sweep_chart)
    if evaluation is not None:
        (directory / "scores.json").write_text(scores_json(evaluation, sweep), encoding="utf-8")
    page = directory / "index.html"
    page.write_text(
        render_page(result, charts, evaluation, sweep, sweep_chart, budget, plan), encoding="utf-8"
    )
    return page


def scores_json(evaluation: Evaluation, sweep: list[SweepPoint] | None) -> str:
    """The score tables for scripts: per crisis, per detector, the sweep's rows (each with its
    alert budget), and the run's alert budget over every dyad."""
    document: dict[str, object] = {
        "scores": [dataclasses.asdict(score) for score in evaluation.scores],
        "aggregates": [dataclasses.asdict(total) for total in evaluation.aggregates],
        "sweep": [
            {
                "settings": point.settings,
                "engine": dataclasses.asdict(point.engine) if point.engine else None,
                "budget": point.budget.as_json() if point.budget else None,
                "error": point.error,
            }
            for point in sweep or []
        ],
    }
    if evaluation.budget is not None:
        document["budget"] = evaluation.budget.as_json()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
