"""Native JSON Lines: one CrisisEvent (or Retraction) per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from replay.readers.base import BadRow, Located, ReadItem, SourceLine, describe
from schemas.events import parse_record


def read_native(path: Path) -> Iterator[ReadItem]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = SourceLine(str(path), number)
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="backslashreplace").rstrip("\n")
            try:
                yield Located(where, parse_record(raw))
            except (ValidationError, ValueError) as error:
                yield BadRow(where, describe(error), text)
