"""/api/stream: a client that reconnects with the last id it saw misses nothing, or is told to
reload; slow or too many clients cannot grow the worker's memory. Without Kafka: the broadcaster
alone, then the server on a real socket."""

from __future__ import annotations

import asyncio
import json
import logging
from functools import partial

import aiohttp
import pytest

from services.web import app as app_module
from services.web.stream import QUEUE_SIZE, RESUMABLE, Broadcaster, TooManySubscribers
from tests.web_server import TOKEN, run, serving


def published(broadcaster: Broadcaster, count: int) -> list[str]:
    """`count` messages published, and their ids."""
    ids = []
    for number in range(count):
        broadcaster.publish("index", partial(json.dumps, {"n": number}))
        ids.append(f"{broadcaster.epoch}-{broadcaster.number}")
    return ids


def drained(queue: asyncio.Queue[str | None]) -> list[str]:
    messages = []
    while not queue.empty():
        message = queue.get_nowait()
        assert message is not None
        messages.append(message)
    return messages


def fields(message: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in message.strip().splitlines())


def test_a_message_is_rendered_once_and_only_once_a_client_needs_it() -> None:
    broadcaster = Broadcaster()
    renders: list[int] = []

    def render() -> str:
        renders.append(broadcaster.number)
        return json.dumps({"n": 1})

    broadcaster.publish("index", render)
    assert renders == [], "no client: the view's JSON is not rendered"
    before_it = f"{broadcaster.epoch}-0"
    first, second = drained(broadcaster.subscribe(before_it)), drained(broadcaster.subscribe(before_it))
    assert first == second and json.loads(fields(first[0])["data"]) == {"n": 1}
    assert renders == [1]


def test_a_client_that_comes_back_gets_what_it_missed_in_order() -> None:
    broadcaster = Broadcaster()
    ids = published(broadcaster, 5)
    resumed = drained(broadcaster.subscribe(ids[1]))
    assert [fields(message)["id"] for message in resumed] == ids[2:]
    assert [json.loads(fields(message)["data"])["n"] for message in resumed] == [2, 3, 4]
    assert drained(broadcaster.subscribe(ids[-1])) == []  # it missed nothing
    assert drained(broadcaster.subscribe()) == []  # a new client starts from now


def test_a_gap_no_longer_kept_or_another_workers_id_asks_for_a_reload() -> None:
    broadcaster = Broadcaster()
    ids = published(broadcaster, RESUMABLE + 2)
    unicode_digit = f"{broadcaster.epoch}-\u00b2"  # a digit to str.isdigit, not to int()
    for last_seen in (ids[0], f"{broadcaster.epoch}-{broadcaster.number + 1}", unicode_digit, "x-3", "", "-"):
        (message,) = drained(broadcaster.subscribe(last_seen))
        assert fields(message)["event"] == "reload", last_seen
        assert fields(message)["id"] == ids[-1]  # it resumes from here
    # The oldest message kept follows the last one a client can have seen without a gap.
    assert len(drained(broadcaster.subscribe(ids[1]))) == RESUMABLE


def test_the_server_resumes_a_stream_from_last_event_id() -> None:
    async def check() -> None:
        async with serving() as (app, base):
            ids = published(app.broadcaster, 3)
            headers = {"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": ids[0]}
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{base}/api/stream", headers=headers) as stream,
            ):
                seen: list[str] = []
                async for raw in stream.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("id: "):
                        seen.append(line[4:])
                    if len(seen) == 2:
                        break
            assert seen == ids[1:]

    run(check)


def test_a_client_too_slow_to_keep_up_is_cut_off_and_the_others_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broadcaster = Broadcaster()
    slow, fast = broadcaster.subscribe(), broadcaster.subscribe()
    with caplog.at_level(logging.WARNING, logger="services.web.stream"):
        for number in range(QUEUE_SIZE + 10):
            broadcaster.publish("index", partial(json.dumps, {"n": number}))
            drained(fast)
    assert slow not in broadcaster.subscribers and fast in broadcaster.subscribers
    assert drained_to_the_end(slow) == [None]  # nothing of what it had: hang up at once
    assert slow in broadcaster.connected  # still counted, until its handler ends
    assert "fell 2000 messages behind" in caplog.text


def drained_to_the_end(queue: asyncio.Queue[str | None]) -> list[str | None]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_one_client_too_many_is_refused_until_one_leaves() -> None:
    broadcaster = Broadcaster(max_subscribers=2)
    first, _ = broadcaster.subscribe(), broadcaster.subscribe()
    with pytest.raises(TooManySubscribers):
        broadcaster.subscribe()
    broadcaster.unsubscribe(first)
    broadcaster.subscribe()


def test_the_server_answers_one_stream_client_too_many_with_503_and_retry_after() -> None:
    async def check() -> None:
        async with serving() as (app, base):
            app.broadcaster.max_subscribers = 1
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                aiohttp.ClientSession(headers=headers) as session,
                session.get(f"{base}/api/stream") as first,
            ):
                assert first.status == 200
                await first.content.readline()  # connected: its retry line
                async with session.get(f"{base}/api/stream") as second:
                    assert second.status == 503
                    assert second.headers["Retry-After"] == "30"
                    assert "already" in (await second.json(content_type=None))["detail"]

    run(check)


def test_a_client_gone_before_its_stream_started_or_not_reading_leaves_no_slot_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app_module, "STREAM_WRITE_SECONDS", 0.5)

    async def check() -> None:
        async with serving() as (app, base):
            host, port = base.removeprefix("http://").split(":")
            request = f"GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            for _ in range(20):  # connect, ask, and go at once
                _, writer = await asyncio.open_connection(host, int(port))
                writer.write(request.encode())
                writer.close()
            # One that stays but never reads: its socket fills, its writes wait, it is let go.
            _, stalled = await asyncio.open_connection(host, int(port))
            stalled.write(request.encode())
            big = json.dumps({"padding": "x" * 100_000})
            async with asyncio.timeout(30):
                while app.broadcaster.connected or app.broadcaster.number == 0:
                    app.broadcaster.publish("index", lambda: big)
                    await asyncio.sleep(0.01)
            stalled.close()

    run(check)
