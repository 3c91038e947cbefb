"""A backtest as a report a person can read: one chart per dyad and one HTML page.

This module only decides what goes in which file: charts.py draws, page.py writes the HTML.
The PNGs are kept beside the page (which also embeds them) for slides and diffs; with labels,
the scores are also in scores.json, for scripts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from services.backtest.charts import render_dyad_chart, render_sweep_chart
from services.backtest.labels import CrisisLabels
from services.backtest.page import dyad_slug, render_page
from services.backtest.run import BacktestResult
from services.backtest.scoring import Evaluation
from services.backtest.sweep import SweepPoint
from services.core.curve import sample


def write_report(
    result: BacktestResult,
    directory: Path,
    crises: list[CrisisLabels] | None = None,
    evaluation: Evaluation | None = None,
    sweep: list[SweepPoint] | None = None,
) -> Path:
    """Writes one PNG chart per dyad (and the sweep's) and an index.html embedding them."""
    directory.mkdir(parents=True, exist_ok=True)
    labelled = {labels.dyad: labels for labels in crises or []}
    charts: dict[str, bytes] = {}
    for dyad, trace in result.dyads.items():
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
    page.write_text(render_page(result, charts, evaluation, sweep, sweep_chart), encoding="utf-8")
    return page


def scores_json(evaluation: Evaluation, sweep: list[SweepPoint] | None) -> str:
    """The score tables for scripts: per crisis, per detector, and the sweep's rows."""
    document = {
        "scores": [dataclasses.asdict(score) for score in evaluation.scores],
        "aggregates": [dataclasses.asdict(total) for total in evaluation.aggregates],
        "sweep": [
            {
                "settings": point.settings,
                "engine": dataclasses.asdict(point.engine) if point.engine else None,
                "error": point.error,
            }
            for point in sweep or []
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
