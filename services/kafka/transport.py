"""faust-streaming's Kafka transport, with a fetch wait short enough not to stall a backlog.

faust-streaming 0.15.3 builds its aiokafka consumer with `fetch_max_wait_ms=1500`, fixed
(`AIOKafkaConsumerThread._create_worker_consumer` in faust/transport/drivers/aiokafka.py). aiokafka
has one fetch in flight per broker, and asks in it only for the partitions it holds no records of.
With a backlog, those are often only partitions with nothing new (the assignor's
`__assignor-__leader`, a caught-up one): the broker holds that fetch for the whole wait, and the
backlog's partitions, drained meanwhile, cannot be fetched again until it returns. Measured on the
worker with a backlog of 20,000 events: getmany waited ~1 s every ~1.7 s (about half the run),
1,400 events/s; with a 50 ms wait, no such stall and ~2,200 events/s. Live, the same stall was the
p99 of producer-to-index latency. A broker with nothing to send answers each 50 ms: a few small
requests a second per worker, to one broker.

Every Faust app of the project is made by `faust_app`, so each runs on this transport.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 50
"""The longest the broker holds a fetch with nothing to send (aiokafka's default is 500)."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (its Fetcher); Faust offers no setting.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, its consumer fetching with `FETCH_MAX_WAIT_MS`."""

    Consumer: ClassVar[type[_Consumer]] = _Consumer


def faust_app(app_id: str, **settings: Any) -> faust.App:
    """A Faust app on this transport, whatever its broker URL's scheme (the project's are all
    kafka://); set before anything asks the app for its transport."""
    app = faust.App(app_id, **settings)
    app.transport = Transport(app.conf.broker_consumer, app)
    return app
