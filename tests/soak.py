"""`make soak`: a bounded run under faults, not part of `make test`.

Events are fed at a steady rate (a replay paced over the run) to one worker on a broker of its
own, while, at random moments (seeded), the worker is killed with SIGKILL and restarted, or the
broker is stopped for a while and started again. A worker that exits by itself (its health
checks end a stuck one with 75) is restarted, as a supervisor would. At the end it prints
(and exits 1 when an alert was lost or unknown):

- alerts expected (the offline backtest of the same events) / seen on the topic / lost / unknown;
- the worker's resident memory over time;
- the longest stall: the longest time records waited while the group's committed lag did not
  move (broker outages and restarts included: they are what the run is about).

    python -m tests.soak [--minutes 15] [--seed 1] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from devtools.broker import Broker, start, stop
from schemas.kafka import KafkaConnection
from schemas.topics import Topics
from services.backtest.run import run_backtest
from services.core import EngineConfig
from services.kafka.lag import group_lag
from tests.kafka_fixtures import start_test_broker
from tests.live import CRISISMON, WorkerProcess, clean_env, read_alerts, wait_processed
from tests.synthetic import write_events

EVENT_DAYS = 120  # tests.synthetic spreads its events over 120 days
SAMPLE_SECONDS = 5.0
NAMESPACE = "soak"


@dataclass
class Observations:
    rss_mib: list[tuple[float, float]] = field(default_factory=list)
    """(seconds since the start, the worker's resident memory)."""
    faults: list[str] = field(default_factory=list)
    restarts_by_itself: int = 0
    longest_stall: float = 0.0
    stall_started: float | None = None
    last_committed: int | None = None

    def progress(self, now: float, lag: int | None, committed: int | None) -> None:
        """A stall runs while records wait (or the broker is away) and nothing more is committed."""
        moved = committed is not None and self.last_committed is not None and committed > self.last_committed
        if lag == 0 or moved:
            self.stall_started = None
        elif self.stall_started is None:
            self.stall_started = now
        if self.stall_started is not None:
            self.longest_stall = max(self.longest_stall, now - self.stall_started)
        if committed is not None:
            self.last_committed = committed


def rss_mib(worker: WorkerProcess) -> float | None:
    if worker.process is None or worker.process.poll() is not None:
        return None
    try:
        status = Path(f"/proc/{worker.process.pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return kib / 1024 if kib is not None else None


def committed_lag(bootstrap: str) -> int | None:
    topics = Topics(NAMESPACE)
    try:
        return asyncio.run(
            asyncio.wait_for(group_lag(KafkaConnection(bootstrap), topics.app_id, topics.events), 5)
        )
    except Exception:  # the broker is away: no reading
        return None


def committed_total(bootstrap: str) -> int | None:
    """The group's committed offsets summed: it grows as the worker gets through the log."""

    async def total() -> int:
        admin = AIOKafkaAdminClient(**KafkaConnection(bootstrap).client_options())
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(Topics(NAMESPACE).app_id)
            return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)
        finally:
            await admin.close()

    try:
        return asyncio.run(asyncio.wait_for(total(), 5))
    except Exception:
        return None


def soak(minutes: float, seed: int, rate: float, work: Path) -> bool:
    rng = random.Random(seed)
    duration = minutes * 60
    count = int(rate * duration)
    events = write_events(work / "events.jsonl", count, seed=seed)
    speed = EVENT_DAYS * 86_400 / duration
    broker = start_test_broker(work / "kafka")
    worker = WorkerProcess(broker.bootstrap, NAMESPACE, work / "worker").start().wait_for_web(120)
    seen = Observations()
    begun = time.monotonic()
    target = ["--bootstrap", broker.bootstrap, "--namespace", NAMESPACE, "--speed", str(speed)]
    with (work / "replay.log").open("wb") as out:
        feed = subprocess.Popen(
            [CRISISMON, "replay", str(events), *target],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    print(f"soak: {count} events over {minutes:g} min ({rate:g}/s), faults at random (seed {seed})")
    next_fault = begun + rng.uniform(30, 90)

    def measuring(seconds: float) -> None:
        """A fault's pause, sampled as the rest: outages are what the stall measures."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            sample(worker, broker, seen, time.monotonic() - begun)
            time.sleep(min(SAMPLE_SECONDS, left))

    try:
        while feed.poll() is None and time.monotonic() - begun < duration + 120:
            now = time.monotonic()
            supervise(worker, seen)
            if now >= next_fault and now - begun < duration - 30:
                fault(rng, broker, worker, seen, now - begun, measuring)
                next_fault = time.monotonic() + rng.uniform(45, 120)
            sample(worker, broker, seen, time.monotonic() - begun)
            time.sleep(SAMPLE_SECONDS)
        print(f"replay exited {feed.wait(timeout=600)} after {time.monotonic() - begun:.0f} s")
        caught_up = wait_until(lambda: committed_lag(broker.bootstrap) == 0, 600, worker, seen, begun, broker)
        return report(events, broker, worker, seen, caught_up)
    finally:
        feed.kill()
        worker.stop()
        stop(broker)


def supervise(worker: WorkerProcess, seen: Observations) -> None:
    if worker.process is not None and worker.process.poll() is not None:
        seen.restarts_by_itself += 1
        print(f"  the worker exited {worker.process.returncode}: restarted")
        worker.start()


def fault(
    rng: random.Random,
    broker: Broker,
    worker: WorkerProcess,
    seen: Observations,
    at: float,
    pause_for: Callable[[float], None],
) -> None:
    if rng.random() < 0.5:
        pause = rng.uniform(0, 15)
        seen.faults.append(f"{at:.0f} s: worker SIGKILLed, restarted {pause:.0f} s later")
        worker.kill()
        pause_for(pause)
        worker.start()
    else:
        pause = rng.uniform(5, 40)
        seen.faults.append(f"{at:.0f} s: broker stopped for {pause:.0f} s")
        stop(broker)
        pause_for(pause)
        start(broker)
    print("  " + seen.faults[-1])


def sample(worker: WorkerProcess, broker: Broker, seen: Observations, at: float) -> None:
    if memory := rss_mib(worker):  # none, or 0 for a process on its way out
        seen.rss_mib.append((at, memory))
    seen.progress(at, committed_lag(broker.bootstrap), committed_total(broker.bootstrap))


def wait_until(
    done: Callable[[], bool],
    timeout: float,
    worker: WorkerProcess,
    seen: Observations,
    begun: float,
    broker: Broker,
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervise(worker, seen)
        if done():
            return True
        sample(worker, broker, seen, time.monotonic() - begun)
        time.sleep(SAMPLE_SECONDS)
    return False


def report(events: Path, broker: Broker, worker: WorkerProcess, seen: Observations, caught_up: bool) -> bool:
    """Prints the figures; whether every alert expected was seen and none unknown."""
    if caught_up:
        wait_processed(broker.bootstrap, NAMESPACE, 60, worker)
    expected = {alert.alert_id for alert in run_backtest([events], EngineConfig()).alerts}
    live = {alert.alert_id for alert in read_alerts(broker.bootstrap, NAMESPACE)}
    print(f"faults: {len(seen.faults)}; the worker restarted by its supervisor: {seen.restarts_by_itself}")
    print(
        f"alerts expected {len(expected)}, seen {len(expected & live)}, lost {len(expected - live)},"
        f" unknown {len(live - expected)}{'' if caught_up else ' (the worker had not caught up)'}"
    )
    memory = [mib for _, mib in seen.rss_mib]
    if memory:
        print(
            f"worker RSS: min {min(memory):.0f} MiB, median {statistics.median(memory):.0f} MiB,"
            f" max {max(memory):.0f} MiB"
        )
        step = max(1, len(seen.rss_mib) // 12)
        print("  over time: " + ", ".join(f"{at / 60:.1f} min {mib:.0f}" for at, mib in seen.rss_mib[::step]))
    print(f"longest stall: {seen.longest_stall:.0f} s (records waiting, nothing more committed)")
    return caught_up and expected == live


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second fed")
    options = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its lines while the broker is away
    with tempfile.TemporaryDirectory(prefix="crisismon-soak-") as work:
        if not soak(options.minutes, options.seed, options.rate, Path(work)):
            sys.exit(1)  # an alert lost or unknown: `make soak` fails


if __name__ == "__main__":
    main()
