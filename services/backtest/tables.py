"""Score tables as text: per crisis, per detector over the library, and a sweep's grid."""

from __future__ import annotations

from collections.abc import Iterator

from services.backtest.scoring import Aggregate, CrisisScore, Evaluation
from services.backtest.sweep import SweepPoint


def columns(headers: list[str], rows: list[list[str]]) -> Iterator[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, ["-" * width for width in widths], *rows):
        yield "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()


def _yes(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "NO")


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


def render_sweep(points: list[SweepPoint]) -> Iterator[str]:
    names = list(points[0].settings) if points else []
    rows = []
    for point in points:
        settings = [point.settings[name] for name in names]
        engine = point.engine
        rows.append(
            settings + (aggregate_row(engine)[1:] if engine else [f"not run: {point.error}"] + [""] * 7)
        )
    yield "Sweep (the engine over the labelled library, one row per setting):"
    yield from columns(names + AGGREGATE_HEADERS[1:], rows)
