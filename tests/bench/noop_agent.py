"""The ceiling Faust itself sets: an agent that takes the stream as the worker does, in
batches of `BATCH_MAX_RECORDS` or `BATCH_WITHIN_SECONDS`, and does nothing else.

The app is configured as services/kafka/worker.py's `create_app` configures the worker (the
transport, broker and batching settings, imported from it, raw serializers, at_least_once, 8 partitions, one
agent of concurrency 1), with an app id and group of its own, no table and no web server. It runs
as a subprocess of its own (`python -m tests.bench.noop_agent`), so its peak memory is its own.

Its rate is timed in-process, from the first event the agent receives to the `events`-th. That is
the interval the worker's rate is measured over too: the worker's index updates carry the Kafka
timestamp its producer stamps when the agent sends them, i.e. the moment it handled each event.
Having the no-op agent publish a record per event instead would add a producer's cost the
ceiling should not include. The child writes {"events", "seconds"} to a result file once it has
seen `events` events, and keeps consuming until it is stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import faust

from schemas.kafka import OUTAGE_TIMEOUT_SECONDS, KafkaConnection
from schemas.topics import PARTITIONS
from services.kafka.transport import faust_app
from services.kafka.worker import BATCH_MAX_RECORDS, BATCH_WITHIN_SECONDS, stream_settings
from tests.bench.harness import peak_rss_mb, rate, stop_process
from tests.live import clean_env, eventually

REPO = Path(__file__).resolve().parents[2]


def noop_app(bootstrap: str, topic: str, data_dir: Path, on_event: PassCounter) -> faust.App:
    """A Faust app set up as the worker's is, whose one agent only counts the events it is handed.
    Its group is new each time: a second run reads the topic from the start too."""
    app = faust_app(
        f"{topic}.noop-agent-{uuid.uuid4().hex[:8]}",
        store="memory://",
        datadir=str(data_dir),
        **stream_settings(KafkaConnection(bootstrap), OUTAGE_TIMEOUT_SECONDS),
    )

    @app.agent(app.topic(topic, partitions=PARTITIONS), concurrency=1)
    async def noop(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(BATCH_MAX_RECORDS, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            for _event in batch:
                on_event.passed()

    return app


@dataclass
class PassCounter:
    """Counts events as they pass; writes the result file when the `expected`-th has."""

    expected: int
    result: Path
    seen: int = 0
    first: float = 0.0

    def passed(self) -> None:
        now = time.perf_counter()
        self.seen += 1
        if self.seen == 1:
            self.first = now
        if self.seen == self.expected:
            written = self.result.with_suffix(".partial")
            written.write_text(json.dumps({"events": self.seen, "seconds": now - self.first}))
            written.rename(self.result)  # the parent never reads a half-written file


@dataclass(frozen=True)
class AgentRun:
    events_per_second: float
    peak_rss_mb: float


def measure_noop_agent(bootstrap: str, topic: str, events: int, scratch: Path, timeout: float) -> AgentRun:
    """Runs the no-op agent over the first `events` events of `topic` (at most `timeout` seconds)."""
    result, log = scratch / "noop-agent.json", scratch / "noop-agent.log"
    result.unlink(missing_ok=True)  # a previous run's
    command = [sys.executable, "-m", __name__, bootstrap, topic, str(events), str(result), str(scratch)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True
        )
    try:
        eventually(lambda: result.exists() or process.poll() is not None, timeout, "the no-op agent")
        if not result.exists():
            raise SystemExit(f"the no-op agent exited early:\n{log.read_text(errors='replace')[-4000:]}")
        peak = peak_rss_mb(process.pid)
    finally:
        stop_process(process)
    timing = json.loads(result.read_text())
    return AgentRun(rate(timing["events"], 0.0, timing["seconds"]), peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("events", type=int)
    parser.add_argument("result", type=Path)
    parser.add_argument("data_dir", type=Path)
    arguments = parser.parse_args()
    counter = PassCounter(arguments.events, arguments.result)
    app = noop_app(arguments.bootstrap, arguments.topic, arguments.data_dir, counter)
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
