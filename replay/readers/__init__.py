"""Readers turn event files into log records, reporting (never raising on) bad rows."""

from replay.readers.base import BadRow, InputError, Located, ReadItem, SourceLine
from replay.readers.dispatch import FORMATS, read_events

__all__ = ["FORMATS", "BadRow", "InputError", "Located", "ReadItem", "SourceLine", "read_events"]
