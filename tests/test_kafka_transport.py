"""How the worker runs on Faust past its defaults: its consumer's fetch wait, getmany timeout
and delivery to the streams (services/kafka/transport.py), its outputs straight on the producer
(`ProducerTopic`), and Faust's sensors without their per-record series (services/kafka/sensors.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from mode import Service
from prometheus_client import CollectorRegistry

from services.kafka.health import EXIT_RESTART
from services.kafka.sensors import faust_sensors
from services.kafka.transport import FETCH_MAX_WAIT_MS, GETMANY_TIMEOUT_SECONDS, faust_app
from services.kafka.worker import BatchedTopic, ProducerTopic


def test_the_worker_consumer_fetches_with_the_short_wait_not_fausts_fixed_one() -> None:
    async def built() -> int:
        app = faust_app("transport-test", broker="kafka://127.0.0.1:1")
        faust_consumer: Any = app.consumer
        consumer = faust_consumer._thread._create_worker_consumer(app.transport)  # what Faust starts
        try:
            wait: int = consumer._fetch_max_wait_ms
            return wait
        finally:
            await consumer.stop()

    assert asyncio.run(built()) == FETCH_MAX_WAIT_MS < 1500


def test_the_drain_loop_asks_for_records_with_the_short_timeout_not_fausts_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[float] = []

    async def wait_next_records(self: Any, timeout: float) -> tuple[None, None]:
        asked.append(timeout)
        return None, None

    monkeypatch.setattr(FaustConsumer, "_wait_next_records", wait_next_records)

    async def drain_asks() -> None:
        consumer: Any = faust_app("transport-test", broker="kafka://127.0.0.1:1").consumer
        await consumer._wait_next_records(1.0)  # what `_drain_messages` asks

    asyncio.run(drain_asks())
    assert asked == [GETMANY_TIMEOUT_SECONDS] and GETMANY_TIMEOUT_SECONDS < 1.0


@pytest.mark.parametrize("blocker", [None, "flow suspended", "stream buffer full"])
def test_a_record_is_delivered_directly_only_when_nothing_can_block_its_delivery(
    blocker: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocked or not, the record is delivered; only a delivery that may block is raced against
    `suspend_flow` in tasks, as mode's `wait_first` does it (here, a spy that then delivers)."""
    raced: list[int] = []

    async def mode_wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        raced.append(len(coros))
        coros[1].close()
        return await coros[0]

    monkeypatch.setattr(Service, "wait_first", mode_wait_first)
    delivered: list[str] = []

    async def deliver(record: str) -> str:
        delivered.append(record)
        return record

    async def drain_one() -> Any:
        app = faust_app("transport-test", broker="kafka://127.0.0.1:1", stream_buffer_maxsize=1)
        topic = app.topic("crisis.events")
        app.topics.add(topic)  # as an agent subscribes it
        consumer: Any = app.consumer
        app.flow_control.resume()  # as Faust does once partitions are assigned
        if blocker == "flow suspended":
            consumer.stop_flow()
        elif blocker == "stream buffer full":
            topic.queue.put_nowait("a record the agent has not taken")
        return await consumer.wait_first(deliver("record"), consumer.suspend_flow.wait())

    results = asyncio.run(drain_one())
    assert delivered == ["record"]
    assert raced == ([] if blocker is None else [2])
    if blocker is None:
        assert (results.results, results.stopped) == (["record"], False)


