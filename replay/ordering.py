"""The one order in which records are played: event time, then record id.

The replay producer and the offline backtest both use it, so the worker and the backtest
see each dyad's records in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from replay.readers.base import Located
from schemas.events import record_id


def play_key(item: Located) -> tuple[datetime, str]:
    return (item.record.event_time, record_id(item.record))


def in_play_order(items: Iterable[Located]) -> list[Located]:
    return sorted(items, key=play_key)
