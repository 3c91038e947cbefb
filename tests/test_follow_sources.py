"""The follower's sources without Kafka: GDELT's lists and downloads over a real HTTP server on
127.0.0.1 (tests/gdelt_feed.py), and a folder with files being written."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from replay.follow.folder import FolderSource
from replay.follow.gdelt import GdeltSource, export_file
from replay.follow.source import FetchError
from tests.gdelt_feed import Fault, GdeltServer, PublishedFile, build_gdelt_folder, gdelt_rows, slot_rows

DAYS = (date(2018, 3, 1), date(2018, 3, 3))
BASE = "http://mirror.example/gdeltv2/"


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[tuple[GdeltServer, list[PublishedFile]]]:
    with GdeltServer(tmp_path, hang_seconds=10) as server:
        files = build_gdelt_folder(tmp_path, slot_rows(gdelt_rows(), days=DAYS), server.base_url)
        yield server, [file for file in files if file.name.endswith(".export.CSV.zip")]


def source(server: GdeltServer, since: datetime | None = None, timeout: float = 5) -> GdeltSource:
    return GdeltSource(server.base_url, since, timedelta(seconds=timeout))


def names(files: list) -> list[str]:
    return [file.name for file in files]


async def listed(gdelt: GdeltSource, done: set[str] | frozenset[str] = frozenset()) -> list[str]:
    try:
        return names(await gdelt.new_files(done))
    finally:
        await gdelt.close()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "150383 297a16b493de7cf6ca809a7cc31d0b93 http://data.gdeltproject.org/gdeltv2/20150218230000.export.CSV.zip",
            ("20150218230000.export.CSV.zip", f"{BASE}20150218230000.export.CSV.zip", 150383),
        ),
        ("318084 bb27f78ba45f69a17ea6ed7755e9f8ff http://x/gdeltv2/20150218230000.mentions.CSV.zip", None),
        ("10768507 ea8dde0beb0ba98810a92db068c0ce99", None),
        ("big 297a16b493de7cf6ca809a7cc31d0b93 http://x/20150218230000.export.CSV.zip", None),
        ("1 297a16b493de7cf6ca809a7cc31d0b93 http://x/20151318230000.export.CSV.zip", None),
    ],
    ids=["export", "mentions", "two fields", "size not a number", "no such month"],
)
def test_list_lines_name_exports_fetched_from_the_base_url(line: str, expected: tuple | None) -> None:
    file = export_file(line, BASE)
    assert (file and (file.name, file.location, file.size)) == expected


def test_a_new_follower_starts_from_the_newest_file(feed: tuple) -> None:
    server, exports = feed
    assert asyncio.run(listed(source(server))) == [exports[-1].name]
    assert "/gdeltv2/masterfilelist.txt" not in server.requests


def test_since_backfills_from_the_full_list_oldest_first(feed: tuple) -> None:
    server, exports = feed
    since = exports[3].stamp
    assert asyncio.run(listed(source(server, since))) == names(exports[3:])
    assert asyncio.run(listed(source(server, since), done={exports[4].name})) == names(
        exports[3:4] + exports[5:]
    )


def test_a_follower_behind_by_more_than_one_file_reads_the_full_list_for_what_it_missed(feed: tuple) -> None:
    server, exports = feed
    done = set(names(exports[:5]))
    assert asyncio.run(listed(source(server), done)) == names(exports[5:])
    assert asyncio.run(listed(source(server), set(names(exports)))) == []


def test_a_list_that_cannot_be_read_is_a_fetch_error(feed: tuple) -> None:
    server, _ = feed
    server.faults["lastupdate.txt"] = Fault("http-500", 1)
    with pytest.raises(FetchError, match="HTTP 500"):
        asyncio.run(listed(source(server)))


async def fetched(gdelt: GdeltSource, file: PublishedFile, into: Path) -> bytes:
    listed_file = next(f for f in await gdelt.new_files(set()) if f.name == file.name)
    try:
        return (await gdelt.fetch(listed_file, into)).read_bytes()
    finally:
        await gdelt.close()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http-500", "HTTP 500"),
        ("corrupt", "MD5"),
        ("wrong-size", "the list says"),
        ("truncate", "Response payload is not completed|bytes, the list says"),
        ("hang", "timed out"),
    ],
)
def test_a_download_that_is_not_the_listed_file_is_a_fetch_error(
    feed: tuple, tmp_path: Path, fault: str, reason: str
) -> None:
    server, exports = feed
    newest = exports[-1]
    server.faults[newest.name] = Fault(fault, 1)  # type: ignore[arg-type]
    into = tmp_path / "into"
    into.mkdir()
    started = time.monotonic()
    with pytest.raises(FetchError, match=reason):
        asyncio.run(fetched(source(server, timeout=1), newest, into))
    assert time.monotonic() - started < 5
    assert asyncio.run(fetched(source(server), newest, into)) == newest.path.read_bytes()  # next time


def test_a_folder_lists_complete_files_in_name_order_and_leaves_the_rest(tmp_path: Path) -> None:
    now = time.time()
    for name in ("b.jsonl", "a.tab", "c.csv", "d.tab", ".hidden", "e.csv.part"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "sub").mkdir()
    later = now + 10
    os.utime(tmp_path / "c.csv", (later - 1, later - 1))  # written a second ago
    os.utime(tmp_path / "d.tab", (now + 86400, now + 86400))  # a time in the future: not believed
    folder = FolderSource(tmp_path, timedelta(seconds=5), clock=lambda: later)
    assert names(asyncio.run(folder.new_files({"b.jsonl"}))) == ["a.tab", "d.tab"]
    assert folder.incomplete == 1  # c.csv
    too_soon = FolderSource(tmp_path, timedelta(seconds=5), clock=lambda: now + 1)
    assert names(asyncio.run(too_soon.new_files(set()))) == [] and too_soon.incomplete == 4
    os.utime(tmp_path / "a.tab", (now - 3600, now - 3600))  # a copy keeping an old time (cp -p)
    ctime = (tmp_path / "a.tab").stat().st_ctime
    assert asyncio.run(folder.new_files(set()))[0].published_at == datetime.fromtimestamp(ctime, UTC)


def test_a_backfill_whose_full_list_fails_once_is_read_at_the_next_try(feed: tuple) -> None:
    server, exports = feed
    server.faults["masterfilelist.txt"] = Fault("http-500", 1)
    gdelt = source(server, exports[0].stamp)

    async def twice() -> list[str]:
        try:
            with pytest.raises(FetchError):
                await gdelt.new_files(set())
            return names(await gdelt.new_files(set()))
        finally:
            await gdelt.close()

    assert asyncio.run(twice()) == names(exports)


def test_files_the_full_list_does_not_name_yet_come_from_the_newest_list(feed: tuple, tmp_path: Path) -> None:
    server, exports = feed
    full = tmp_path / "masterfilelist.txt"
    lagging = full.read_text().splitlines()[:-3]  # GDELT's full list a file behind its newest
    full.write_text("\n".join(lagging) + "\n")
    done = set(names(exports[:-3]))
    assert asyncio.run(listed(source(server), done)) == names(exports[-3:])
