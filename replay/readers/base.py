"""What every reader yields and the protocol it follows: a record with where it came from, a
machine-coded row checked but not yet built (Pending), a bad row with why, or rows of no dyad
(counted, not kept)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import IO, Literal, NamedTuple, Protocol, get_args

from pydantic import ValidationError

from schemas.actors import ActorRole
from schemas.events import Actor, CrisisEvent, Retraction, Witnesses

MAX_LINE_BYTES = 1 << 20
"""No real row comes near a megabyte; a longer line is reported and skipped, never held whole."""


class InputError(Exception):
    """An input that cannot be read at all (missing file, unknown format): the run stops."""


class BadField(ValueError):
    """A field that fails a reader's check: its row becomes a BadRow and reading goes on.

    The reason reads `column: problem: 'value'`. The category, which the closing summary counts,
    is the column unless given: a check several columns share (GDELT's EventCode and ICEWS's
    CAMEO Code, both actors' codes) has one name, so a backtest over both formats adds them up.
    """

    def __init__(self, column: str, problem: str, value: str, category: str | None = None) -> None:
        super().__init__(f"{column}: {problem}: {value[:40]!r}")
        self.category = category or column


class SourceLine(NamedTuple):
    """Where a row was read. The small records every row carries (this, `Located`, `Pending`)
    are NamedTuples: a frozen dataclass's `__init__` sets each field through
    `object.__setattr__`, five times slower, and a GDELT backtest builds several per row
    (measured); a NamedTuple pickles as its values too, where the external sort spills them."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class Located(NamedTuple):
    where: SourceLine
    record: CrisisEvent | Retraction


@lru_cache(maxsize=8192)
def actor(code: str | None, name: str, country: str, role: ActorRole) -> Actor:
    """A checked row's actor, validated once: a file's actors repeat (USAGOV, RUSMIL, ...), and
    an event's model takes a validated Actor as it is, so most events validate one model, not
    three."""
    return Actor.model_validate({"code": code, "name": name, "country": country, "role": role})


class CheckedRow(Protocol):
    """A machine-coded row's fields, every one checked, typed and named: one NamedTuple per
    format, so that a Pending stays compact, fast to sort and to spill, and pickles (by its
    module-level class). Building its event is the last step, done once per merged run."""

    def event(self, event_id: str, event_time: datetime, witnesses: Witnesses) -> CrisisEvent: ...

    @property
    def dyad(self) -> str | None:
        """The event's dyad (`CrisisEvent.dyad`), known before it is built."""


class Pending(NamedTuple):
    """A machine-coded row (GDELT, ICEWS) whose fields are checked, kept compact until played.

    Rows with one id report one real event: the play order sorts these small values and builds
    one CrisisEvent per run of equal ids, naming the run's rows as its witnesses, so a
    multi-gigabyte file is sorted without holding (or spilling) a model per row.
    """

    event_time: datetime
    event_id: str
    row_id: str
    """The source's own id of the row (GDELT's GLOBALEVENTID): a row read twice counts once."""
    where: SourceLine
    weight: float
    row: CheckedRow

    def located(self, witnesses: Witnesses) -> Located:
        """The row's event, standing for the rows `witnesses` names (this one among them)."""
        return Located(self.where, self.row.event(self.event_id, self.event_time, witnesses))


@dataclass(frozen=True)
class BadRow:
    """A row skipped: `category` is what the closing summary counts it under (a short name:
    "columns", "SQLDATE", "JSON"...), `reason` the whole story, shown on the row's own line."""

    where: SourceLine
    category: str
    reason: str
    raw: str
    dyad: str | None = None
    """The row's dyad, when the reader knew it: which part of a split run reports it (`Part`)."""


@dataclass(frozen=True)
class NoDyadRows:
    """Readable rows whose actors lack a country code or share one: counted, not kept.

    Readers yield one per block of rows, not one per row: most GDELT rows are of this kind.
    """

    count: int


ReadItem = Located | Pending | BadRow | NoDyadRows


@dataclass(frozen=True)
class Part:
    """The rows one of `count` processes reads when a backtest is split (`--jobs`): those of the
    dyads whose key hashes to `index`, good or bad. A dyad's records all go to one part, so each
    part's core sees them as a single process would; what has no dyad (rows of no dyad, records
    without one, bad rows whose dyad is unknown) is the first part's, so the parts' counts add
    up to one run's."""

    index: int = 0
    count: int = 1

    def owns(self, dyad: str | None) -> bool:
        if self.count == 1:
            return True
        if dyad is None:
            return self.counts_the_rest
        return zlib.crc32(dyad.encode()) % self.count == self.index  # the same in every process

    @property
    def counts_the_rest(self) -> bool:
        return self.index == 0


WHOLE = Part()
"""Every record: a run in one process."""


PlayOrder = Literal["event-time", "published"]
"""How files are played: all their records in event-time order (what happened, with hindsight),
or file by file in name order, each file's records in event-time order (what a follower saw as
each file was published: see `read_in_play_order`)."""
PLAY_ORDERS: tuple[PlayOrder, ...] = get_args(PlayOrder)


@dataclass(frozen=True)
class ReaderOptions:
    """How machine-coded rows (GDELT, ICEWS) become events (see the README and gdelt.py), which
    event times are too far ahead of the clock to accept (see `too_far_ahead`), and the order
    files are played in."""

    repeats: Literal["merge", "rows"] = "merge"
    full_weight_sources: int = 5
    clock: datetime | None = None
    """When the run started; None (tests, fixed inputs) accepts any time the schema does."""
    max_future_skew: timedelta = timedelta(days=1)
    order: PlayOrder = "event-time"
    part: Part = WHOLE
    """The dyads whose rows are read (see `Part`). A reader may skip other dyads' rows before
    it decodes them, bad ones too; a bad row it reports names its dyad when it knows it."""


class Reader(Protocol):
    """One input format: how `--format auto` recognises it, and how its rows are read.

    The contract:

    - `name` is what `--format` calls it: unique, never "auto". `description` completes
      "cannot recognise the format (not ...)" when no reader recognises a stream.
    - `sniff(first_line)` says whether a stream is of this format, from its first line (without
      the newline and any UTF-8 byte order mark; at most its first 4 KiB). It never raises.
      `--format auto` asks every registered reader in turn and takes the first that says yes,
      so a loose test (a column count) belongs after stricter ones (a header).
    - `read(handle, name, options)` yields every row of the stream, from the position it is
      given (past any byte order mark): a Located or Pending per good row, a BadRow per bad one
      (with its category and reason), NoDyadRows for rows that belong to no dyad. It never
      raises on bad content, however broken; an I/O error (a corrupt archive) may propagate,
      and the caller ends the stream with one BadRow. `name` names the stream in SourceLines.

    A format is one module with its reader, plus one line in `registry.READERS`. For example,
    hand-coded CSV rows `event_id,event_time,source,target,cameo_code,goldstein` with a header::

        class HandCodedReader:
            name = "handcoded"
            description = "a hand-coded CSV file"

            def sniff(self, first_line: bytes) -> bool:
                return first_line.startswith(b"event_id,event_time,")

            def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
                for numbered in lines(handle, name):
                    if isinstance(numbered, BadRow):  # a line over MAX_LINE_BYTES
                        yield numbered
                        continue
                    number, raw = numbered
                    if number == 1 or not raw.strip():  # the header, a blank line
                        continue
                    where = SourceLine(name, number)
                    try:
                        yield Located(where, parse_hand_coded(raw))
                    except BadField as error:
                        yield BadRow(where, error.category, str(error), text_of(raw))
    """

    name: str
    description: str

    def sniff(self, first_line: bytes) -> bool: ...

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]: ...


def category_of(error: ValidationError | ValueError) -> str:
    """The summary's category of a record the schema refuses: the first field it names, or JSON
    when it names none (the line is not JSON, or not an object)."""
    if not isinstance(error, ValidationError):
        return "record size"  # parse_record's one ValueError: over MAX_RECORD_BYTES
    location = error.errors(include_url=False)[0]["loc"]
    fields = [str(part) for part in location if part not in ("event", "retraction")]
    return fields[0] if fields else "JSON"


def text_of(raw: bytes) -> str:
    """A row as text for reports: undecodable bytes shown as escapes, the newline dropped."""
    return raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")


def is_blank(raw: bytes) -> bool:
    """A tab-separated line with nothing on it. A line of tabs is not blank: it is a row of
    empty fields, reported like any row of the wrong width."""
    return not raw.strip() and b"\t" not in raw


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
            yield _too_long(SourceLine(name, number), tail)
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
            yield _too_long(SourceLine(name, first + at), line)
            start = at + 1
    if start < len(lines):
        yield first + start, lines[start:]


def _too_long(where: SourceLine, line: bytes) -> BadRow:
    return BadRow(where, "line too long", f"line longer than {MAX_LINE_BYTES} bytes", text_of(line[:200]))
