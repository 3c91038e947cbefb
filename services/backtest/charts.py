"""The backtest's charts as PNG bytes: per dyad E and D over event time, and the sweep's trade-off.

Agg without pyplot: no global state, so charts can be drawn from any thread. Nothing here
writes files or knows about the page; the report decides where the bytes go.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from schemas.outputs import Alert, Level
from services.backtest.labels import CrisisLabels, midnight
from services.backtest.scoring import Evaluation
from services.backtest.sweep import SweepPoint
from services.core.config import EngineConfig
from services.core.curve import Curve
from services.core.timeutil import to_seconds

ESCALATION_COLOR = "#c0392b"
DE_ESCALATION_COLOR = "#1f6fb4"
LABEL_COLOR = "#5f3dc4"
BASELINE_COLOR = "#2f9e44"
"""The dyad's normal: the green of the `normal` level on the dashboard."""
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


def render_dyad_chart(
    dyad: str,
    curves: Curve,
    alerts: list[Alert],
    config: EngineConfig,
    labels: CrisisLabels | None = None,
) -> bytes:
    """E and D with the level bands above the dyad's normal, the alerts and, if labelled, the
    crisis's days."""
    return _png(dyad_figure(dyad, curves, alerts, config, labels))


def dyad_figure(
    dyad: str,
    curves: Curve,
    alerts: list[Alert],
    config: EngineConfig,
    labels: CrisisLabels | None = None,
) -> Figure:
    """The figure of `render_dyad_chart`; its lines are labelled by what they show (`normal`,
    `watch threshold`, `watch clearing`...), for tests to find them."""
    figure = Figure(figsize=(11, 5.2), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    times = [_date_number(t) for t in curves.times]
    peak = max([*curves.escalation, *curves.de_escalation, 0.0])
    top = max(peak, max(curves.escalation_baseline, default=0.0) + config.critical_threshold) * 1.12
    _draw_levels(axes, config, times, curves.escalation_baseline, top)
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
    handles = _legend_handles(config, normal=any(curves.escalation_baseline))
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles) if len(handles) <= 6 else 4,
        fontsize=8.5,
        frameon=False,
    )
    return figure


def _draw_levels(
    axes: Axes, config: EngineConfig, times: list[float], baseline: list[float], top: float
) -> None:
    """The dyad's normal (the baseline E is judged against), and above it light bands from
    each threshold, a labelled line at each, dotted clearing lines: all following the baseline,
    which steps where the engine judged the dyad again (flat at 0 for a dyad with no normal)."""
    levels = [Level.WATCH, Level.WARNING, Level.CRITICAL]
    thresholds = [config.threshold(level) for level in levels]
    labels = axes.get_yaxis_transform()
    above = any(baseline)

    def over(amount: float) -> list[float]:
        return [value + amount for value in baseline]

    for i, (level, threshold) in enumerate(zip(levels, thresholds, strict=True)):
        color = LINE_COLORS[level]
        low = over(threshold)
        high = over(thresholds[i + 1]) if i + 1 < len(thresholds) else [top] * len(baseline)
        axes.fill_between(times, low, high, step="post", color=BAND_COLORS[level], alpha=0.45, linewidth=0)
        axes.plot(
            times,
            low,
            drawstyle="steps-post",
            color=color,
            linewidth=1.0,
            linestyle="--",
            label=f"{level} threshold",
        )
        axes.plot(
            times,
            over(threshold * config.clearing_ratio),
            drawstyle="steps-post",
            color=color,
            linewidth=0.7,
            linestyle=":",
            label=f"{level} clearing",
        )
        axes.text(
            1.005,
            low[-1],
            f"{level} normal+{threshold:g}" if above else f"{level} {threshold:g}",
            transform=labels,
            color=color,
            fontsize=9,
            va="center",
            ha="left",
            clip_on=False,
        )
    if above:
        axes.plot(
            times,
            baseline,
            drawstyle="steps-post",
            color=BASELINE_COLOR,
            linewidth=1.3,
            alpha=0.8,
            label="normal",
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
    return _png(figure)


def _png(figure: Figure) -> bytes:
    """No 'Software' metadata: the same chart gives the same bytes whatever matplotlib drew it."""
    buffer = BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _legend_handles(config: EngineConfig, normal: bool) -> list[Line2D]:
    """The keys, with the dyad's normal when it has one (else the thresholds are plain)."""
    handles = [
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
    ]
    if normal:
        handles.append(
            Line2D([], [], color=BASELINE_COLOR, linewidth=1.3, alpha=0.8, label="normal (E's baseline)")
        )
    return [
        *handles,
        Line2D(
            [],
            [],
            color="#666666",
            linestyle="--",
            linewidth=1.0,
            label="normal + threshold" if normal else "threshold",
        ),
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
