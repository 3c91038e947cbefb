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
import re
import secrets
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

QUEUE_SIZE = 2_000
"""Messages a slow client may fall behind by before it is cut off (its browser reconnects)."""
RESUMABLE = 1_000
"""The latest messages kept for clients that reconnect (fewer than QUEUE_SIZE: they must fit)."""
MAX_ID_LENGTH = 64
DEFAULT_MAX_SUBSCRIBERS = 100


class _Message:
    """An SSE message whose data is rendered the first time its text is asked for."""

    __slots__ = ("head", "render", "rendered")

    def __init__(self, head: str, render: Callable[[], str]) -> None:
        self.head = head
        self.render = render
        self.rendered: str | None = None

    @property
    def text(self) -> str:
        if self.rendered is None:
            self.rendered = f"{self.head}{self.render()}\n\n"
        return self.rendered


class TooManySubscribers(Exception):
    """A new /api/stream client would pass the limit: it is refused, the others keep theirs."""


class Broadcaster:
    """Memory stays bounded however many clients are slow: each queue holds at most QUEUE_SIZE
    messages (all queues share the message strings), and at most `max_subscribers` clients are
    connected at once, counted until their handler ends, not until they are cut off."""

    def __init__(self, epoch: str | None = None, max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS) -> None:
        self.subscribers: set[asyncio.Queue[str | None]] = set()
        """The queues being fed."""
        self.connected: set[asyncio.Queue[str | None]] = set()
        """Every client's queue until it unsubscribes, cut-off ones included."""
        self.max_subscribers = max_subscribers
        self.epoch = epoch or secrets.token_hex(4)
        self.number = 0
        """The number of the last message published (0: none yet)."""
        self.recent: deque[tuple[int, _Message]] = deque(maxlen=RESUMABLE)

    def subscribe(self, last_event_id: str | None = None) -> asyncio.Queue[str | None]:
        """A new client's queue: with what it missed since `last_event_id` if it gives one.
        TooManySubscribers when `max_subscribers` are connected already; `unsubscribe` it when
        the client's handler ends, whatever ended it."""
        if len(self.connected) >= self.max_subscribers:
            raise TooManySubscribers(f"{self.max_subscribers} clients are on /api/stream already")
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        for message in self.missed_since(last_event_id) if last_event_id is not None else []:
            queue.put_nowait(message)
        self.subscribers.add(queue)
        self.connected.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.subscribers.discard(queue)
        self.connected.discard(queue)

    def publish(self, kind: str, render: Callable[[], str]) -> None:
        """One SSE message to every subscriber; a lagging one is cut off (told to hang up).
        `render` gives its JSON, called once, when a client first needs it: with none connected,
        most messages are never sent, and the view publishes one for every record it reads."""
        self.number += 1
        message = _Message(f"id: {self.epoch}-{self.number}\nevent: {kind}\ndata: ", render)
        self.recent.append((self.number, message))
        for queue in list(self.subscribers):
            if queue.qsize() >= QUEUE_SIZE - 1:
                log.warning("an /api/stream client fell %d messages behind; closing it", QUEUE_SIZE)
                self.hang_up(queue)
            else:
                queue.put_nowait(message.text)

    def hang_up(self, queue: asyncio.Queue[str | None]) -> None:
        """No more messages for this client, not even those it has not taken yet: its handler
        ends at once (and unsubscribes it). A browser reconnects and resumes or reloads."""
        self.subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    def close(self) -> None:
        """Every client hangs up: the server is stopping."""
        for queue in list(self.connected):
            self.hang_up(queue)

    def missed_since(self, last_event_id: str) -> list[str]:
        """The messages after `last_event_id`, or a `reload` message when they are not all here."""
        last_event_id = last_event_id[:MAX_ID_LENGTH]
        epoch, _, number = last_event_id.partition("-")
        ours = epoch == self.epoch and re.fullmatch(r"[0-9]{1,18}", number) is not None
        seen = int(number) if ours else None
        oldest = self.recent[0][0] if self.recent else self.number + 1
        if seen is None:
            return [self.reload("the last message seen is not this worker's since it started")]
        if seen > self.number or seen < oldest - 1:
            return [self.reload(f"the messages after {last_event_id} are no longer kept")]
        return [message.text for published, message in self.recent if published > seen]

    def reload(self, reason: str) -> str:
        """Tells a client to fetch the state again; its id is the latest, so it resumes from here."""
        return f"id: {self.epoch}-{self.number}\nevent: reload\ndata: {json.dumps({'reason': reason})}\n\n"
