"""`make bench`: events per second through one worker, next to a plain aiokafka consumer.

Both read the same topic of N events on a real local broker. The rate of each is measured
between its first and its last record (start-up and the producer excluded): for the plain
consumer, from receipt times; for the worker, from the Kafka timestamps of the index updates
it publishes (one per event). Prints both rates, their ratio, and the worker's peak memory.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from devtools.broker import stop
from schemas.kafka import KafkaConnection
from schemas.topics import Topics
from services.kafka.topics import reader
from tests.kafka_fixtures import start_test_broker
from tests.live import WorkerProcess, replay, wait_processed
from tests.synthetic import write_events

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
TARGET_RATIO = 0.5


async def timed_read(bootstrap: str, topic: str, expected: int, decode: bool) -> tuple[float, float]:
    """(first, last) of the record times: receipt time, or the record's own timestamp."""
    consumer = reader(KafkaConnection(bootstrap), topic)
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    if decode:
                        json.loads(message.value)
                        now = time.perf_counter()
                    else:
                        now = message.timestamp / 1000
                    first = first or now
                    last = now
                    seen += 1
    finally:
        await consumer.stop()
    return first, last


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        broker = start_test_broker(base)
        namespace, topics = "bench", Topics("bench")
        try:
            events = write_events(base / "events.jsonl", EVENTS)
            replay(events, broker.bootstrap, namespace)
            first, last = asyncio.run(timed_read(broker.bootstrap, topics.events, EVENTS, decode=True))
            plain = EVENTS / (last - first)
            worker = WorkerProcess(broker.bootstrap, namespace, base / "worker").start()
            try:
                wait_processed(broker.bootstrap, namespace, timeout=1800)
                assert worker.process is not None
                memory = peak_memory_mb(worker.process.pid)
            finally:
                worker.stop()
            first, last = asyncio.run(timed_read(broker.bootstrap, topics.index, EVENTS, decode=False))
            through_worker = EVENTS / (last - first)
        finally:
            stop(broker)
    ratio = through_worker / plain
    print(f"events:                {EVENTS}")
    print(f"plain consumer:        {plain:10.0f} events/s (read + JSON decode)")
    print(f"worker:                {through_worker:10.0f} events/s (validate, index, publish, save state)")
    print(f"ratio:                 {ratio:10.2f} (target >= {TARGET_RATIO})")
    print(f"worker peak memory:    {memory:10.0f} MB (VmHWM)")


if __name__ == "__main__":
    main()