@dataclass
class FakeProducer:
    """Faust's producer as `ProducerTopic` uses it: `send` enqueues, returns the delivery."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    deliveries: list[asyncio.Future[Any]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


def test_commits_reach_the_end_of_the_acked_run_when_a_gap_covers_offsets_acked_already() -> None:
    """What a SIGKILL restart left once: offsets 66 to 144 and 172 to 199 acked, and a gap Faust
    measured from the committed offset, 67 to 172, over most of them. Faust alone then commits
    68, 69, 70... one offset per commit interval."""
    consumer: Any = faust_app("transport-test", broker="kafka://127.0.0.1:1").consumer
    tp = TP("crisis.events", 1)
    acked = [*range(66, 145), *range(172, 200)]
    consumer._committed_offset[tp] = 66
    consumer._acked[tp], consumer._acked_index[tp] = list(acked), set(acked)
    consumer._gap[tp].addi(67, 173)

    commits = []
    for _ in range(3):  # what the commit timer does, commit after commit
        if (offset := consumer._new_offset(tp)) is not None:
            consumer._committed_offset[tp] = offset
            commits.append(offset)

    assert commits[-1] == 200, commits


@pytest.mark.parametrize("delivered", [True, False])
def test_an_output_kafka_did_not_take_ends_the_worker_and_a_delivered_one_does_not(
    delivered: bool,
) -> None:
    exits: list[int] = []
    producer = FakeProducer()

    async def send_one() -> None:
        topic = ProducerTopic(producer, "crisis.alerts", exit=exits.append)  # type: ignore[arg-type]  # a fake
        await topic.send(key=b"IRN-PAK", value=b"{}")
        delivery = producer.deliveries[0]
        if delivered:
            delivery.set_result("metadata")
        else:
            delivery.set_exception(TimeoutError("no broker"))
        await asyncio.sleep(0)  # the delivery's callbacks run

    asyncio.run(send_one())
    assert producer.sent == [("crisis.alerts", b"IRN-PAK", b"{}")]
    assert exits == ([] if delivered else [EXIT_RESTART])


@dataclass
class FakeBatch:
    """aiokafka's BatchBuilder as `BatchedTopic` fills it: `append` is None once `room` is used."""

    room: int
    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    def append(self, *, key: bytes | None, value: bytes, timestamp: float | None) -> object | None:
        if len(self.records) == self.room:
            return None
        self.records.append((key, value))
        return object()


@dataclass
class FakeKafka:
    """The aiokafka producer inside Faust's, as `BatchedTopic` uses it (8 partitions)."""

    room: int = 100
    handed_over: list[tuple[int, list[tuple[bytes | None, bytes]]]] = field(default_factory=list)
    deliveries: list[asyncio.Future[Any]] = field(default_factory=list)

    def _ensure_producer(self) -> FakeKafka:
        return self

    async def partitions_for(self, topic: str) -> set[int]:
        return {7, 3, 5, 1, 0, 2, 6, 4}

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self.handed_over.append((partition, batch.records))
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


DYADS = [b"IRN-PAK", b"ISR-LBN", b"RUS-UKR", b"CHN-USA", b"ARG-CHL", b"IND-PAK"]


def test_batched_outputs_go_to_the_partitions_kafka_would_pick_and_wait_for_the_flush() -> None:
    kafka = FakeKafka()
    sent = [(DYADS[n % len(DYADS)], f"update {n}".encode()) for n in range(30)]

    async def send_all() -> BatchedTopic:
        topic = BatchedTopic(kafka, "crisis.index")  # type: ignore[arg-type]  # a fake
        for key, value in sent:
            await topic.send(key=key, value=value)
        assert kafka.handed_over == []  # nothing before the flush
        await topic.flush()
        return topic

    topic = asyncio.run(send_all())
    assert topic.filling == {}
    by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for key, value in sent:
        kafka_picks = DefaultPartitioner()(key, list(range(8)), list(range(8)))
        by_partition.setdefault(kafka_picks, []).append((key, value))
    assert sorted(kafka.handed_over) == sorted(by_partition.items())  # one batch per partition, in order


def test_a_full_batch_is_handed_over_and_the_record_that_did_not_fit_starts_the_next() -> None:
    kafka = FakeKafka(room=2)

    async def send_five() -> None:
        topic = BatchedTopic(kafka, "crisis.alerts")  # type: ignore[arg-type]  # a fake
        for n in range(5):
            await topic.send(key=b"IRN-PAK", value=f"alert {n}".encode())
        await topic.flush()

    asyncio.run(send_five())
    assert [[value for _, value in records] for _, records in kafka.handed_over] == [
        [b"alert 0", b"alert 1"],
        [b"alert 2", b"alert 3"],
        [b"alert 4"],
    ]
    assert len({partition for partition, _ in kafka.handed_over}) == 1


