"""Readers turn event files into log records, reporting (never raising on) bad rows."""

from replay.readers.base import BadRow, InputError, Located, Reader, ReadItem, SourceLine
from replay.readers.dispatch import read_events
from replay.readers.registry import FORMATS, READERS

__all__ = [
    "FORMATS",
    "READERS",
    "BadRow",
    "InputError",
    "Located",
    "ReadItem",
    "Reader",
    "SourceLine",
    "read_events",
]
