"""Choosing a reader for a file: by the --format given, or by its content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from replay.readers.base import InputError, ReadItem
from replay.readers.native import read_native

FORMATS = ("auto", "native", "gdelt", "icews")
_NOT_YET = ("gdelt", "icews")


def detect_format(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if not head or head.startswith(b"{"):
        return "native"
    raise InputError(f"{path}: cannot recognise the format (expected JSON Lines); give --format")


def read_events(path: Path, file_format: str = "auto") -> Iterator[ReadItem]:
    """Every row of one file; raises InputError when the file cannot be read at all."""
    try:
        chosen = detect_format(path) if file_format == "auto" else file_format
        if chosen in _NOT_YET:
            raise InputError(f"{path}: the {chosen} reader is not available yet; use native JSON Lines")
        if chosen != "native":
            raise InputError(f"unknown format {chosen!r}; choose one of {', '.join(FORMATS)}")
        yield from read_native(path)
    except OSError as error:
        raise InputError(f"{error.filename or path}: {error.strerror or error}") from None
