"""Native JSON Lines: one CrisisEvent (or Retraction) per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from pydantic import ValidationError

from replay.readers.base import (
    BadRow,
    Located,
    ReaderOptions,
    ReadItem,
    SourceLine,
    category_of,
    lines,
    text_of,
)
from schemas.events import MAX_RECORD_BYTES, dyad_of, parse_record
from schemas.validation import describe


class NativeReader:
    """The log's own records, as `crisismon` writes them; also what a first line that is blank
    or opens a JSON object is taken for."""

    name = "native"
    description = "JSON Lines"

    def sniff(self, first_line: bytes) -> bool:
        return not first_line.strip() or first_line.lstrip().startswith(b"{")

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
        """Every record as it is: options only shape machine-coded rows. In a part of a split
        run (`Part`), a line of another part's dyad is skipped before it is validated."""
        part = options.part
        for numbered in lines(handle, name):
            if isinstance(numbered, BadRow):
                yield numbered
                continue
            number, raw = numbered
            if not raw.strip():
                continue
            dyad = routing_dyad(raw) if part.count > 1 else None
            if not part.owns(dyad):
                continue  # another part's: that part reads it, and reports it if it is bad
            try:
                yield Located(SourceLine(name, number), parse_record(raw))
            except (ValidationError, ValueError) as error:
                reason = describe(error)
                yield BadRow(SourceLine(name, number), category_of(error), reason, text_of(raw), dyad)


def routing_dyad(raw: bytes) -> str | None:
    """The dyad a line's record has, read from its JSON without validating it (a fifth of the
    time): the same as the record's `dyad` when it is valid, since the models are strict (a
    country is a string as given) and an event and a retraction are told apart by `retracts`.
    Of an invalid line, whatever its JSON names, or none: the part it goes to reports it."""
    if len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    if "retracts" in value:
        dyad = value.get("dyad")
        return dyad if isinstance(dyad, str) else None
    sides = [value.get(side) for side in ("source", "target")]
    countries = [side.get("country") if isinstance(side, dict) else None for side in sides]
    first, second = (country if isinstance(country, str) else None for country in countries)
    return dyad_of(first, second)
