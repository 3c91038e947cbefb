"""The GDELT folder fixture itself: lists, zips, slotting, faults and a quick shutdown."""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.gdelt_feed import (
    LAST_UPDATE,
    MASTER_LIST,
    Fault,
    GdeltServer,
    PublishedFile,
    build_gdelt_folder,
    gdelt_rows,
    merge_key,
    publish,
    slot_rows,
)
from tests.gdelt_samples import GEORGIA_CSV

DAYS = (date(2018, 3, 26), date(2018, 3, 27))  # 60 USA-CHN rows, 8 files, 5 rows added late
_NAME = re.compile(r"^\d{14}\.(export\.CSV|mentions\.CSV|gkg\.csv)\.zip$")

Feed = tuple[GdeltServer, list[PublishedFile]]


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[Feed]:
    with GdeltServer(tmp_path, hang_seconds=10) as server:
        yield server, build_gdelt_folder(tmp_path, slot_rows(gdelt_rows(), days=DAYS), server.base_url)


def fetch(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def parse_list(text: str) -> list[tuple[int, str, str]]:
    entries = []
    for line in text.splitlines():
        size, md5, url = line.split(" ")
        entries.append((int(size), md5, url))
    return entries


def test_lists_name_every_file_with_its_size_and_md5(feed: Feed) -> None:
    server, files = feed
    master = parse_list(fetch(server.url(MASTER_LIST)).decode("ascii"))
    assert len(master) == len(files) == 3 * len({file.stamp for file in files}) > 0
    assert [url for _, _, url in master] == [file.url for file in files]
    assert parse_list(fetch(server.url(LAST_UPDATE)).decode("ascii")) == master[-3:]
    for size, md5, url in master:
        assert url.startswith(server.base_url) and _NAME.match(url.removeprefix(server.base_url))
        body = fetch(url)
        assert (len(body), hashlib.md5(body).hexdigest()) == (size, md5)
    kinds = [url.rsplit(".", 3)[1] for _, _, url in master]
    assert kinds == ["export", "mentions", "gkg"] * (len(master) // 3)
    assert server.requests[f"/gdeltv2/{MASTER_LIST}"] == 1


def test_export_zips_hold_one_member_of_61_column_lines(feed: Feed) -> None:
    _, files = feed
    exports = [file for file in files if ".export." in file.name]
    assert sum(file.row_count for file in exports) == len(
        [row for row in gdelt_rows() if DAYS[0] <= row.added <= DAYS[1]]
    )
    for file in exports:
        with zipfile.ZipFile(file.path) as archive:
            assert archive.namelist() == [file.name.removesuffix(".zip")]
            text = archive.read(archive.namelist()[0]).decode("utf-8")
        assert text.endswith("\n") and "\r" not in text
        lines = text.splitlines()
        assert len(lines) == file.row_count > 0
        assert {len(line.split("\t")) for line in lines} == {61}
        assert {line.split("\t")[59] for line in lines} == {f"{file.stamp:%Y%m%d%H%M%S}"}


def test_rows_of_one_event_spread_over_files_and_some_arrive_late(feed: Feed) -> None:
    _, files = feed
    stamps_of: defaultdict[tuple[str, ...], set[datetime]] = defaultdict(set)
    late = 0
    for file in files:
        if ".export." in file.name:
            with zipfile.ZipFile(file.path) as archive:
                lines = archive.read(archive.namelist()[0]).decode("utf-8").splitlines()
            for line in lines:
                stamps_of[merge_key(line)].add(file.stamp)
                late += line.split("\t")[1] < f"{file.stamp:%Y%m%d}"
    assert any(len(stamps) > 1 for stamps in stamps_of.values())
    assert late > 0


def test_slotting_is_stable_and_keeps_every_row() -> None:
    rows = gdelt_rows(GEORGIA_CSV)
    slots = slot_rows(rows, slots_per_day=4)
    assert slots == slot_rows(rows, slots_per_day=4)
    assert sum(len(lines) for lines in slots.values()) == len(rows) == 4324
    assert list(slots) == sorted(slots)
    for stamp in slots:
        assert stamp.tzinfo == UTC and stamp.hour == 0 and stamp.minute in (0, 15, 30, 45)
    assert {line.split("\t")[26] for line in slot_rows(gdelt_rows())[datetime(2018, 7, 6, tzinfo=UTC)]} >= {
        "061"
    }  # BigQuery's "61": the CAMEO code's leading zero is back


def test_publish_adds_one_stamp_to_a_folder(tmp_path: Path) -> None:
    slots = slot_rows(gdelt_rows(), days=DAYS)
    base = "http://127.0.0.1:1/gdeltv2/"
    before = build_gdelt_folder(tmp_path, slots, base)
    master_before = (tmp_path / MASTER_LIST).read_text()
    stamp = max(slots) + timedelta(minutes=15)
    added = publish(tmp_path, base, stamp, next(iter(slots.values())))
    master = (tmp_path / MASTER_LIST).read_text()
    assert master == master_before + "".join(file.list_line + "\n" for file in added)
    assert len(master.splitlines()) == len(before) + 3
    assert (tmp_path / LAST_UPDATE).read_text().splitlines() == [file.list_line for file in added]
    assert added[0].name == f"{stamp:%Y%m%d%H%M%S}.export.CSV.zip"
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_http_500_then_served(feed: Feed) -> None:
    server, files = feed
    server.faults[files[0].name] = Fault("http-500", times=1)
    with pytest.raises(urllib.error.HTTPError) as error:
        fetch(files[0].url)
    assert error.value.code == 500
    assert hashlib.md5(fetch(files[0].url)).hexdigest() == files[0].md5
    assert server.faults == {}
    assert server.requests[f"/gdeltv2/{files[0].name}"] == 2


def test_truncate_sends_half_then_closes(feed: Feed) -> None:
    server, files = feed
    server.faults[files[0].name] = Fault("truncate")
    for _ in range(2):  # times=None: every request
        with pytest.raises(http.client.IncompleteRead) as error:
            fetch(files[0].url)
        assert len(error.value.partial) == files[0].size // 2


def test_corrupt_keeps_the_size_not_the_md5(feed: Feed) -> None:
    server, files = feed
    server.faults[files[0].name] = Fault("corrupt", times=1)
    body = fetch(files[0].url)
    assert len(body) == files[0].size and hashlib.md5(body).hexdigest() != files[0].md5
    assert hashlib.md5(fetch(files[0].url)).hexdigest() == files[0].md5


def test_wrong_size_body(feed: Feed) -> None:
    server, files = feed
    server.faults[files[0].name] = Fault("wrong-size", times=1)
    assert len(fetch(files[0].url)) != files[0].size
    assert len(fetch(files[0].url)) == files[0].size


def test_hang_times_out_the_client(feed: Feed) -> None:
    server, files = feed
    server.faults[LAST_UPDATE] = Fault("hang", times=1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        fetch(server.url(LAST_UPDATE), timeout=0.3)
    assert time.monotonic() - started < 2
    assert fetch(server.url(LAST_UPDATE)).decode("ascii").splitlines()[-1] == files[-1].list_line


def test_stop_is_quick_with_a_hanging_request(tmp_path: Path) -> None:
    server = GdeltServer(tmp_path).start()  # hangs last 60 s unless released
    build_gdelt_folder(tmp_path, slot_rows(gdelt_rows(), days=DAYS), server.base_url)
    server.faults[LAST_UPDATE] = Fault("hang")
    outcome: list[BaseException] = []

    def client() -> None:
        try:
            fetch(server.url(LAST_UPDATE), timeout=30)
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests[f"/gdeltv2/{LAST_UPDATE}"] == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    thread.join(timeout=2)
    assert not thread.is_alive() and outcome  # the client saw the connection close, no answer
