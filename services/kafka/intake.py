"""Records POSTed to the API, onto `crisis.events`: the web side's `EventSink` port
(services.web.intake) on aiokafka, wired in by services.bootstrap.

The records go the way every way in sends them (schemas.topics.event_message). The producer is
idempotent with acks from every in-sync replica, so an acknowledged record is durably on the
log once, however often the producer had to retry it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import CrisisEvent, Retraction
from schemas.kafka import KafkaConnection
from schemas.topics import SOURCE_HEADER, event_message

log = logging.getLogger(__name__)

ACK_TIMEOUT_SECONDS = 15.0
"""The longest a request waits for Kafka (connecting included): after it, what is not yet
acknowledged is reported so, and the client can send it again."""


class KafkaIntake:
    """Appends records to one topic with a producer started on first use (so a worker whose API
    takes no events never opens it) and stopped by `close`. A producer that cannot start is
    let go: the next request tries again."""

    def __init__(self, kafka: KafkaConnection, topic: str, ack_timeout: float = ACK_TIMEOUT_SECONDS) -> None:
        self.kafka = kafka
        self.topic = topic
        self.ack_timeout = ack_timeout
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def append(self, records: Sequence[CrisisEvent | Retraction], source: str) -> list[str | None]:
        """Per record, None once Kafka acknowledged it, else why not (see `EventSink`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout
        try:
            async with asyncio.timeout(self.ack_timeout):
                producer = await self._started()
        except (KafkaError, OSError, TimeoutError) as error:
            why = f"Kafka at {self.kafka} cannot be reached: {error or type(error).__name__}"
            log.warning("records from %s not appended: %s", source, why)
            return [why] * len(records)
        deliveries: list[asyncio.Future[Any] | str] = []
        for record in records:
            message = event_message(record, datetime.now(UTC))
            try:
                deliveries.append(
                    await producer.send(
                        self.topic,
                        value=message.value,
                        key=message.key,
                        timestamp_ms=message.timestamp_ms,
                        headers=[(SOURCE_HEADER, source.encode())],
                    )
                )
            except KafkaError as error:  # refused before it was sent: too big, no metadata in time
                deliveries.append(f"not sent: {error}")
        waiting = [delivery for delivery in deliveries if not isinstance(delivery, str)]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        return [self._outcome(delivery) for delivery in deliveries]

    def _outcome(self, delivery: asyncio.Future[Any] | str) -> str | None:
        if isinstance(delivery, str):
            return delivery
        if not delivery.done():
            return f"no acknowledgement from Kafka within {self.ack_timeout:g} s"
        if delivery.cancelled():
            return "the delivery was cancelled"
        error = delivery.exception()
        return None if error is None else f"not acknowledged: {error or type(error).__name__}"

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.kafka.client_options(),
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=5,
                    request_timeout_ms=int(self.ack_timeout * 1000),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
                log.info("API intake producing to %s", self.topic)
            return self._producer

    async def close(self) -> None:
        """Stop the producer (it sends what it holds first); a later `append` starts a new one."""
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
