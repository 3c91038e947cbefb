"""faust-streaming's Kafka transport, without three stalls and a per-record cost of its defaults.

Every Faust app of the project is made by `faust_app`, so each runs on this transport (the
worker, and the benchmark's no-op agent: the ceiling it measures is this transport's). Measured
on the worker with a backlog of 20,000 events (`make bench`):

- **Fetch wait.** faust-streaming 0.15.3 builds its aiokafka consumer with
  `fetch_max_wait_ms=1500`, fixed (`AIOKafkaConsumerThread._create_worker_consumer`). aiokafka
  has one fetch in flight per broker, and asks in it only for the partitions it holds no records
  of. With a backlog, those are often only partitions with nothing new (the assignor's
  `__assignor-__leader`, a caught-up one): the broker holds that fetch for the whole wait, and
  the backlog's partitions, drained meanwhile, cannot be fetched again until it returns. getmany
  waited ~1 s every ~1.7 s, 1,400 events/s; with a 50 ms wait, ~2,200/s. Live, the same stall
  was the p99 of producer-to-index latency. A broker with nothing to send answers each 50 ms: a
  few small requests a second per worker, to one broker.
- **getmany's timeout.** Faust's drain loop asks for records with a 1 s timeout, for the
  partitions it holds active; it takes a partition out of that set while its stream buffer is
  under pressure, and back once the agent has drained it. aiokafka is not told: it waits out the
  second for records of the other partitions, while those of the partitions let back in sit in
  its buffer. The agent ran dry for up to ~0.25 s every few batches (~1.3 s idle per 20,000
  events). Asked with `GETMANY_TIMEOUT_SECONDS`, the loop sees the partitions let back in within
  it: idle ~0.15 s per 20,000 events. An idle consumer asks its thread 20 times a second.
- **Delivery to the streams.** The drain loop hands each record over with
  `wait_first(delivery, suspend_flow.wait())`: four tasks and an `asyncio.wait` per record
  (~20 µs), so that a delivery blocked on a full stream buffer gives way to a rebalance or a
  stop. A delivery that nothing can block is awaited directly (`_Consumer.wait_first`).

The last two together: the worker from ~3,200 to ~3,900 events/s, side by side.

And one commit bug: **acked offsets counted twice.** Faust commits the end of the first run of
consecutive offsets in its list of acked ones, after adding to that list the gaps it saw in
the offsets it read (records a compacted topic lacks). It adds them without looking at what is
there: a gap measured from a read offset set back to the committed one (the seek after a
restart) covers offsets acked since, which are then listed twice, and the run ends at the
first repeat. Commits then advance by one offset per commit interval (robinhood/faust#559,
#625): after a SIGKILL restart, a partition's commits went from 66 to 140 in 74 commits over
three minutes, with its records long processed. `_Consumer._new_offset` drops the repeats after
each commit, so the next one reaches the end of the run.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

FETCH_MAX_WAIT_MS = 50
"""The longest the broker holds a fetch with nothing to send (aiokafka's default is 500)."""
GETMANY_TIMEOUT_SECONDS = 0.05
"""The longest the drain loop waits for records before it asks again, with the partitions it
holds active then (Faust's is 1 s)."""


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (its Fetcher); Faust offers no setting.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> Any:
        return await super()._wait_next_records(min(timeout, GETMANY_TIMEOUT_SECONDS))

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """The drain loop's `wait_first(delivery, suspend_flow.wait())`, the delivery awaited
        directly when it cannot block; anything else as mode does it. (The drain loop reads
        nothing of the result.)"""
        if len(coros) == 2 and timeout is None and _is_event_wait(coros[1]) and self._delivery_cannot_block():
            delivery, suspended = coros
            suspended.close()  # never started
            return WaitResults([delivery], [await delivery], False)
        return await super().wait_first(*coros, timeout=timeout)

    def _new_offset(self, tp: Any) -> int | None:
        """Faust's, then its list of acked offsets without repeats (see the module's docstring)."""
        offset: int | None = super()._new_offset(tp)
        acked = self._acked[tp]
        if len(distinct := set(acked)) < len(acked):
            acked[:] = sorted(distinct)
        return offset

    def _delivery_cannot_block(self) -> bool:
        """What Faust's `on_message` (faust/transport/conductor.py) waits for, none pending: flow
        stopped (a rebalance), the producer's buffer past its bound, a stream buffer full."""
        app, buffer = self.app, self.app.producer.buffer
        flowing = app.flow_control.is_active() and not self.suspend_flow.is_set()
        if not flowing or buffer.size > buffer.max_messages:
            return False
        return not any(channel.queue.full() for channel in app.topics)


_EVENT_WAIT = asyncio.Event.wait.__code__


def _is_event_wait(coro: Any) -> bool:
    """Whether `coro` is a not yet awaited `asyncio.Event.wait()` (the drain loop's `suspend_flow`)."""
    return getattr(coro, "cr_code", None) is _EVENT_WAIT


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport, its consumer without the stalls above."""

    Consumer: ClassVar[type[_Consumer]] = _Consumer


def faust_app(app_id: str, **settings: Any) -> faust.App:
    """A Faust app on this transport, whatever its broker URL's scheme (the project's are all
    kafka://); set before anything asks the app for its transport."""
    app = faust.App(app_id, **settings)
    app.transport = Transport(app.conf.broker_consumer, app)
    return app
