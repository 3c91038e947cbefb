"""Opening an input (plain or zipped) and handing it to its reader (see registry.py)."""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from replay.readers.base import BadRow, InputError, Reader, ReaderOptions, ReadItem, SourceLine
from replay.readers.registry import READERS

ZIP_MAGIC = b"PK\x03\x04"
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class Input:
    """One readable stream: a plain file, or one member of a zip archive."""

    name: str
    handle: IO[bytes]
    size: int
    disk_size: int

    def consumed_on_disk(self) -> int:
        """Bytes of the file read so far (for a zip member, scaled to its compressed size)."""
        return int(self.handle.tell() * self.disk_size / self.size) if self.size else self.disk_size


def open_inputs(path: Path, stack: ExitStack, name: str | None = None) -> Iterator[Input]:
    """The file itself, or every member of a zip archive in name order; `name` names the file in
    SourceLines (default: its path; a followed file: where it was published)."""
    name = name or str(path)
    handle = stack.enter_context(path.open("rb"))
    if handle.read(4) != ZIP_MAGIC:
        handle.seek(0)
        size = path.stat().st_size
        yield Input(name, handle, size, size)
        return
    handle.seek(0)
    try:
        archive = stack.enter_context(zipfile.ZipFile(handle))
        members = sorted((info for info in archive.infolist() if not info.is_dir()), key=lambda i: i.filename)
        for info in members:
            with archive.open(info) as member:
                yield Input(f"{name}!{info.filename}", member, info.file_size, info.compress_size)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as error:
        raise InputError(f"{name}: unreadable zip archive: {error}") from None


def _rows(source: Input, file_format: str, options: ReaderOptions) -> Iterator[ReadItem]:
    """The reader its format names (or auto-detection finds), over one stream."""
    return _reader_for(source, file_format).read(source.handle, source.name, options)


def _reader_for(source: Input, file_format: str) -> Reader:
    """The stream's reader, the stream left where it reads from (InputError: none knows it)."""
    head = source.handle.read(4096)
    start = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0  # Windows editors write one first
    source.handle.seek(start)  # every reader starts after it
    return READERS.choose(file_format, head[start:].split(b"\n", 1)[0], source.name)


def check_readable(path: Path, file_format: str, name: str | None = None) -> None:
    """Raises InputError when `path` cannot be read at all: it cannot be opened, it is a broken
    zip, or no reader knows one of its streams. Cheap: it looks at each stream's first line."""
    with ExitStack() as stack:
        for source in inputs_of(path, stack, name):
            _reader_for(source, file_format)


def read_events(
    path: Path, file_format: str = "auto", options: ReaderOptions | None = None
) -> Iterator[ReadItem]:
    """Every row of one file; raises InputError when the file cannot be read at all."""
    with ExitStack() as stack:
        for source in inputs_of(path, stack):
            yield from read_input(source, file_format, options or ReaderOptions())


def read_input(source: Input, file_format: str, options: ReaderOptions) -> Iterator[ReadItem]:
    """Every row of one stream; a stream that breaks off (a corrupt archive) ends in a BadRow."""
    try:
        yield from _rows(source, file_format, options)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        yield BadRow(
            SourceLine(source.name, 0), "unreadable", f"the rest of the input is unreadable: {error}", ""
        )


def inputs_of(path: Path, stack: ExitStack, name: str | None = None) -> Iterator[Input]:
    """open_inputs, with the OS's reasons for not opening a file turned into InputError."""
    try:
        yield from open_inputs(path, stack, name)
    except OSError as error:
        raise InputError(f"{error.filename or path}: {error.strerror or error}") from None
