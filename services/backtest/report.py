"""A backtest as a report a person can read: one chart per dyad and one HTML page.

With labels, the scores are on the page and in scores.json beside it, for scripts.

The page is self-contained (charts inlined as base64 PNG, CSS inline, no scripts, no
network references) so it can be mailed or archived as one file; the PNGs are also kept
beside it for slides and diffs. Everything that comes from an event or an alert is
HTML-escaped, because event text is untrusted input.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import re
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import get_args

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from schemas.events import CrisisEvent
from schemas.outputs import Alert, Level
from services.backtest.labels import CrisisLabels, midnight
from services.backtest.run import BacktestResult, DyadTrace, Step
from services.backtest.scoring import Evaluation
from services.backtest.sweep import SweepPoint
from services.backtest.tables import AGGREGATE_HEADERS, SCORE_HEADERS, aggregate_row, score_row
from services.core.config import EngineConfig
from services.core.curve import Curve, sample
from services.core.engine import Status
from services.core.timeutil import to_seconds

ESCALATION_COLOR = "#c0392b"
DE_ESCALATION_COLOR = "#1f6fb4"
LABEL_COLOR = "#5f3dc4"
BAND_COLORS = {
    Level.WATCH: "#fff3b0",
    Level.WARNING: "#ffd8a8",
    Level.CRITICAL: "#ffc9c9",
}
LINE_COLORS = {
    Level.WATCH: "#b59f00",
    Level.WARNING: "#d9480f",
    Level.CRITICAL: "#a61e1e",
}


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
    sections = []
    for dyad, trace in result.dyads.items():
        curves = sample(trace.trail.anchors, result.config.half_life_seconds)
        png: bytes | None = None
        if curves is not None:
            png = render_chart(dyad, curves, trace.alerts, result.config, labelled.get(dyad))
            (directory / f"{_file_stem(dyad)}.png").write_bytes(png)
        sections.append(_dyad_section(dyad, trace, png, result.complete_listing))
    sweep_png = None
    if sweep:
        sweep_png = render_sweep_chart(sweep, evaluation)
        (directory / "sweep.png").write_bytes(sweep_png)
    if evaluation is not None:
        (directory / "scores.json").write_text(scores_json(evaluation, sweep), encoding="utf-8")
    page = directory / "index.html"
    page.write_text(_page(result, sections, evaluation, sweep, sweep_png), encoding="utf-8")
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


def render_chart(
    dyad: str,
    curves: Curve,
    alerts: list[Alert],
    config: EngineConfig,
    labels: CrisisLabels | None = None,
) -> bytes:
    """One dyad's chart as PNG bytes (Agg, no pyplot: no global state, thread-safe)."""
    figure = Figure(figsize=(11, 5.2), dpi=110, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    times = [_date_number(t) for t in curves.times]
    peak = max([*curves.escalation, *curves.de_escalation, 0.0])
    top = max(peak, config.critical_threshold) * 1.12
    _draw_levels(axes, config, top)
    axes.plot(times, curves.escalation, color=ESCALATION_COLOR, linewidth=1.8)
    axes.plot(times, curves.de_escalation, color=DE_ESCALATION_COLOR, linewidth=1.8)
    _draw_alerts(axes, alerts)
    if labels is not None:
        _draw_labels(axes, labels, top)
    axes.set_ylim(0, top)
    axes.set_xlim(times[0], times[-1])
    axes.margins(x=0.01)
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(_date_formatter(locator))
    axes.set_xlabel("event time (UTC)")
    axes.set_ylabel("index")
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    figure.suptitle(f"{dyad}: escalation and de-escalation indices", x=0.01, ha="left")
    figure.legend(
        handles=_legend_handles(config),
        loc="outside lower center",
        ncols=6,
        fontsize=8.5,
        frameon=False,
    )
    buffer = BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _draw_levels(axes: Axes, config: EngineConfig, top: float) -> None:
    """Light bands above thresholds, a labelled line at each, dotted clearing lines."""
    levels = [Level.WATCH, Level.WARNING, Level.CRITICAL]
    bounds = [config.threshold(level) for level in levels] + [top]
    labels = axes.get_yaxis_transform()
    for level, low, high in zip(levels, bounds, bounds[1:], strict=False):
        color = LINE_COLORS[level]
        axes.axhspan(low, high, color=BAND_COLORS[level], alpha=0.45, linewidth=0)
        axes.axhline(low, color=color, linewidth=1.0, linestyle="--")
        axes.axhline(low * config.clearing_ratio, color=color, linewidth=0.7, linestyle=":")
        axes.text(
            1.005,
            low,
            f"{level} {low:g}",
            transform=labels,
            color=color,
            fontsize=9,
            va="center",
            ha="left",
            clip_on=False,
        )


def _draw_alerts(axes: Axes, alerts: list[Alert]) -> None:
    """▲ at E for escalation alerts, ▼ at D for de-escalation ones, with new level."""
    for alert in alerts:
        rising = alert.kind == "escalation"
        value = alert.escalation_index if rising else alert.de_escalation_index
        at = _date_number(to_seconds(alert.event_time))
        axes.plot(
            [at],
            [value],
            marker="^" if rising else "v",
            markersize=10,
            color=ESCALATION_COLOR if rising else DE_ESCALATION_COLOR,
            markeredgecolor="black",
            markeredgewidth=0.7,
            linestyle="none",
            zorder=5,
        )
        axes.annotate(
            f"→ {alert.level}",
            (at, value),
            xytext=(7, 8 if rising else -12),
            textcoords="offset points",
            bbox={
                "boxstyle": "round,pad=0.15",
                "fc": "white",
                "ec": "none",
                "alpha": 0.8,
            },
            fontsize=8,
            color="#333333",
            zorder=6,
        )


def _draw_labels(axes: Axes, labels: CrisisLabels, top: float) -> None:
    """The labelled onset, peak and resolution as vertical lines, calm periods hatched."""
    for period in labels.calm:
        start = _date_number(to_seconds(midnight(period.start)))
        end = _date_number(to_seconds(midnight(period.end)) + 86_400)
        axes.axvspan(start, end, facecolor="none", edgecolor="#999999", hatch="//", linewidth=0, alpha=0.35)
    marks = (("onset", labels.onset), ("peak", labels.peak), ("resolution", labels.resolution))
    for row, (name, day) in enumerate(marks):
        if day is None:
            continue
        at = _date_number(to_seconds(midnight(day)))
        axes.axvline(at, color=LABEL_COLOR, linewidth=1.2, linestyle="-.")
        height = top * (0.97 - 0.06 * row)  # staggered: onset and peak are often days apart
        axes.text(at, height, f" {name} {day:%d %b %Y}", color=LABEL_COLOR, fontsize=8, va="top")


def render_sweep_chart(points: list[SweepPoint], evaluation: Evaluation | None) -> bytes:
    """The trade-off: median onset delay against false alarms, one point per distinct outcome.

    Settings that score alike share a point, captioned with all of them (the usual case on a
    small library); the baselines are grey squares for reference.
    """
    figure = Figure(figsize=(10, 6), dpi=110, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    outcomes: dict[tuple[float, float], list[str]] = {}
    for point in points:
        engine = point.engine
        if engine is None or engine.median_onset_delay_days is None:
            continue
        caption = " ".join(f"{k}={v}" for k, v in point.settings.items())
        where = (engine.false_alarms_per_30_calm_days, engine.median_onset_delay_days)
        outcomes.setdefault(where, []).append(f"{caption} ({engine.onsets[0]}/{engine.onsets[1]} onsets)")
    baselines = [
        total
        for total in (evaluation.aggregates[1:] if evaluation else [])
        if total.median_onset_delay_days is not None
    ]
    for (x, y), captions in outcomes.items():
        axes.plot([x], [y], marker="o", markersize=8, color=ESCALATION_COLOR, linestyle="none", zorder=4)
        shown = captions[:4] + ([f"… and {len(captions) - 4} more"] if len(captions) > 4 else [])
        axes.annotate(
            "\n".join(shown), (x, y), xytext=(8, 0), textcoords="offset points", fontsize=7.5, va="center"
        )
    for total, marker in zip(baselines, "sD", strict=False):
        x, y = total.false_alarms_per_30_calm_days, total.median_onset_delay_days or 0.0
        axes.plot(
            [x],
            [y],
            marker=marker,
            markersize=7,
            color="#777777",
            linestyle="none",
            label=f"baseline: {total.detector}",
        )
    xs = [x for x, _ in outcomes] + [t.false_alarms_per_30_calm_days for t in baselines]
    right = max([*xs, 0.5])
    axes.set_xlim(-0.05 * right, right * 1.6)
    axes.margins(y=0.15)
    if baselines:
        axes.legend(loc="upper right", fontsize=8)
    axes.set_xlabel("false escalation alerts per 30 calm days")
    axes.set_ylabel("median onset delay (days)")
    axes.grid(color="#dddddd", linewidth=0.6)
    figure.suptitle("Sweep: detection delay against false alarms (lower left is better)", x=0.01, ha="left")
    buffer = BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _legend_handles(config: EngineConfig) -> list[Line2D]:
    return [
        Line2D([], [], color=ESCALATION_COLOR, linewidth=1.8, label="E escalation"),
        Line2D([], [], color=DE_ESCALATION_COLOR, linewidth=1.8, label="D de-escalation"),
        Line2D(
            [],
            [],
            marker="^",
            color=ESCALATION_COLOR,
            markeredgecolor="black",
            linestyle="none",
            label="escalation alert (at E)",
        ),
        Line2D(
            [],
            [],
            marker="v",
            color=DE_ESCALATION_COLOR,
            markeredgecolor="black",
            linestyle="none",
            label="de-escalation alert (at D)",
        ),
        Line2D([], [], color="#666666", linestyle="--", linewidth=1.0, label="threshold"),
        Line2D(
            [],
            [],
            color="#666666",
            linestyle=":",
            linewidth=0.7,
            label=f"clearing (× {config.clearing_ratio:g})",
        ),
    ]


def _date_formatter(locator: mdates.AutoDateLocator) -> mdates.ConciseDateFormatter:
    """Concise dates that always name the month ('17 Jan', not a bare '17')."""
    return mdates.ConciseDateFormatter(
        locator,
        tz=UTC,
        formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y", "%b %Y", "%d %b", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%Y", "%d %b %Y", "%d %b %Y", "%d %b %Y %H:%M"],
    )


def _date_number(seconds: float) -> float:
    """Matplotlib's date unit (days since its epoch) for Unix seconds."""
    return float(mdates.date2num(datetime.fromtimestamp(seconds, tz=UTC)))


def _file_stem(dyad: str) -> str:
    """Dyad keys are validated ('IRN-PAK'); a file name still should not rely on it."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", dyad)


# --- HTML -------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1250px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; }
table.counts td:last-child { text-align: right; }
code { font-size: 12px; }
img { max-width: 100%; height: auto; }
.muted { color: #777; }
.escalation { color: #c0392b; font-weight: 600; }
.de-escalation { color: #1f6fb4; font-weight: 600; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _page(
    result: BacktestResult,
    sections: list[str],
    evaluation: Evaluation | None,
    sweep: list[SweepPoint] | None,
    sweep_png: bytes | None,
) -> str:
    config = result.config
    stamp = config.computed_with
    config_rows = [
        ("Goldstein scale", stamp.scale),
        ("scale version", stamp.scale_version),
        ("config hash", stamp.config_hash),
        ("half-life", f"{_duration(config.half_life_seconds)}"),
        ("watch threshold", f"{config.watch_threshold:g}"),
        ("warning threshold", f"{config.warning_threshold:g}"),
        ("critical threshold", f"{config.critical_threshold:g}"),
        ("clearing ratio", f"{config.clearing_ratio:g}"),
    ]
    named = ", ".join(f"<code>{_e(path)}</code>" for path in result.read.inputs) or "none"
    summary = (
        f'<p class="muted">{_count(result.records, "record")}, '
        f"{_count(len(result.dyads), 'dyad')}, "
        f"{_count(len(result.alerts), 'alert')}. "
        f"Inputs: {named}.</p>"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            "<title>CrisisMon backtest report</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            "<h1>CrisisMon backtest report</h1>",
            summary,
            _scores(evaluation),
            _sweep(sweep, sweep_png),
            "<h2>Configuration</h2>",
            _table(["setting", "value"], [[_e(k), _e(v)] for k, v in config_rows]),
            "<h2>Records</h2>",
            _counts(result),
            _bad_rows(result),
            "<h2>Dyads</h2>",
            _dyad_list(result),
            *sections,
            "</body>",
            "</html>",
            "",
        ]
    )


def _scores(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return ""
    return "\n".join(
        [
            "<h2>Scores against the labels</h2>",
            _table(AGGREGATE_HEADERS, [[_e(c) for c in aggregate_row(t)] for t in evaluation.aggregates]),
            "<h3>Per crisis</h3>",
            _table(SCORE_HEADERS, [[_e(c) for c in score_row(s)] for s in evaluation.scores]),
            '<p class="muted">Delays are in days from the labelled onset (or resolution); negative is'
            " early. False alarms are escalation alerts inside the labelled calm periods.</p>",
        ]
    )


def _sweep(sweep: list[SweepPoint] | None, png: bytes | None) -> str:
    if not sweep:
        return ""
    names = list(sweep[0].settings)
    rows = [
        [_e(point.settings[n]) for n in names]
        + ([_e(c) for c in aggregate_row(point.engine)[1:]] if point.engine else [_e(point.error)])
        for point in sweep
    ]
    chart = _image(png, "sweep: onset delay against false alarms") if png else ""
    return "\n".join(["<h2>Sweep</h2>", chart, _table([*names, *AGGREGATE_HEADERS[1:]], rows)])


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit} ({seconds:g} s)"
    return f"{seconds:g} s"


def _counts(result: BacktestResult) -> str:
    counts = result.counts
    known: tuple[str, ...] = get_args(Status)
    order = [s for s in known if counts[s]] + sorted(set(counts) - set(known))
    rows = [[_e(status), str(counts[status])] for status in order]
    if result.read.merged:
        rows.append(["rows merged into the event they repeat (GDELT, ICEWS)", str(result.read.merged)])
    rows.append(["<b>bad rows</b>", str(result.read.bad_count)])
    return _table(["status", "records"], rows, css_class="counts")


def _bad_rows(result: BacktestResult) -> str:
    kept = result.read.bad_rows
    if not kept:
        return ""
    rows = [[f"<code>{_e(bad.where)}</code>", _e(bad.reason)] for bad in kept]
    shown = "" if len(kept) == result.read.bad_count else f" (the first {len(kept)} listed)"
    return (
        f"<details><summary>{result.read.bad_count} bad rows{shown}</summary>"
        f"{_table(['where', 'reason'], rows)}</details>"
    )


def _dyad_list(result: BacktestResult) -> str:
    items = []
    for dyad, trace in result.dyads.items():
        note = "" if trace.trail else ' <span class="muted">(no index update: no chart)</span>'
        records = _count(trace.records, "record")
        alerts = _count(len(trace.alerts), "alert")
        link = f'<a href="#{_e(_file_stem(dyad))}">{_e(dyad)}</a>'
        items.append(f"<li>{link}: {records}, peak {_e(trace.peak)}, {alerts}{note}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No dyad.</p>"


def _dyad_section(dyad: str, trace: DyadTrace, png: bytes | None, complete: bool) -> str:
    alerts = trace.alerts
    if png is None:
        chart = '<p class="muted">No index update for this dyad: nothing to draw.</p>'
    else:
        chart = _image(png, f"{dyad} escalation and de-escalation indices")
    alert_table = (
        _table(
            [
                "time",
                "kind",
                "level",
                "reason",
                "triggered by",
                "contributors",
                "alert id",
            ],
            [_alert_row(alert) for alert in alerts],
        )
        if alerts
        else '<p class="muted">No alert.</p>'
    )
    records = (
        [
            f"<details><summary>Records ({trace.records})</summary>",
            _table(["time", "record", "status", "what", "summary"], [_record_row(s) for s in trace.steps]),
            "</details>",
        ]
        if complete
        else [f'<p class="muted">{trace.records} records (a run this large lists alerts only).</p>']
    )
    return "\n".join(
        [
            f'<h2 id="{_e(_file_stem(dyad))}">{_e(dyad)}</h2>',
            chart,
            f"<h3>Alerts ({len(alerts)})</h3>",
            alert_table,
            *records,
        ]
    )


def _alert_row(alert: Alert) -> list[str]:
    arrow = "▲" if alert.kind == "escalation" else "▼"
    contributors = "<br>".join(
        f"<code>{_e(c.event_id)}</code> {'E' if c.index == 'escalation' else 'D'} {c.contribution:.2f}"
        for c in alert.contributors
    )
    return [
        _e(_when(alert.event_time)),
        f'<span class="{_e(alert.kind)}">{arrow} {_e(alert.kind)}</span>',
        f"{_e(alert.previous_level)} → {_e(alert.level)}",
        f'{_e(alert.reason)} <span class="muted">({_e(alert.reason_code)})</span>',
        f"<code>{_e(alert.triggered_by)}</code>",
        contributors,
        f"<code>{_e(alert.alert_id)}</code>",
    ]


def _record_row(step: Step) -> list[str]:
    record = step.item.record
    if isinstance(record, CrisisEvent):
        what = (
            f"{_e(record.source.name)} → {_e(record.target.name)} "
            f'<span class="muted">(CAMEO {_e(record.cameo_code)})</span>'
        )
        summary = _e(record.summary)
    else:
        what = f"retracts <code>{_e(record.retracts)}</code>"
        summary = _e(record.reason)
    return [
        _e(_when(record.event_time)),
        f"<code>{_e(step.outcome.record_id)}</code>",
        _e(step.outcome.status),
        what,
        summary,
    ]


def _table(headers: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """Headers and cells must already be HTML (escaped where they hold outside text)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
