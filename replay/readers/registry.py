"""Every input format, in one place: `--format`'s choices, auto-detection and the choice of
reader all come from READERS, so a new format is its module plus one line here."""

from __future__ import annotations

from dataclasses import dataclass

from replay.readers.base import InputError, Reader
from replay.readers.gdelt import GdeltReader
from replay.readers.icews import IcewsReader
from replay.readers.native import NativeReader

AUTO = "auto"


@dataclass(frozen=True)
class Registry:
    """Readers in the order `--format auto` asks them (see `Reader.sniff`)."""

    readers: tuple[Reader, ...]

    def __post_init__(self) -> None:
        names = [reader.name for reader in self.readers]
        if AUTO in names or len(set(names)) < len(names):
            raise ValueError(f"reader names must be unique and not {AUTO!r}: {names}")

    @property
    def formats(self) -> tuple[str, ...]:
        """What `--format` accepts."""
        return (AUTO, *(reader.name for reader in self.readers))

    def choose(self, file_format: str, first_line: bytes, stream_name: str) -> Reader:
        """The reader `file_format` names, or for auto the first that recognises `first_line`."""
        if file_format == AUTO:
            return self.detect(first_line, stream_name)
        for reader in self.readers:
            if reader.name == file_format:
                return reader
        raise InputError(f"unknown format {file_format!r}; choose one of {', '.join(self.formats)}")

    def detect(self, first_line: bytes, stream_name: str) -> Reader:
        for reader in self.readers:
            if reader.sniff(first_line):
                return reader
        *others, last = [reader.description for reader in self.readers]
        tried = f"{', '.join(others)} or {last}" if others else last
        raise InputError(f"{stream_name}: cannot recognise the format (not {tried}); give --format")


READERS = Registry((NativeReader(), IcewsReader(), GdeltReader()))
"""Native first (a blank first line is native too), and a header before a column count."""
FORMATS = READERS.formats
