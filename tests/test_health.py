"""A worker that hangs is noticed and ended (`services.kafka.health`): each check reports past
its limit (log, metric, /api/status, /health) and exits for a restart past its end; the time
the broker was away counts against none of them but the `kafka` check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from services.kafka.health import EXIT_RESTART, WorkerHealth
from services.kafka.worker import UndeliveredOutputs
from services.web.metrics import WorkerMetrics
from tests.web_server import run, serving

STALL, JOIN, OUTAGE, TOPICS = 60.0, 30.0, 300.0, 30.0


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Exits:
    codes: list[int] = field(default_factory=list)

    def __call__(self, code: int) -> None:
        self.codes.append(code)


def a_worker_health(metrics: WorkerMetrics | None = None) -> tuple[WorkerHealth, Clock, Exits]:
    clock, exits = Clock(), Exits()
    health = WorkerHealth(
        stall_timeout=STALL,
        join_timeout=JOIN,
        outage_timeout=OUTAGE,
        metrics=metrics or WorkerMetrics(10),
        topics_timeout=TOPICS,
        exit=exits,
        clock=clock,
    )
    return health, clock, exits


def stall_gauge(metrics: WorkerMetrics, check: str) -> float:
    value = metrics.registry.get_sample_value("crisismon_worker_stall_seconds", {"check": check})
    assert value is not None
    return value


def test_a_join_that_outlasts_session_and_rebalance_timeouts_is_reported_then_ended() -> None:
    metrics = WorkerMetrics(10)
    health, clock, exits = a_worker_health(metrics)
    clock.now += JOIN - 1
    assert health.check() == [] and health.problems() == []
    clock.now += 2
    (stall,) = health.check()
    assert stall.check == "group" and health.problems() == [str(stall)]
    assert stall_gauge(metrics, "group") == pytest.approx(JOIN + 1)
    assert exits.codes == []
    clock.now += JOIN
    health.check()
    assert exits.codes == [EXIT_RESTART]


def test_a_worker_that_joins_in_time_is_healthy() -> None:
    metrics = WorkerMetrics(10)
    health, clock, exits = a_worker_health(metrics)
    clock.now += JOIN + 5
    health.check()
    health.joined()
    assert health.check() == [] and health.problems() == []
    assert stall_gauge(metrics, "group") == 0.0 and exits.codes == []


def test_records_waiting_on_a_partition_that_does_not_move_are_a_stall() -> None:
    health, clock, exits = a_worker_health()
    health.joined()
    health.observe_partitions({"crisis.events[3]": (120, 500), "crisis.events[4]": (0, 80)})
    clock.now += STALL + 1
    health.observe_partitions({"crisis.events[3]": (120, 500), "crisis.events[4]": (0, 80)})
    (stall,) = health.check()
    assert stall.check == "partition" and "crisis.events[3]: 120 records wait" in str(stall)
    health.observe_partitions({"crisis.events[3]": (80, 540)})  # it moved
    assert health.check() == []
    clock.now += 2 * STALL + 1
    health.observe_partitions({"crisis.events[3]": (80, 540)})
    health.check()
    assert exits.codes == [EXIT_RESTART]


def test_a_partition_quiet_for_long_then_busy_is_no_stall() -> None:
    """Its wait starts when records come, not when it last processed one."""
    health, clock, exits = a_worker_health()
    health.joined()
    health.observe_partitions({"crisis.events[0]": (0, 40)})
    clock.now += 15 * 60  # nothing comes for a quarter of an hour
    health.observe_partitions({"crisis.events[0]": (3, 40)})  # a burst, not taken yet
    assert health.check() == [] and exits.codes == []


def test_tables_being_recovered_hold_the_partitions_without_a_stall() -> None:
    health, clock, exits = a_worker_health()
    health.joined()
    health.observe_recovery(True)
    for _ in range(10):
        clock.now += STALL
        health.observe_partitions({"crisis.events[1]": (500, 0)})
        assert health.check() == []
    health.observe_recovery(False)  # the wait starts once the partitions are let go
    health.observe_partitions({"crisis.events[1]": (500, 0)})
    clock.now += STALL - 1
    health.observe_partitions({"crisis.events[1]": (500, 0)})
    assert health.check() == [] and exits.codes == []


def test_time_the_broker_was_away_does_not_count_against_the_group_or_a_partition() -> None:
    health, clock, exits = a_worker_health()
    health.joined()
    health.observe_partitions({"crisis.events[0]": (10, 7)})
    health.broker_silent(ConnectionError("down"))
    clock.now += OUTAGE / 2 - 10  # far past the partition's limit, and within the broker's
    assert health.check() == []
    health.broker_answered()
    clock.now += STALL - 1
    health.observe_partitions({"crisis.events[0]": (10, 7)})
    assert health.check() == [] and exits.codes == []


def test_a_broker_away_is_reported_at_half_the_outage_timeout_and_ends_the_worker_at_it() -> None:
    health, clock, exits = a_worker_health()
    health.joined()
    health.broker_silent(ConnectionError("down"))
    clock.now += OUTAGE / 2 + 1
    (stall,) = health.check()
    assert stall.check == "kafka" and exits.codes == []
    clock.now += OUTAGE / 2
    health.check()
    assert exits.codes == [EXIT_RESTART]


def test_a_topic_gone_for_longer_than_a_restarted_broker_takes_ends_the_worker() -> None:
    health, clock, exits = a_worker_health()
    health.joined()
    health.observe_topics(["crisis.events"])
    clock.now += TOPICS - 1
    assert health.check() == []
    health.observe_topics([])  # a broker just restarted may not list them for a few seconds
    clock.now += TOPICS
    assert health.check() == []
    health.observe_topics(["crisis.alerts"])
    clock.now += TOPICS + 1
    (stall,) = health.check()
    assert "crisis.alerts missing from the broker" in str(stall) and exits.codes == []
    clock.now += TOPICS
    health.check()
    assert exits.codes == [EXIT_RESTART]


def test_a_blocked_event_loop_is_seen_by_the_watching_thread_and_ends_the_worker() -> None:
    metrics, exits = WorkerMetrics(10), Exits()
    health = WorkerHealth(
        stall_timeout=0.5,
        join_timeout=JOIN,
        outage_timeout=OUTAGE,
        metrics=metrics,
        topics_timeout=TOPICS,
        exit=exits,
    )
    health.watch_event_loop()
    health.beat = time.monotonic()  # the loop beat once, then blocked (nothing beats any more)
    deadline = time.monotonic() + 20
    while not exits.codes and time.monotonic() < deadline:
        time.sleep(0.1)
    assert exits.codes and exits.codes[0] == EXIT_RESTART
    assert stall_gauge(metrics, "event-loop") > 0.5


def test_status_and_health_show_the_stalls_and_health_answers_503_without_a_token() -> None:
    health, clock, _ = a_worker_health()

    async def check() -> None:
        async with serving(health=health) as (_, base), aiohttp.ClientSession() as client:
            async with client.get(f"{base}/health") as fine:
                assert fine.status == 200 and await fine.json() == {"healthy": True, "stalls": []}
            clock.now += JOIN + 1
            health.check()
            async with client.get(f"{base}/health") as stuck:
                answer = await stuck.json()
                assert stuck.status == 503 and not answer["healthy"]
                assert answer["stalls"][0].startswith("group: no partitions assigned")
            headers = {"Authorization": "Bearer s3cret-token"}
            async with client.get(f"{base}/api/status", headers=headers) as status:
                assert (await status.json())["stalls"] == answer["stalls"]

    run(check)


def test_an_output_kafka_did_not_take_ends_the_worker_before_its_offset_is_committed() -> None:
    exits = Exits()
    UndeliveredOutputs(exit=exits).on_send_error(producer=None, exc=TimeoutError(), state=None)
    assert exits.codes == [EXIT_RESTART]
