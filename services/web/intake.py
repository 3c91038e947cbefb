"""Records sent by analysts' own tools (`POST /api/events`): the port they are appended
through, and how a request body becomes records.

The web side reads and validates a body with the models every other edge uses
(`schemas.events.parse_record`, the `max_future_skew` rule of `services.core.timeutil`), so the
API refuses exactly what the worker would dead-letter. Where the accepted records go is not
its business: it hands them to an `EventSink`, which services.bootstrap fills with the Kafka
adapter (services.kafka.intake). Tests fill it with an in-memory fake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from schemas.events import CrisisEvent, Retraction, parse_record
from schemas.validation import describe
from services.core.timeutil import too_far_ahead
from services.web.models import MAX_REJECTIONS_LISTED, BodyLayout

JSON_LINES_TYPES = frozenset({"application/x-ndjson", "application/jsonl"})
JSON_TYPE = "application/json"

JSON_SPACE = re.compile(r"[ \t\n\r]*")
"""What JSON counts as whitespace (str.strip would also take, e.g., a no-break space)."""


class EventSink(Protocol):
    """Where accepted records go: the contract the web app relies on.

    `append` returns once each record has either been acknowledged by the log, written
    durably (acks from every in-sync replica), so that anyone reading the log right after
    finds it, or been given up on. It answers one entry per record, in their order: None for
    acknowledged, else one line saying why not. It does not raise because the log is
    unreachable or slow (that is every record not acknowledged), and it bounds how long it
    waits, so a request cannot hang on it. A record not acknowledged may still reach the log
    later: sending it again is safe, as the worker counts a repeated id as a duplicate.

    Each record goes to the log keyed by its dyad (none for a record of no dyad), stamped with
    its event time, and labelled with `source` (e.g. `api:203.0.113.7`) so a record on the log
    can be traced to where it came from. `close` lets go of the connection, on shutdown.
    """

    async def append(self, records: Sequence[CrisisEvent | Retraction], source: str) -> list[str | None]: ...

    async def close(self) -> None: ...


class NotRecords(ValueError):
    """The body is neither JSON Lines nor a JSON array or object: one line saying why (a 400)."""


@dataclass
class PostedBody:
    """A body read: the valid records in their order, and the refused ones by their number."""

    layout: BodyLayout
    records: list[CrisisEvent | Retraction] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(number, reason) of the first `MAX_REJECTIONS_LISTED` refused records."""
    rejected_total: int = 0

    def reject(self, number: int, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTIONS_LISTED:
            self.rejected.append((number, reason))


def read_body(body: bytes, content_type: str, now: datetime, max_future_skew: timedelta) -> PostedBody:
    """The records of a POSTed body, each validated as the worker would: by the schema, and
    refused when its event time is more than `max_future_skew` ahead of `now`.

    `application/x-ndjson` and `application/jsonl` are JSON Lines (one record per line, blank
    lines skipped, numbered by line); `application/json` is an array of records (numbered by
    position) or one record. Any other type, or none, is told by the first character that is
    not a space: `[` an array, `{` one record if the whole body is one JSON object, else JSON
    Lines. Numbers count from 1. Raises NotRecords when the body is none of these.
    """
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark says nothing here
    except UnicodeDecodeError as error:
        raise NotRecords(f"the body is not UTF-8 (byte {error.start} cannot be read)") from None
    layout, pieces = _pieces(text, content_type)
    posted = PostedBody(layout)
    for number, raw in pieces:
        try:
            record = parse_record(raw.encode())
        except ValueError as error:  # pydantic's ValidationError is one
            posted.reject(number, describe(error))
            continue
        if refusal := too_far_ahead(record.event_time, now, max_future_skew):
            posted.reject(number, refusal)
            continue
        posted.records.append(record)
    if not posted.records and not posted.rejected_total:
        raise NotRecords("the body holds no records")
    return posted


def _pieces(text: str, content_type: str) -> tuple[BodyLayout, Iterator[tuple[int, str]]]:
    """The layout of the body and its records' text, each with its number."""
    if content_type in JSON_LINES_TYPES:
        return "json-lines", _lines(text)
    start = _after_space(text, 0)
    first = text[start : start + 1]
    sniffed = content_type != JSON_TYPE
    if sniffed and first not in ("{", "["):
        raise NotRecords(
            "the body is neither JSON Lines (application/x-ndjson) nor a JSON array or object"
            " (application/json)"
        )
    try:
        whole = json.loads(text)
    except (ValueError, RecursionError) as error:
        if sniffed and first == "{":  # objects a line each; a broken one is refused by its line
            return "json-lines", _lines(text)
        why = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise NotRecords(f"the body is not JSON ({why}); JSON Lines go as application/x-ndjson") from None
    if isinstance(whole, dict):
        return "json-object", iter([(1, text)])
    if isinstance(whole, list):
        return "json-array", _items(text)
    raise NotRecords(f"a JSON body must be an array of records or one record, not {_json_kind(whole)}")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return "a string" if isinstance(value, str) else "a number"


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Split on newlines only: str.splitlines would also cut at U+2028 and the like, which a
    JSON string may hold as they are."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip(" \t\r"):
            yield number, line


def _items(text: str) -> Iterator[tuple[int, str]]:
    """The text of each item of a JSON array already known to be valid, so that an item is
    validated from its own text, exactly like a line of JSON Lines (or a record on Kafka)."""
    decoder = json.JSONDecoder()
    position = _after_space(text, _after_space(text, 0) + 1)  # past the '['
    number = 0
    while text[position] != "]":
        _, end = decoder.raw_decode(text, position)
        number += 1
        yield number, text[position:end]
        position = _after_space(text, end)
        if text[position] == ",":
            position = _after_space(text, position + 1)


def _after_space(text: str, position: int) -> int:
    match = JSON_SPACE.match(text, position)
    assert match is not None  # the pattern matches the empty string
    return match.end()
