"""How the worker runs on Faust past its defaults: its consumer's fetch wait
(services/kafka/transport.py), its outputs straight on the producer (`ProducerTopic`), and
Faust's sensors without their per-record series (services/kafka/sensors.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from services.kafka.health import EXIT_RESTART
from services.kafka.sensors import faust_sensors
from services.kafka.transport import FETCH_MAX_WAIT_MS, faust_app
from services.kafka.worker import ProducerTopic


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


@dataclass
class FakeProducer:
    """Faust's producer as `ProducerTopic` uses it: `send` enqueues, returns the delivery."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    deliveries: list[asyncio.Future[Any]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        self.deliveries.append(asyncio.get_running_loop().create_future())
        return self.deliveries[-1]


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
