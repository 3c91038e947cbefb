"""Native JSON Lines: one CrisisEvent (or Retraction) per line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from pydantic import ValidationError

from replay.readers.base import BadRow, Located, ReadItem, SourceLine, lines, text_of
from schemas.events import parse_record
from schemas.validation import describe


def read_native(handle: IO[bytes], name: str) -> Iterator[ReadItem]:
    for numbered in lines(handle, name):
        if isinstance(numbered, BadRow):
            yield numbered
            continue
        number, raw = numbered
        if not raw.strip():
            continue
        try:
            yield Located(SourceLine(name, number), parse_record(raw))
        except (ValidationError, ValueError) as error:
            yield BadRow(SourceLine(name, number), describe(error), text_of(raw))
