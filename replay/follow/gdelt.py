"""GDELT 2.0 as it publishes: an events export every 15 minutes, listed in two text files.

`lastupdate.txt` names the newest files and `masterfilelist.txt` every file ever published,
as `SIZE MD5 URL` lines; the events are the `YYYYMMDDHHMMSS.export.CSV.zip` ones (the mentions
and GKG files beside them are not read). The newest list is read on every poll; the whole list
(some 100 MB on GDELT itself, read as a stream) only when files are missing in between: on a
`--since` backfill, or when a restarted or stalled follower is more than one file behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp

from replay.follow.source import FetchError, Published

log = logging.getLogger(__name__)

GDELT_BASE_URL = "http://data.gdeltproject.org/gdeltv2/"
LATEST_LIST = "lastupdate.txt"
FULL_LIST = "masterfilelist.txt"
PUBLISHED_EVERY = timedelta(minutes=15)
EXPORT_NAME = re.compile(r"^(\d{14})\.export\.CSV\.zip$")
_CHUNK = 1 << 16


def export_file(line: str, base_url: str) -> Published | None:
    """The events export a list line names, or None for another file or a line that is not
    `SIZE MD5 URL` (GDELT's lists hold a few). The file is fetched from `base_url`, whatever
    host the line names, so a mirror's copy of GDELT's lists still points at the mirror."""
    parts = line.split()
    if len(parts) != 3 or not parts[0].isdigit() or not re.fullmatch(r"[0-9a-f]{32}", parts[1]):
        return None
    name = urlsplit(parts[2]).path.rsplit("/", 1)[-1]
    match = EXPORT_NAME.match(name)
    if match is None:
        return None
    try:
        stamp = datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return Published(name, urljoin(base_url, name), int(parts[0]), parts[1], stamp)


class GdeltSource:
    """GDELT 2.0's events exports at `base_url`, from `since` on (None: from the newest file,
    or from where the progress left off)."""

    def __init__(self, base_url: str, since: datetime | None, timeout: timedelta) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.key = f"gdelt {self.base_url}"
        self._backfill_since = since
        self.incomplete = 0
        seconds = timeout.total_seconds()
        # No total limit: GDELT's full list takes a while; a server that goes silent does not.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)
        self._session: aiohttp.ClientSession | None = None

    async def new_files(self, done: Collection[str]) -> list[Published]:
        """The newest list's exports not yet done; the full list's from `since` on, the first
        time; and the full list's after the newest done when the newest list is further ahead
        than one file (a follower restarted, or stalled, after a while)."""
        latest = [file async for file in self._listed(LATEST_LIST)]
        since = self._backfill_since
        if since is not None:
            files = await self._in_full_list(lambda at: at >= since, latest, done)
            self._backfill_since = None  # only once it is read: a failed read is tried again
            return files
        newest_done = max((file_time(name) for name in done if EXPORT_NAME.match(name)), default=None)
        if newest_done is not None and any(_time(file) > newest_done + PUBLISHED_EVERY for file in latest):
            return await self._in_full_list(lambda at: at > newest_done, latest, done)
        return [file for file in latest if file.name not in done]

    async def _in_full_list(
        self, wanted: Callable[[datetime], bool], latest: list[Published], done: Collection[str]
    ) -> list[Published]:
        """The full list's files `wanted` and not done, with the newest list's: the full list
        may not name the newest files yet."""
        log.info("reading %s for the files missed", FULL_LIST)
        found = {file.name: file async for file in self._listed(FULL_LIST) if wanted(_time(file))}
        found |= {file.name: file for file in latest if wanted(_time(file)) and file.name not in found}
        return sorted((file for name, file in found.items() if name not in done), key=lambda f: f.name)

    async def fetch(self, file: Published, into: Path) -> Path:
        """The export downloaded to `into`, its size and MD5 checked against the list's."""
        target = into / file.name
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            async with self._http().get(file.location) as response:
                if response.status != 200:
                    raise FetchError(f"HTTP {response.status} {response.reason or ''}".strip())
                with target.open("wb") as out:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FetchError(_described(error)) from None
        except OSError as error:  # the download could not be written (a full disk)
            raise FetchError(f"cannot write {target}: {error.strerror or error}") from None
        if file.size is not None and size != file.size:
            raise FetchError(f"{size} bytes, the list says {file.size}")
        if file.md5 is not None and digest.hexdigest() != file.md5:
            raise FetchError(f"MD5 {digest.hexdigest()}, the list says {file.md5}")
        return target

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def _listed(self, list_name: str) -> AsyncIterator[Published]:
        """The exports a list names, read line by line (the full list is never held whole)."""
        url = urljoin(self.base_url, list_name)
        unreadable = 0
        try:
            async with self._http().get(url) as response:
                if response.status != 200:
                    raise FetchError(f"{url}: HTTP {response.status} {response.reason or ''}".strip())
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").strip()
                    file = export_file(line, self.base_url) if line else None
                    if file is not None:
                        yield file
                    elif line and ".export." in line:
                        unreadable += 1
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FetchError(f"{url}: {_described(error)}") from None
        if unreadable:
            log.warning("%s: %d lines naming an export are not SIZE MD5 URL: skipped", url, unreadable)


def file_time(name: str) -> datetime:
    """When GDELT published a file, from its name (YYYYMMDDHHMMSS.export.CSV.zip)."""
    return datetime.strptime(name[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _time(file: Published) -> datetime:
    return file.published_at or file_time(file.name)


def _described(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return "timed out: the server sent nothing for too long"
    return str(error) or type(error).__name__
