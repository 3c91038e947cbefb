"""How the worker talks to Kafka past Faust's defaults: its consumer's fetch wait
(services/kafka/transport.py) and its outputs straight on the producer (`ProducerTopic`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.kafka.health import EXIT_RESTART
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
