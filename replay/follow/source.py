"""What a live source is to the follower: files published in name order, fetched checked."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class FetchError(Exception):
    """A file that could not be fetched whole this time (an HTTP error, a timeout, a size or
    checksum that does not match): the follower tries again later."""


@dataclass(frozen=True)
class Published:
    """One file a source has published."""

    name: str
    """Unique within its source; names sort in publication order."""
    location: str
    """Where it is: a URL, or a path."""
    size: int | None = None
    md5: str | None = None
    published_at: datetime | None = None
    """When it was published, where the source says (GDELT: the time in its name)."""


class Source(Protocol):
    """A place files are published to. The contract:

    - `key` names the source in `crisis.follow.progress` (what it follows, e.g. a base URL).
    - `new_files(done)` returns the files published so far and complete that are not in `done`
      (names), oldest first. It may raise FetchError when the source cannot be listed now.
    - `fetch(file, into)` returns a local path holding the file's complete bytes, checked
      against its size and checksum where the source gives them; `into` is an empty folder the
      follower clears after reading. It raises FetchError for anything worth another try.
    - `incomplete` is how many files the last `new_files` saw that are still being written
      (they come in a later listing).
    - `close()` lets go of connections.
    """

    key: str
    incomplete: int

    async def new_files(self, done: Collection[str]) -> list[Published]: ...

    async def fetch(self, file: Published, into: Path) -> Path: ...

    async def close(self) -> None: ...
