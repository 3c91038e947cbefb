"""Native JSON Lines: one CrisisEvent (or Retraction) per line."""

from __future__ import annotations

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
from schemas.events import parse_record
from schemas.validation import describe


class NativeReader:
    """The log's own records, as `crisismon` writes them; also what a first line that is blank
    or opens a JSON object is taken for."""

    name = "native"
    description = "JSON Lines"

    def sniff(self, first_line: bytes) -> bool:
        return not first_line.strip() or first_line.lstrip().startswith(b"{")

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
        """Every record as it is: options only shape machine-coded rows."""
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
                yield BadRow(SourceLine(name, number), category_of(error), describe(error), text_of(raw))
