"""The human view of a backtest: per dyad, a readable timeline of events, indices and alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from replay.ordering import ReadReport
from schemas.events import CrisisEvent
from schemas.outputs import Alert
from services.backtest.run import LISTED_RECORDS, BacktestResult, Step
from services.core.config import format_duration
from services.core.scoring import goldstein_of

ARROWS = {"escalation": "▲", "de-escalation": "▼"}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _describe(step: Step, result: BacktestResult) -> str:
    record = step.item.record
    if not isinstance(record, CrisisEvent):
        return f"retracts {record.retracts}"
    goldstein = goldstein_of(record, result.config.scale)
    actors = f"{record.source.country or record.source.name}→{record.target.country or record.target.name}"
    return f"{record.cameo_code:<4} {goldstein:+5.1f} {actors:<8} {record.summary[:60]}"


def alert_line(alert: Alert) -> str:
    return (
        f"{ARROWS[alert.kind]} {alert.kind.upper()} {alert.previous_level} → {alert.level}: "
        f"{alert.reason} [alert {alert.alert_id[:12]}]"
    )


def render_timeline(result: BacktestResult) -> Iterator[str]:
    config = result.config
    stamp = config.computed_with
    yield (
        f"CrisisMon backtest: half-life {format_duration(config.half_life)},"
        f" thresholds watch {config.watch_threshold:g}"
        f" / warning {config.warning_threshold:g} / critical {config.critical_threshold:g},"
        f" clearing ×{config.clearing_ratio:g}, scale {stamp.scale} {stamp.scale_version},"
        f" config {stamp.config_hash}"
    )
    quiet = 0
    for dyad, trace in result.dyads.items():
        if not result.complete_listing and not trace.alert_count:
            quiet += 1  # a large run lists the dyads with alerts; the others are counted
            continue
        yield ""
        yield f"{dyad}: {trace.records} records, peak level {trace.peak}, {trace.alert_count} alerts"
        if not result.complete_listing:
            yield from (f"  {_when(alert.event_time)} {alert_line(alert)}" for alert in trace.alerts)
            continue
        yield f"  {'event time (UTC)':<16}  {'record':<12} {'what':<80} {'E':>6} {'D':>6}  level"
        for step in trace.steps:
            update = step.outcome.index_update
            indices = (
                f"{update.escalation_index:6.2f} {update.de_escalation_index:6.2f}  {update.level}"
                if update
                else f"({step.outcome.fate})"
            )
            yield (
                f"  {_when(step.item.record.event_time):<16}  {step.outcome.record_id:<12}"
                f" {_describe(step, result):<80} {indices}"
            )
            for alert in step.outcome.alerts:
                yield f"  {'':<16}  {'':<12} {alert_line(alert)}"
    counts = result.counts
    yield ""
    if not result.complete_listing:
        yield (
            f"(over {LISTED_RECORDS} records: each dyad's alerts are listed, not its records;"
            f" {quiet} of {len(result.dyads)} dyads without alerts are not listed)"
        )
    yield "records: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    if result.read.merged:
        yield f"rows merged into the event they repeat (GDELT, ICEWS): {result.read.merged}"


def render_bad_rows(read: ReadReport) -> Iterator[str]:
    """Each bad row kept with its whole reason (file:line: reason), then how many there were
    by category: the details stay on the rows, so that equal failures add up in the total."""
    for bad in read.bad_rows:
        yield f"{bad.where}: skipped: {bad.reason}"
    hidden = read.bad_count - len(read.bad_rows)
    if hidden > 0:
        yield f"... and {hidden} more"
    if read.bad_count:
        categories = ", ".join(f"{category} {count}" for category, count in read.bad_reasons.most_common())
        yield f"{read.bad_count} bad rows skipped, of {read.rows} rows read ({categories})"
