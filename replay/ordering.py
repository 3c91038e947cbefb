"""The one order in which records are played: event time, then record id.

The replay producer and the offline backtest both use it, so the worker and the backtest
see each dyad's records in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from replay.readers import read_events
from replay.readers.base import BadRow, Located
from schemas.events import record_id


def play_key(item: Located) -> tuple[datetime, str]:
    return (item.record.event_time, record_id(item.record))


def in_play_order(items: Iterable[Located]) -> list[Located]:
    return sorted(items, key=play_key)


def read_in_play_order(
    paths: Iterable[Path], file_format: str = "auto"
) -> tuple[list[Located], list[BadRow]]:
    """Every readable record of the files in play order, and the rows that were not.

    Raises InputError when a file cannot be read at all.
    """
    located: list[Located] = []
    bad: list[BadRow] = []
    for path in paths:
        for item in read_events(path, file_format):
            if isinstance(item, BadRow):
                bad.append(item)
            else:
                located.append(item)
    return in_play_order(located), bad
