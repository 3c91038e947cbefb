"""Score tables as text: per crisis, per detector over the library, a sweep's grid, and the
alert budget. The report's page shows the same rows (page.py), so the two never disagree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from services.backtest.budget import TOP_DYADS, AlertBudget
from services.backtest.scoring import Aggregate, CrisisScore, Evaluation
from services.backtest.sweep import SweepPoint


def columns(headers: list[str], rows: list[list[str]]) -> Iterator[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, ["-" * width for width in widths], *rows):
        yield "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()


def _yes(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f} d"


def _tally(value: tuple[int, int] | None) -> str:
    return "—" if value is None else f"{value[0]}/{value[1]}"


def score_row(score: CrisisScore) -> list[str]:
    return [
        score.crisis[:48],
        score.dyad,
        score.detector,
        _yes(score.onset_detected),
        _days(score.onset_delay_days),
        _yes(score.warning_reached),
        _yes(score.de_escalation_detected),
        _days(score.de_escalation_delay_days),
        f"{score.false_alarms} in {score.calm_days} d",
        "yes" if score.expectations_met else "NO",
    ]


SCORE_HEADERS = [
    "crisis",
    "dyad",
    "detector",
    "onset",
    "delay",
    "warning",
    "de-escalation",
    "delay",
    "false alarms (calm)",
    "as expected",
]


def aggregate_row(total: Aggregate) -> list[str]:
    return [
        total.detector,
        _tally(total.onsets),
        _days(total.median_onset_delay_days),
        _tally(total.warnings),
        _tally(total.de_escalations),
        _days(total.median_de_escalation_delay_days),
        str(total.false_alarms),
        f"{total.false_alarms_per_30_calm_days:g}",
        _tally(total.expectations_met),
    ]


AGGREGATE_HEADERS = [
    "detector",
    "onsets",
    "median delay",
    "warnings",
    "de-escalations",
    "median delay",
    "false alarms",
    "per 30 calm d",
    "as expected",
]


def render_scores(evaluation: Evaluation) -> Iterator[str]:
    yield "Scores per labelled crisis (delays from the labelled onset and resolution):"
    yield from columns(SCORE_HEADERS, [score_row(score) for score in evaluation.scores])
    yield ""
    yield "Over the library:"
    yield from columns(AGGREGATE_HEADERS, [aggregate_row(total) for total in evaluation.aggregates])


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _moment(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"


def budget_span(budget: AlertBudget) -> str:
    return f"{_moment(budget.first)} → {_moment(budget.last)} UTC: {budget.span_days:.1f} days"


BUDGET_HEADERS = ["alerts", "count", "per 30 d"]


def budget_rows(budget: AlertBudget) -> list[list[str]]:
    """All alerts, by kind, and the rises by the level they reached."""
    counted = [
        ("all", budget.alerts),
        *budget.by_kind.items(),
        *((f"rises to {level}", count) for level, count in budget.rises_to.items()),
        ("rises to warning or higher", budget.rises_to_warning_or_higher),
    ]
    return [[name, str(count), _rate(budget.per_30_days(count))] for name, count in counted]


TOP_DYADS_HEADERS = ["dyad", "alerts", "rises", "alerts per 30 d"]


def top_dyad_rows(budget: AlertBudget) -> list[list[str]]:
    return [
        [top.dyad, str(top.alerts), str(top.rises), _rate(budget.per_30_days(top.alerts))]
        for top in budget.top_dyads
    ]


def render_budget(budget: AlertBudget) -> Iterator[str]:
    yield f"Alert budget over every dyad, per 30 days of event time ({budget_span(budget)}):"
    yield from columns(BUDGET_HEADERS, budget_rows(budget))
    if budget.top_dyads:
        yield ""
        yield f"Dyads that raise most alerts (top {TOP_DYADS}):"
        yield from columns(TOP_DYADS_HEADERS, top_dyad_rows(budget))


SWEEP_BUDGET_HEADERS = ["alerts/30 d", "warning+/30 d"]
"""The run's alerts per 30 days over every dyad, and its rises to warning or critical."""


def sweep_headers(points: list[SweepPoint]) -> list[str]:
    """The settings swept, the engine's scores, its budget beside the false alarms, then
    whether it met the expectations."""
    names = list(points[0].settings) if points else []
    return [*names, *AGGREGATE_HEADERS[1:-1], *SWEEP_BUDGET_HEADERS, AGGREGATE_HEADERS[-1]]


def sweep_row(point: SweepPoint) -> list[str]:
    """One setting's row; a combination that was not run says why, in its first score cell."""
    settings = list(point.settings.values())
    engine, budget = point.engine, point.budget
    if engine is None or budget is None:
        return [*settings, f"not run: {point.error}"]
    scores = aggregate_row(engine)[1:]
    rates = [
        _rate(budget.per_30_days(budget.alerts)),
        _rate(budget.per_30_days(budget.rises_to_warning_or_higher)),
    ]
    return [*settings, *scores[:-1], *rates, scores[-1]]


def render_sweep(points: list[SweepPoint]) -> Iterator[str]:
    headers = sweep_headers(points)
    rows = [sweep_row(point) for point in points]
    yield "Sweep (the engine over the labelled library, one row per setting; the budget over every dyad):"
    yield from columns(headers, [row + [""] * (len(headers) - len(row)) for row in rows])
