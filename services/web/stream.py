"""Fan-out of live updates to the /api/stream (Server-Sent Events) connections."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

QUEUE_SIZE = 2_000
"""Messages a slow client may fall behind by before it is cut off (its browser reconnects)."""


class Broadcaster:
    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue[str | None]] = set()

    def subscribe(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.subscribers.discard(queue)

    def publish(self, kind: str, data_json: str) -> None:
        """One SSE message to every subscriber; None tells a lagging one to hang up."""
        message = f"event: {kind}\ndata: {data_json}\n\n"
        for queue in list(self.subscribers):
            if queue.qsize() >= QUEUE_SIZE - 1:
                log.warning("an /api/stream client fell %d messages behind; closing it", QUEUE_SIZE)
                self.unsubscribe(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)
