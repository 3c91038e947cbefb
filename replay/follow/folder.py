"""A folder another system drops event files into (ICEWS daily files, GDELT exports, JSON Lines).

A file is complete once it has not changed for `settle` (its modification time, or its inode's
change time if later).
Files still being written are left until then, and names that say "not yet"
(hidden, or ending in .part, .tmp, .partial, .crdownload, ~) are never read: a writer that
writes under such a name and renames the file when done is never read early, however slow.
Only the folder's own files are read, not its subfolders'.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from replay.follow.source import FetchError, Published

UNFINISHED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~")


def unfinished_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(UNFINISHED_SUFFIXES)


class FolderSource:
    """The complete files of `folder`, in name order."""

    def __init__(self, folder: Path, settle: timedelta, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder.resolve()
        self.key = f"dir {self.folder}"
        self.settle = settle.total_seconds()
        self.incomplete = 0
        """Files the last listing found still being written."""
        self._clock = clock

    async def new_files(self, done: Collection[str]) -> list[Published]:
        try:
            entries = sorted(os.scandir(self.folder), key=lambda entry: entry.name)
        except OSError as error:
            raise FetchError(f"{self.folder}: {error.strerror or error}") from None
        now, complete, self.incomplete = self._clock(), [], 0
        for entry in entries:
            try:
                if entry.name in done or unfinished_name(entry.name) or not entry.is_file():
                    continue
                status = entry.stat()
            except FileNotFoundError:  # gone since the folder was listed
                continue
            # The later of its content's and its inode's last change: a copy that keeps the
            # original's time (cp -p, tar) has a new ctime. A modification time in the future
            # is not believed (the kernel sets the ctime, nobody else can).
            believed = status.st_mtime if status.st_mtime <= now else status.st_ctime
            changed = max(believed, status.st_ctime)
            if now - changed < self.settle:
                self.incomplete += 1
                continue
            published = datetime.fromtimestamp(changed, UTC)
            complete.append(Published(entry.name, entry.path, status.st_size, None, published))
        return complete

    async def fetch(self, file: Published, into: Path) -> Path:
        """The file where it is: it is complete, and the follower reads it at once."""
        path = Path(file.location)
        if not path.is_file():
            raise FetchError(f"{path}: gone before it was read")
        return path

    async def close(self) -> None:
        """Nothing to let go of."""
