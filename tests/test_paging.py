"""Cursor paging of /api/alerts and /api/events: every item once, in order, however the list
grows between pages; a cursor that is not one the API gave, or a limit out of range, is refused
in one line."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from services.web.paging import decode, encode, page
from services.web.projection import Projection
from tests.builders import event
from tests.web_server import TOKEN, run, serving

START = datetime(2024, 1, 1, tzinfo=UTC)


def places(count: int, ties: int = 3) -> list[tuple[datetime, str]]:
    """`count` places, `ties` of them at each time: ids alone tell those apart."""
    return [(START + timedelta(hours=n // ties), f"e{n:03d}") for n in range(count)]


def all_pages(items: list[tuple[datetime, str]], limit: int) -> list[list[tuple[datetime, str]]]:
    pages, cursor = [], None
    while True:
        found, cursor = page(items, lambda item: item, cursor, limit)
        pages.append(found)
        if cursor is None:
            return pages


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 10, 11])
def test_pages_give_every_item_once_newest_first(limit: int) -> None:
    items = places(10)
    pages = all_pages(items, limit)
    assert [item for found in pages for item in found] == sorted(items, reverse=True)
    assert all(len(found) == limit for found in pages[:-1]) and 1 <= len(pages[-1]) <= limit


def test_items_that_arrive_between_pages_shift_nothing() -> None:
    items = places(6)
    first, cursor = page(items, lambda item: item, None, 3)
    newer = [(START + timedelta(days=9), "late")]
    rest, _ = page(items + newer, lambda item: item, cursor, 10)
    assert first + rest == sorted(items, reverse=True)


@pytest.mark.parametrize("cursor", ["", "nonsense", "e30=", encode((START, "x"))[:-2], "WzEsMl0"])
def test_a_cursor_the_api_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="not a cursor this API gave"):
        decode(cursor)


def test_the_api_pages_alerts_and_events_and_refuses_what_is_out_of_range() -> None:
    async def check() -> None:
        async with serving() as (app, base):
            projection: Projection = app.projection
            for n in range(5):
                projection.add_record(event(f"e{n}", hours=n // 2))
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                seen: list[str] = []
                cursor = ""
                while True:
                    async with session.get(f"{base}/api/events?limit=2{cursor}") as answer:
                        assert answer.status == 200
                        body = await answer.json()
                    seen += [detail["event"]["event_id"] for detail in body["events"]]
                    if body["next"] is None:
                        break
                    cursor = f"&cursor={body['next']}"
                assert seen == ["e4", "e3", "e2", "e1", "e0"]
                nested = base64.urlsafe_b64encode(b"[" * 3000).decode()
                for query in ("limit=0", "limit=10001", "cursor=nonsense", "limit=x", f"cursor={nested}"):
                    for path in ("/api/events", "/api/alerts"):
                        async with session.get(f"{base}{path}?{query}") as answer:
                            assert answer.status == 400, (path, query)
                            problem = await answer.json()
                            assert "\n" not in problem["detail"]
                async with session.get(f"{base}/api/alerts?limit=1") as answer:
                    assert await answer.json() == {"alerts": [], "next": None}

    run(check)