@pytest.mark.parametrize("delivered", [True, False])
def test_a_batch_kafka_did_not_take_ends_the_worker_and_a_delivered_one_does_not(delivered: bool) -> None:
    exits: list[int] = []
    kafka = FakeKafka()

    async def send_one() -> None:
        topic = BatchedTopic(kafka, "crisis.alerts", exit=exits.append)  # type: ignore[arg-type]  # a fake
        await topic.send(key=b"IRN-PAK", value=b"{}")
        await topic.flush()
        if delivered:
            kafka.deliveries[0].set_result("metadata")
        else:
            kafka.deliveries[0].set_exception(TimeoutError("no broker"))
        await asyncio.sleep(0)  # the delivery's callbacks run

    asyncio.run(send_one())
    assert exits == ([] if delivered else [EXIT_RESTART])


def test_a_batched_topic_refuses_an_unkeyed_record() -> None:
    topic = BatchedTopic(FakeKafka(), "crisis.index")  # type: ignore[arg-type]  # a fake
    with pytest.raises(ValueError, match="keyed records only"):
        asyncio.run(topic.send(value=b"{}"))


@dataclass
class FakeMessage:
    time_in: float | None = None


def test_faust_sensors_count_messages_by_topic_and_leave_the_per_record_series_out() -> None:
    registry = CollectorRegistry()
    sensors = faust_sensors(registry)
    for offset in range(3):
        message = FakeMessage()
        sensors.on_message_in(TP("crisis.events", offset % 2), offset, message)
        sensors.on_message_out(TP("crisis.events", offset % 2), offset, message)
    assert (
        registry.get_sample_value("faust_messages_received_per_topic_total", {"topic": "crisis.events"}) == 3
    )
    assert registry.get_sample_value("faust_messages_received_total") == 3
    assert sensors.messages_received_total == 3, "Faust's own bookkeeping goes on"
    exported = {family.name for family in registry.collect()}
    assert "faust_total_rebalances" in exported and "faust_consumer_commit_latency" in exported
    left_out = {
        "faust_active_messages",
        "faust_messages_received_per_topics_partition",
        "faust_events_runtime_ms",
    }
    assert not left_out & exported


@dataclass
class FakeApp:
    rebalancing_count: int = 1


def test_faust_sensors_count_by_topic_again_after_a_rebalance_removed_the_series() -> None:
    registry = CollectorRegistry()
    sensors = faust_sensors(registry)
    events = TP("crisis.events", 0)
    sensors.on_message_in(events, 0, FakeMessage())
    app: Any = FakeApp()  # what the rebalance hooks read of an app
    state = sensors.on_rebalance_start(app)
    sensors.on_rebalance_end(app, {**state, "time_end": state["time_start"]})
    sensors.on_message_in(events, 1, FakeMessage())
    assert (
        registry.get_sample_value("faust_messages_received_per_topic_total", {"topic": "crisis.events"}) == 1
    )


def test_a_partitions_end_offset_is_set_as_it_moves_and_again_after_a_rebalance_cleared_it() -> None:
    registry = CollectorRegistry()
    sensors = faust_sensors(registry)
    events = TP("crisis.events", 3)

    def end_offset() -> float | None:
        labels = {"topic": "crisis.events", "partition": "3"}
        return registry.get_sample_value("faust_topic_partition_end_offset", labels)

    for offset in (40, 40, 41):  # Faust reports it per record
        sensors.track_tp_end_offset(events, offset)
    assert end_offset() == 41
    app: Any = FakeApp()
    state = sensors.on_rebalance_start(app)
    sensors.on_rebalance_end(app, {**state, "time_end": state["time_start"]})
    assert end_offset() is None
    sensors.track_tp_end_offset(events, 41)
    assert end_offset() == 41
