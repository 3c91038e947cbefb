"""What every reader yields: a record with where it came from, a machine-coded row checked
but not yet built (Pending), a bad row with why, or rows of no dyad (counted, not kept)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Literal

from schemas.events import CrisisEvent, Retraction

MAX_LINE_BYTES = 1 << 20
"""No real row comes near a megabyte; a longer line is reported and skipped, never held whole."""


class InputError(Exception):
    """An input that cannot be read at all (missing file, unknown format): the run stops."""


@dataclass(frozen=True, slots=True)
class SourceLine:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Located:
    where: SourceLine
    record: CrisisEvent | Retraction


@dataclass(frozen=True, slots=True)
class Pending:
    """A machine-coded row (GDELT, ICEWS) whose fields are checked, kept compact until played.

    Rows with one id report one real event: the play order sorts these small values, adds up
    the weights of a run of equal ids (to 1 at most) and builds one CrisisEvent per run, so a
    multi-gigabyte file is sorted without holding (or spilling) a model per row.
    """

    event_time: datetime
    event_id: str
    row_id: str
    """The source's own id of the row (GDELT's GLOBALEVENTID): a row read twice counts once."""
    where: SourceLine
    weight: float
    values: tuple[str, ...]
    build: Callable[[Pending, float], CrisisEvent]
    """A module-level function (so a Pending pickles): the event, at the weight given."""

    def located(self, weight: float | None = None) -> Located:
        return Located(self.where, self.build(self, self.weight if weight is None else weight))


@dataclass(frozen=True)
class BadRow:
    where: SourceLine
    reason: str
    raw: str


@dataclass(frozen=True)
class NoDyadRows:
    """Readable rows whose actors lack a country code or share one: counted, not kept.

    Readers yield one per block of rows, not one per row: most GDELT rows are of this kind.
    """

    count: int


ReadItem = Located | Pending | BadRow | NoDyadRows


@dataclass(frozen=True)
class ReaderOptions:
    """How machine-coded rows (GDELT, ICEWS) become events (see the README and gdelt.py), and
    which event times are too far ahead of the clock to accept (see `too_far_ahead`)."""

    repeats: Literal["merge", "rows"] = "merge"
    full_weight_sources: int = 5
    clock: datetime | None = None
    """When the run started; None (tests, fixed inputs) accepts any time the schema does."""
    max_future_skew: timedelta = timedelta(days=1)


def text_of(raw: bytes) -> str:
    """A row as text for reports: undecodable bytes shown as escapes, the newline dropped."""
    return raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")


def lines(handle: IO[bytes], name: str) -> Iterator[tuple[int, bytes] | BadRow]:
    """Numbered lines, one at a time (see `blocks`)."""
    for block in blocks(handle, name):
        if isinstance(block, BadRow):
            yield block
            continue
        first, chunk = block
        yield from enumerate(chunk, start=first)


def blocks(handle: IO[bytes], name: str, size: int = 1 << 20) -> Iterator[tuple[int, list[bytes]] | BadRow]:
    """The stream's lines in blocks: (number of the first line, its lines without newlines).

    Reading a megabyte at a time keeps memory bounded: a line longer than MAX_LINE_BYTES is
    a BadRow, skipped to its end, never held whole.
    """
    number = 1
    tail = b""
    skipping = False
    while chunk := handle.read(size):
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        if skipping and parts:
            parts.pop(0)
            number += 1
            skipping = False
        if parts:
            yield from _long_lines_apart(number, parts, name)
            number += len(parts)
        if len(tail) > MAX_LINE_BYTES and not skipping:
            yield BadRow(
                SourceLine(name, number), f"line longer than {MAX_LINE_BYTES} bytes", text_of(tail[:200])
            )
            skipping = True
        if skipping:
            tail = b""
    if tail and not skipping:
        yield number, [tail]


def _long_lines_apart(
    first: int, lines: list[bytes], name: str
) -> Iterator[tuple[int, list[bytes]] | BadRow]:
    """The block as it is, or split around the lines over MAX_LINE_BYTES, each one a BadRow."""
    if max(map(len, lines)) <= MAX_LINE_BYTES:
        yield first, lines
        return
    start = 0
    for at, line in enumerate(lines):
        if len(line) > MAX_LINE_BYTES:
            if start < at:
                yield first + start, lines[start:at]
            yield BadRow(
                SourceLine(name, first + at), f"line longer than {MAX_LINE_BYTES} bytes", text_of(line[:200])
            )
            start = at + 1
    if start < len(lines):
        yield first + start, lines[start:]
