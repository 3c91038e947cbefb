"""`make bench`: how long an event takes from the producer to a dashboard's /api/stream.

Events are produced one by one, a fixed interval apart, to a real local broker with one worker;
an SSE client measures, per event, the time until the index update it caused arrives on the
stream (what the dashboard draws). Prints the percentiles against the target of one second.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from devtools.broker import stop
from schemas.topics import Topics
from tests.kafka_fixtures import start_test_broker
from tests.live import WorkerProcess
from tests.synthetic import write_events

EVENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
INTERVAL_SECONDS = 0.05
TARGET_SECONDS = 1.0


async def measure(bootstrap: str, topics: Topics, worker: WorkerProcess, lines: list[str]) -> list[float]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()

    async def produce() -> None:
        for line in lines:
            record = json.loads(line)
            dyad = "-".join(sorted([record["source"]["country"], record["target"]["country"]]))
            sent[record["event_id"]] = time.perf_counter()
            await producer.send(topics.events, line.encode(), key=dyad.encode())
            await asyncio.sleep(INTERVAL_SECONDS)

    try:
        async with aiohttp.ClientSession() as session, session.get(f"{worker.url}/api/stream") as stream:
            producing = asyncio.create_task(produce())
            kind = ""
            async with asyncio.timeout(120 + EVENTS * INTERVAL_SECONDS):
                async for raw in stream.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind == "index":
                        triggered_by = json.loads(line[6:])["triggered_by"]
                        if triggered_by in sent:
                            latencies.append(time.perf_counter() - sent.pop(triggered_by))
                        if len(latencies) == len(lines):
                            break
            await producing
    finally:
        await producer.stop()
    return latencies


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        broker = start_test_broker(base)
        topics = Topics("latency")
        worker = WorkerProcess(broker.bootstrap, topics.namespace, base / "worker").start()
        try:
            worker.wait_for_web()
            lines = write_events(base / "events.jsonl", EVENTS).read_text().splitlines()
            lines.sort(key=lambda line: json.loads(line)["event_time"])  # as a live feed comes
            latencies = asyncio.run(measure(broker.bootstrap, topics, worker, lines))
        finally:
            worker.stop()
            stop(broker)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"events:                {len(latencies)} produced {INTERVAL_SECONDS * 1000:.0f} ms apart")
    print(
        f"producer → /api/stream: p50 {cuts[49] * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (target < {TARGET_SECONDS * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
