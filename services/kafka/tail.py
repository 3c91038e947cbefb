"""`crisismon alerts tail`: a subscriber of `crisis.alerts`, filtered, until idle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from schemas.kafka import KafkaConnection
from schemas.outputs import Alert, Level
from services.kafka.topics import reader

log = logging.getLogger(__name__)


async def tail_alerts(
    kafka: KafkaConnection,
    topic: str,
    on_alert: Callable[[Alert], None],
    from_beginning: bool = False,
    dyad: str | None = None,
    min_level: Level = Level.NORMAL,
    idle_exit: float | None = None,
    stop: asyncio.Event | None = None,
    since: float | None = None,
) -> int:
    """Calls `on_alert` for each matching alert; returns how many matched once idle for `idle_exit` s.

    Without `from_beginning`, the alerts published from `since` on (epoch seconds, by their Kafka
    timestamps; by default, from the call): however long the consumer takes to reach the broker,
    an alert published meanwhile is not skipped, as "latest" at its first fetch would skip it.
    """
    since_ms = round((time.time() if since is None else since) * 1000)
    consumer = reader(kafka, topic, from_beginning=from_beginning)
    matched = 0
    try:
        await consumer.start()  # in the try: a consumer that could not start is stopped too, unwarned
        if not from_beginning:
            await _seek_to_time(consumer, since_ms)
        last_message = time.monotonic()
        while (idle_exit is None or time.monotonic() - last_message < idle_exit) and not (
            stop and stop.is_set()
        ):
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                last_message = time.monotonic()
                for message in messages:
                    try:
                        alert = Alert.model_validate_json(message.value)
                    except ValidationError as error:
                        log.warning(
                            "skipping a record that is not an alert at offset %s: %s", message.offset, error
                        )
                        continue
                    if (dyad is None or alert.dyad == dyad) and alert.touches(min_level):
                        matched += 1
                        on_alert(alert)
    finally:
        await consumer.stop()
    return matched


async def _seek_to_time(consumer: AIOKafkaConsumer, since_ms: int) -> None:
    """Each assigned partition at its first record stamped `since_ms` or later, or at its end if it
    has none. The ends are read first: a record appended between the two requests is found by the
    second, so none falls between them."""
    partitions = list(consumer.assignment())
    ends = await consumer.end_offsets(partitions)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
    for partition in partitions:
        first = found.get(partition)
        consumer.seek(partition, ends[partition] if first is None else first.offset)
