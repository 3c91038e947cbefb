"""Cursor paging for lists in newest-first order (/api/alerts, /api/events).

A page ends where its last item is; the next starts strictly after it in the same order, so
items that arrive between two requests never shift a page (an offset would repeat or skip
them). The order is (event time, id), newest first: the id breaks ties, so no two items share a
place. The cursor is that place, opaque to clients: base64url of JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

Item = TypeVar("Item")
Place = tuple[datetime, str]
"""Where an item stands: its event time and its id."""


def encode(place: Place) -> str:
    time, identity = place
    return base64.urlsafe_b64encode(json.dumps([time.isoformat(), identity]).encode()).decode().rstrip("=")


def decode(cursor: str) -> Place:
    """The place a cursor names; ValueError when it is not one this API gave."""
    try:
        time, identity = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        place = (datetime.fromisoformat(time), identity)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, RecursionError) as error:
        raise ValueError("not a cursor this API gave: pass the `next` of a previous page") from error
    if not isinstance(identity, str) or place[0].tzinfo is None:
        raise ValueError("not a cursor this API gave: pass the `next` of a previous page")
    return place


def page(
    items: Iterable[Item], place: Callable[[Item], Place], after: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """Up to `limit` items newest first, from just after the cursor `after` (None: the newest),
    and the cursor of the next page (None when there is none)."""
    ordered = sorted(items, key=place, reverse=True)
    if after is not None:
        start = decode(after)
        ordered = [item for item in ordered if place(item) < start]
    found = ordered[:limit]
    return found, encode(place(found[-1])) if len(ordered) > limit else None
