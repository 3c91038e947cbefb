"""The backtest report's HTML page, rendered from templates/report.html.j2.

Event and alert text is untrusted input, so the page goes through Jinja2 with autoescaping on
for every value: nothing here builds markup or marks a string safe. StrictUndefined turns a
misspelt name in the template into an error instead of an empty cell.

The page is self-contained (charts inlined as base64 PNG, CSS inline, no scripts, no network
references) so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from jinja2 import Environment, PackageLoader, StrictUndefined

from schemas.events import CrisisEvent
from services.backtest.budget import TOP_DYADS, AlertBudget, run_budget
from services.backtest.run import BacktestResult, DyadTrace
from services.backtest.scoring import Evaluation
from services.backtest.sweep import SweepPoint
from services.backtest.tables import (
    AGGREGATE_HEADERS,
    BUDGET_HEADERS,
    SCORE_HEADERS,
    aggregate_row,
    budget_rows,
    budget_span,
    score_row,
    sweep_headers,
    sweep_row,
    top_dyad_rows,
)
from services.core.config import EngineConfig, format_duration
from services.core.engine import Fate


@dataclass(frozen=True)
class Table:
    """Plain-text cells, escaped by the template like everything else."""

    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Scores:
    over_the_library: Table
    """One row per detector."""
    per_crisis: Table


@dataclass(frozen=True)
class Budget:
    span: str
    totals: Table
    top_dyads: list[tuple[str, str, list[str]]]
    """Each of the dyads that raise most alerts: its name, its anchor on the page (empty when it
    has no section), and its other cells."""
    top: int = TOP_DYADS


@dataclass(frozen=True)
class Layout:
    """Which dyads the report draws (report.py decides), which get a section, which a line."""

    charted: list[str]
    sections: list[str]
    listed: list[str]


@dataclass(frozen=True)
class DyadSection:
    name: str
    anchor: str
    trace: DyadTrace
    chart: bytes | None
    """None: not drawn, because the dyad had no index update or the run is too large (`charted`)."""
    charted: bool = True
    """False: left out of the charts of a large run (it still has its alerts)."""


def dyad_slug(dyad: str) -> str:
    """A dyad's anchor on the page and its chart's file name. Dyad keys are validated
    ('IRN-PAK'); a file name or an id still should not rely on it."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", dyad)


def render_page(
    result: BacktestResult,
    charts: Mapping[str, bytes],
    evaluation: Evaluation | None,
    sweep: list[SweepPoint] | None,
    sweep_chart: bytes | None,
    budget: AlertBudget | None = None,
    layout: Layout | None = None,
) -> str:
    """The whole page; `charts` holds the PNG of each dyad that has one. Without a layout,
    every dyad has a section."""
    every = list(result.dyads)
    plan = layout or Layout(charted=every, sections=every, listed=[])
    charted = set(plan.charted)
    sections = [
        DyadSection(dyad, dyad_slug(dyad), result.dyads[dyad], charts.get(dyad), dyad in charted)
        for dyad in plan.sections
    ]
    return _TEMPLATES.get_template("report.html.j2").render(
        result=result,
        inputs=inputs_read(result.read.inputs),
        configuration=_configuration(result.config),
        fate_counts=_fate_counts(result),
        scores=_scores(evaluation),
        budget=_budget(budget or run_budget(result), {section.name for section in sections}),
        sweep=_sweep(sweep),
        sweep_chart=sweep_chart,
        dyads=sections,
        charted=len(charts),
        listed=[(dyad, result.dyads[dyad]) for dyad in plan.listed],
    )


def inputs_read(names: list[str]) -> list[str]:
    """The inputs read, an archive's members counted under the archive ("a.zip (86 files)")."""
    members: dict[str, int] = {}
    for name in names:
        archive = name.split("!", 1)[0]
        members[archive] = members.get(archive, 0) + 1
    return [
        archive if count == 1 and archive in names else f"{archive} ({_plural(count, 'file')})"
        for archive, count in members.items()
    ]


def _configuration(config: EngineConfig) -> Table:
    stamp = config.computed_with
    rows = [
        ["Goldstein scale", stamp.scale],
        ["scale version", stamp.scale_version],
        ["config hash", stamp.config_hash],
        ["half-life", _duration(config.half_life_seconds)],
        ["watch threshold", f"{config.watch_threshold:g}"],
        ["warning threshold", f"{config.warning_threshold:g}"],
        ["critical threshold", f"{config.critical_threshold:g}"],
        ["clearing ratio", f"{config.clearing_ratio:g}"],
        ["non-state weight", f"{config.non_state_weight:g}"],
        ["baseline window", format_duration(config.baseline_window)],
        ["baseline lag", format_duration(config.baseline_lag)],
        ["baseline sigmas", f"{config.baseline_sigmas:g}"],
        ["baseline min events", str(config.baseline_min_events)],
        ["min dwell", format_duration(config.min_dwell)],
        ["crisis memory", format_duration(config.crisis_memory)],
    ]
    return Table(["setting", "value"], rows)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit} ({seconds:g} s)"
    return f"{seconds:g} s"


def _fate_counts(result: BacktestResult) -> list[tuple[str, int]]:
    """The engine's fates in its own order, then any other (e.g. 'no-dyad' from reading)."""
    counts = result.counts
    known: tuple[str, ...] = get_args(Fate)
    order = [s for s in known if counts[s]] + sorted(set(counts) - set(known))
    return [(fate, counts[fate]) for fate in order]


def _scores(evaluation: Evaluation | None) -> Scores | None:
    """The same rows as the command's text tables (tables.py), so the two never disagree."""
    if evaluation is None:
        return None
    return Scores(
        Table(AGGREGATE_HEADERS, [aggregate_row(total) for total in evaluation.aggregates]),
        Table(SCORE_HEADERS, [score_row(score) for score in evaluation.scores]),
    )


def _budget(budget: AlertBudget, sectioned: set[str]) -> Budget:
    """The same rows as the command's text (tables.py)."""
    top = [
        (row[0], dyad_slug(row[0]) if row[0] in sectioned else "", row[1:]) for row in top_dyad_rows(budget)
    ]
    return Budget(budget_span(budget), Table(BUDGET_HEADERS, budget_rows(budget)), top)


def _sweep(sweep: list[SweepPoint] | None) -> Table | None:
    """One row per setting: its scores over the library and its budget, or why it was not run."""
    if not sweep:
        return None
    return Table(sweep_headers(sweep), [sweep_row(point) for point in sweep])


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _is_event(record: object) -> bool:
    return isinstance(record, CrisisEvent)


_TEMPLATES = Environment(
    loader=PackageLoader("services.backtest", "templates"),
    autoescape=True,  # every template here is HTML, whatever its file name says
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters.update(plural=_plural, when=_when, png_data_uri=_png_data_uri)
_TEMPLATES.tests["event"] = _is_event
