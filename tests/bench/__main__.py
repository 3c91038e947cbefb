"""`make bench`: `python -m tests.bench [--events N] [--backtest-rows N]`.

One local broker, then, each on topics of its own: the throughput of a plain consumer, a no-op
Faust agent and the worker over the same N events (worker_throughput.py), the worker's
producer-to-output latency at 500 events/s offered (worker_latency.py), and the state it keeps
for a busy dyad (worker_state.py); the broker stopped, the offline backtest beside pyarrow's
parse on two GDELT files (backtest_gdelt.py). Each prints its details as it ends; then one
Markdown table of every figure beside its target, which the README's performance table is
copied from whole: all its rows from the same run, on the same day's machine.
Benchmarks, not tests: nothing is asserted, a target missed is a "no" in the table.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.broker import stop
from tests.bench import backtest_gdelt, worker_latency, worker_state, worker_throughput
from tests.bench.backtest_gdelt import CaseRun
from tests.bench.worker_latency import Latency
from tests.bench.worker_state import BusyState
from tests.bench.worker_throughput import Throughput
from tests.kafka_fixtures import start_test_broker

WORKER_EVENTS_PER_SECOND = 5_000
SHARE_OF_NOOP_AGENT = 0.7
WORKER_EVENTS_PER_SECOND_FLOOR = 2_500
P99_MS = 250.0
STATE_BYTES = 16 * 1024
RSS_MB = 300.0


@dataclass(frozen=True)
class Row:
    measure: str
    result: str
    target: str = "—"
    met: bool | None = None
    """None: no target, or a run cut short that cannot tell"""

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return [self.measure, self.result, self.target, met]


def throughput_row(run: Throughput) -> Row:
    noop, worker = run.noop_agent.median, run.worker.median
    share = worker / noop
    met = worker >= WORKER_EVENTS_PER_SECOND or (
        share >= SHARE_OF_NOOP_AGENT and worker >= WORKER_EVENTS_PER_SECOND_FLOOR
    )
    return Row(
        "worker throughput (validate, index, publish, save state)",
        f"{run.worker} ({share:.0%} of the no-op agent's median)",
        f"≥ {WORKER_EVENTS_PER_SECOND:,}/s, or ≥ {SHARE_OF_NOOP_AGENT:.0%} of the no-op agent "
        f"({SHARE_OF_NOOP_AGENT * noop:,.0f}/s) and ≥ {WORKER_EVENTS_PER_SECOND_FLOOR:,}/s",
        met,
    )


def latency_rows(run: Latency) -> list[Row]:
    """p50 and p99 to the index update (every event) and to the alert (the target's measure); with
    events left unanswered at the bound, they are lower bounds."""
    at_least = "≥ " if run.unanswered else ""
    unanswered = f", {run.unanswered:,} of {run.offered:,} unanswered" if run.unanswered else ""
    offered = f"at {worker_latency.OFFERED_PER_SECOND} events/s offered"
    runs = f"{len(run.runs_p99_ms)} runs"
    rows = []
    for output, percentile_of, count, side in (
        ("index update", run.index_percentile, f"{len(run.index_ms):,} updates", 0),
        ("alert", run.alert_percentile, f"{len(run.alert_ms):,} alerts", 1),
    ):
        p50, p99 = percentile_of(50), percentile_of(99)
        each = ", ".join(f"{p99s[side]:,.0f}" for p99s in run.runs_p99_ms)
        rows += [
            Row(f"worker p50 producer → {output}, {offered}", f"{at_least}{p50:,.0f} ms{unanswered}"),
            Row(
                f"worker p99 producer → {output}, {offered}",
                f"{at_least}{p99:,.0f} ms over {count} of {runs} (each run's: {each} ms){unanswered}",
                f"≤ {P99_MS:.0f} ms",
                None if math.isnan(p99) or (run.unanswered and p99 <= P99_MS) else p99 <= P99_MS,
            ),
        ]
    return rows


def state_row(run: BusyState) -> Row:
    days = f"{worker_state.PER_DAY} events a day for {worker_state.DAYS} days"
    if run.state_bytes is None:
        return Row(f"state per dyad, busy dyad ({days})", "none saved", f"≤ {STATE_BYTES // 1024} KiB")
    over = run.state_bytes > STATE_BYTES
    cut = "" if run.finished else f" after day {run.days_processed:.0f} (time bound)"
    return Row(
        f"state per dyad, busy dyad ({days})",
        f"{run.state_bytes / 1024:,.1f} KiB{cut}",
        f"≤ {STATE_BYTES // 1024} KiB",
        not over if run.finished or over else None,
    )


def backtest_rows(runs: Sequence[CaseRun]) -> list[Row]:
    """Each file's time against pyarrow's parse, then the core alone and the peak memory of both."""
    kinds = {"realistic": "a quarter two-country", "stress": "all two-country"}
    table = [
        Row(
            f"`crisismon backtest --json`, {run.case.name} GDELT 2.0 file ({run.rows:,} rows,"
            f" {kinds.get(run.case.name, run.case.name)}), {run.jobs} processes (the default here)",
            f"{run.run_seconds:,.2f} s against {run.parse_seconds:,.2f} s for pyarrow ({run.ratio:,.0f}x);"
            f" in one process (`--jobs 1`) {run.one_process_seconds:,.2f} s"
            f" ({run.one_process_seconds / run.parse_seconds:,.0f}x)",
            f"≤ {run.case.ratio_target:g}x",
            run.ratio <= run.case.ratio_target,
        )
        for run in runs
    ]
    names = " / ".join(run.case.name for run in runs)
    core = " / ".join(
        f"{run.core_seconds:,.2f} s ({run.core_seconds / run.parse_seconds:,.1f}x the parse;"
        f" {run.core_microseconds:,.0f} µs a two-country event)"
        for run in runs
    )
    peaks = [run.peak_mb for run in runs]
    return [
        *table,
        Row(f"the core alone (`Engine.process`), {names}", core),
        Row(
            f"`crisismon backtest` peak RSS (VmHWM, its processes added up), {names}",
            " / ".join(f"{peak:,.0f} MB" for peak in peaks)
            + "; in one process "
            + " / ".join(f"{run.one_process_peak_mb:,.0f} MB" for run in runs),
            f"≤ {backtest_gdelt.MEMORY_TARGET_MB} MB",
            max(peaks) <= backtest_gdelt.MEMORY_TARGET_MB,
        ),
    ]


def live_rows(throughput: Throughput, latency: Latency, busy: BusyState) -> list[Row]:
    peak = max(throughput.worker_peak_rss_mb, latency.peak_rss_mb, busy.peak_rss_mb)
    noop = throughput.noop_agent.median
    return [
        Row(
            f"plain aiokafka consumer (read + JSON decode), {throughput.events:,} events",
            str(throughput.plain_consumer),
            "(reference)",
        ),
        Row(
            "no-op Faust agent (takes batches as the worker does), same events",
            f"{throughput.noop_agent}, peak RSS {throughput.noop_agent_peak_rss_mb:,.0f} MB",
            "(reference)",
        ),
        throughput_row(throughput),
        Row(
            "worker without the API view (`api_view` off), runs in turns with the above",
            f"{throughput.worker_without_view} ({throughput.worker_without_view.median / noop:.0%} of"
            " the no-op agent's median)",
        ),
        Row(
            "worker without the view, `crisismon api` serving it beside (the same machine), in turns",
            f"{throughput.worker_beside_api} ({throughput.worker_beside_api.median / noop:.0%} of"
            " the no-op agent's median)",
        ),
        *latency_rows(latency),
        state_row(busy),
        Row(
            f"state per dyad, largest of the throughput run's {throughput.dyads} dyads",
            f"{throughput.largest_state_bytes / 1024:,.1f} KiB",
        ),
        Row(
            "worker peak RSS (VmHWM, largest of its runs)",
            f"{peak:,.0f} MB (throughput {throughput.worker_peak_rss_mb:,.0f}, latency "
            f"{latency.peak_rss_mb:,.0f}, busy dyad {busy.peak_rss_mb:,.0f})",
            f"≤ {RSS_MB:.0f} MB",
            None if math.isnan(peak) else peak <= RSS_MB,
        ),
    ]


def markdown(table: Sequence[Row]) -> str:
    lines = ["| measure | result | target | met? |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=worker_throughput.EVENTS, help="the throughput run's N")
    parser.add_argument(
        "--backtest-rows", type=int, default=backtest_gdelt.ROWS, help="rows of each GDELT file (0: none)"
    )
    arguments = parser.parse_args()
    events = arguments.events
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crisismon-bench-") as folder:
        scratch = Path(folder)
        broker = start_test_broker(scratch)
        print(f"one local Apache Kafka {broker.version} broker at {broker.bootstrap}, {os.cpu_count()} cores")
        try:
            throughput = worker_throughput.measure(broker.bootstrap, scratch, events)
            latency = worker_latency.measure(broker.bootstrap, scratch)
            busy = worker_state.measure(broker.bootstrap, scratch)
        finally:
            stop(broker)
    print(f"live part: {time.monotonic() - started:,.0f} s\n")
    table = live_rows(throughput, latency, busy)
    if arguments.backtest_rows:
        table += backtest_rows(backtest_gdelt.measure(arguments.backtest_rows))
    print(f"\nthe whole bench: {time.monotonic() - started:,.0f} s\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
