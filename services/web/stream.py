"""Fan-out of live updates to the /api/stream (Server-Sent Events) connections.

Every message has an id, `<epoch>-<number>`: the epoch names this process (numbers restart with
it), the number counts its messages. A client that reconnects with the last id it saw (the
`Last-Event-ID` header, which a browser's EventSource sends by itself) first gets the messages it
missed, if the last `RESUMABLE` still hold them; otherwise one `reload` message tells it to fetch
the state again, since the gap is gone from memory or the id is another process's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque

log = logging.getLogger(__name__)

QUEUE_SIZE = 2_000
"""Messages a slow client may fall behind by before it is cut off (its browser reconnects)."""
RESUMABLE = 1_000
"""The latest messages kept for clients that reconnect (fewer than QUEUE_SIZE: they must fit)."""
MAX_ID_LENGTH = 64
DEFAULT_MAX_SUBSCRIBERS = 100


class TooManySubscribers(Exception):
    """A new /api/stream client would pass the limit: it is refused, the others keep theirs."""


class Broadcaster:
    """Memory stays bounded however many clients are slow: each queue holds at most QUEUE_SIZE
    messages (all queues share the message strings), at most `max_subscribers` clients at once."""

    def __init__(self, epoch: str | None = None, max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS) -> None:
        self.subscribers: set[asyncio.Queue[str | None]] = set()
        self.max_subscribers = max_subscribers
        self.epoch = epoch or secrets.token_hex(4)
        self.number = 0
        """The number of the last message published (0: none yet)."""
        self.recent: deque[tuple[int, str]] = deque(maxlen=RESUMABLE)

    def subscribe(self, last_event_id: str | None = None) -> asyncio.Queue[str | None]:
        """A new client's queue: with what it missed since `last_event_id` if it gives one.
        TooManySubscribers when `max_subscribers` are connected already."""
        if len(self.subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"{self.max_subscribers} clients are on /api/stream already")
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        for message in self.missed_since(last_event_id) if last_event_id is not None else []:
            queue.put_nowait(message)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.subscribers.discard(queue)

    def publish(self, kind: str, data_json: str) -> None:
        """One SSE message to every subscriber; None tells a lagging one to hang up."""
        self.number += 1
        message = f"id: {self.epoch}-{self.number}\nevent: {kind}\ndata: {data_json}\n\n"
        self.recent.append((self.number, message))
        for queue in list(self.subscribers):
            if queue.qsize() >= QUEUE_SIZE - 1:
                log.warning("an /api/stream client fell %d messages behind; closing it", QUEUE_SIZE)
                self.unsubscribe(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)

    def missed_since(self, last_event_id: str) -> list[str]:
        """The messages after `last_event_id`, or a `reload` message when they are not all here."""
        epoch, _, number = last_event_id[:MAX_ID_LENGTH].partition("-")
        seen = int(number) if epoch == self.epoch and number.isdigit() else None
        oldest = self.recent[0][0] if self.recent else self.number + 1
        if seen is None:
            return [self.reload("the last message seen is not this worker's since it started")]
        if seen > self.number or seen < oldest - 1:
            return [self.reload(f"the messages after {last_event_id} are no longer kept")]
        return [message for published, message in self.recent if published > seen]

    def reload(self, reason: str) -> str:
        """Tells a client to fetch the state again; its id is the latest, so it resumes from here."""
        return f"id: {self.epoch}-{self.number}\nevent: reload\ndata: {json.dumps({'reason': reason})}\n\n"
