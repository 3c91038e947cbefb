"""A stand-in for GDELT 2.0's publication folder (`http://data.gdeltproject.org/gdeltv2/`).

`crisismon follow gdelt --base-url URL` follows GDELT the way GDELT publishes: every 15
minutes three zips per stamp (`STAMP.export.CSV.zip`, `.mentions.CSV.zip`, `.gkg.csv.zip`),
`lastupdate.txt` listing the newest stamp's three and `masterfilelist.txt` listing all, as
`SIZE MD5 URL` lines. This module builds such a folder from REAL rows and serves it on
127.0.0.1 with injectable faults, so the follower is tested offline on what it will meet.

    rows = gdelt_rows(USA_CHN_CSV)
    with GdeltServer(tmp_path) as server:  # bound on construction: base_url known at once
        build_gdelt_folder(tmp_path, slot_rows(rows, days=(first, last)), server.base_url)
        server.faults["20180706001500.export.CSV.zip"] = Fault("truncate", times=1)
        ...  # follow server.base_url
        publish(tmp_path, server.base_url, later_stamp, more_lines)  # a file appears later

Files are read from disk on every request, so the folder may be built or grown while the
server runs; lists are replaced atomically, zips are written before the lists name them.
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from tests.gdelt_samples import GEORGIA_CSV, as_gdelt2
from tests.ports import HOST

USA_CHN_CSV = Path(__file__).parent / "data" / "gdelt1_bigquery_usa_chn_2018.csv"
MASTER_LIST = "masterfilelist.txt"
LAST_UPDATE = "lastupdate.txt"
SLOT = timedelta(minutes=15)
URL_PATH = "/gdeltv2/"  # as on GDELT: a follower must join names to the base URL, not the host


def _header() -> list[str]:
    """GDELT 1.0's 58 column names, from the Georgia file (the BigQuery export has no header)."""
    with GEORGIA_CSV.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


@dataclass(frozen=True)
class FeedRow:
    """One real event row laid out as a GDELT 2.0 export line, with the day GDELT added it
    (1.0's DATEADDED): the day it is published on, often later than its SQLDATE."""

    added: date
    line: str

    @property
    def event_id(self) -> str:
        return self.line.split("\t", 1)[0]


def merge_key(line: str) -> tuple[str, str, str, str]:
    """What makes rows one real event: SQLDATE, both actors (code, else country) and EventCode."""
    cols = line.split("\t")
    return cols[1], cols[5] or cols[7], cols[15] or cols[17], cols[26]


def gdelt_rows(source: Path = USA_CHN_CSV) -> list[FeedRow]:
    """The real rows of a GDELT 1.0 events CSV (USA_CHN_CSV or GEORGIA_CSV) as 2.0 lines.

    Both files: 1.0's 58 columns in one order; Georgia has a header and `NA` nulls, the
    BigQuery export neither header nor `NA` (`NULL`). BigQuery exported the CAMEO codes as
    integers ("61" for "061", root "6"): the zero is put back (a one-digit root code is the
    sign), else the reader would reject most rows as unknown codes. The real SOURCEURL is
    kept where the row has one.
    """
    header = _header()
    with source.open(newline="", encoding="utf-8") as handle:
        raw = [row for row in csv.reader(handle) if row and row[0] != "GLOBALEVENTID"]
    code, base, root, url = (
        header.index(name) for name in ("EventCode", "EventBaseCode", "EventRootCode", "SOURCEURL")
    )
    rows: list[FeedRow] = []
    for values in raw:
        row = ["NA" if value == "NULL" else value for value in values]
        if len(row[root]) == 1:
            row[code], row[base], row[root] = "0" + row[code], "0" + row[base], "0" + row[root]
        cols = as_gdelt2(header, row).split("\t")
        if row[url] not in ("", "NA"):
            cols[60] = row[url]
        added = datetime.strptime(row[header.index("DATEADDED")], "%Y%m%d").date()
        rows.append(FeedRow(added, "\t".join(cols)))
    return rows


def slot_rows(
    rows: Iterable[FeedRow], slots_per_day: int = 4, days: tuple[date, date] | None = None
) -> dict[datetime, list[str]]:
    """Rows cut into 15-minute publication stamps, oldest first; empty slots are left out.

    A row goes to its DATEADDED day at `day + k * 15 min`, k a stable hash of its GLOBALEVENTID
    (crc32) modulo `slots_per_day`: rows of one real event spread over several files, rows
    added after their SQLDATE arrive late, as on GDELT. Each line's DATEADDED becomes its
    stamp. `days`: only rows added within this inclusive range.
    """
    if not 1 <= slots_per_day <= 96:
        raise ValueError(f"slots_per_day must be 1..96, not {slots_per_day}")
    slots: defaultdict[datetime, list[str]] = defaultdict(list)
    for row in rows:
        if days is not None and not days[0] <= row.added <= days[1]:
            continue
        k = zlib.crc32(row.event_id.encode()) % slots_per_day
        stamp = datetime.combine(row.added, time(), UTC) + k * SLOT
        cols = row.line.split("\t")
        cols[59] = f"{stamp:%Y%m%d%H%M%S}"
        slots[stamp].append("\t".join(cols))
    return dict(sorted(slots.items()))


@dataclass(frozen=True)
class PublishedFile:
    """One published zip, as the lists name it."""

    stamp: datetime
    name: str
    url: str
    size: int
    md5: str
    path: Path
    row_count: int

    @property
    def list_line(self) -> str:
        """Its line in masterfilelist.txt / lastupdate.txt: `SIZE MD5 URL`."""
        return f"{self.size} {self.md5} {self.url}"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write then rename, so that a reader (the server, mid-test) never sees half a file."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _zip_file(root: Path, base_url: str, stamp: datetime, suffix: str, lines: list[str]) -> PublishedFile:
    """One zip holding one member named as GDELT names it; its time is the stamp, so the
    bytes (and MD5) are the same each run."""
    name = f"{stamp:%Y%m%d%H%M%S}.{suffix}.zip"
    info = zipfile.ZipInfo(name.removesuffix(".zip"), date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    path = root / name
    with zipfile.ZipFile(temp := root / f".{name}.tmp", "w") as archive:
        archive.writestr(info, "".join(line + "\n" for line in lines).encode("utf-8"))
    os.replace(temp, path)
    data = path.read_bytes()
    return PublishedFile(
        stamp, name, base_url + name, len(data), hashlib.md5(data).hexdigest(), path, len(lines)
    )


def _write_stamp(root: Path, base_url: str, stamp: datetime, lines: list[str]) -> list[PublishedFile]:
    """A stamp's three files, in GDELT's list order: export (the rows), mentions, gkg (empty)."""
    if stamp.utcoffset() != timedelta(0) or stamp != stamp.replace(second=0, microsecond=0):
        raise ValueError(f"a stamp is a whole minute in UTC, not {stamp!r}")
    if not base_url.endswith("/"):
        raise ValueError(f"base_url must end with '/': {base_url!r}")
    return [
        _zip_file(root, base_url, stamp, "export.CSV", lines),
        _zip_file(root, base_url, stamp, "mentions.CSV", []),
        _zip_file(root, base_url, stamp, "gkg.csv", []),
    ]


def _list_text(files: Iterable[PublishedFile]) -> bytes:
    return "".join(file.list_line + "\n" for file in files).encode("ascii")


def build_gdelt_folder(
    root: Path, lines_by_stamp: Mapping[datetime, list[str]], base_url: str
) -> list[PublishedFile]:
    """A fresh GDELT folder in `root`: three zips per stamp, then masterfilelist.txt (all
    files, stamp order) and lastupdate.txt (the newest stamp's three). `base_url` (ending in
    `/`, e.g. `GdeltServer.base_url`) starts every listed URL. Returns the files, list order."""
    root.mkdir(parents=True, exist_ok=True)
    files = [
        file
        for stamp in sorted(lines_by_stamp)
        for file in _write_stamp(root, base_url, stamp, lines_by_stamp[stamp])
    ]
    _write_atomic(root / MASTER_LIST, _list_text(files))
    _write_atomic(root / LAST_UPDATE, _list_text(files[-3:]))
    return files


def publish(root: Path, base_url: str, stamp: datetime, lines: list[str]) -> list[PublishedFile]:
    """One more stamp in an existing folder, as GDELT does every 15 minutes: its zips, then
    its lines appended to masterfilelist.txt, then lastupdate.txt naming it. Both lists are
    replaced whole (temp file + os.replace), so a follower polling meanwhile never reads
    half a line."""
    files = _write_stamp(root, base_url, stamp, lines)
    master = root / MASTER_LIST
    old = master.read_bytes() if master.exists() else b""
    _write_atomic(master, old + _list_text(files))
    _write_atomic(root / LAST_UPDATE, _list_text(files))
    return files


FaultKind = Literal["http-500", "truncate", "corrupt", "hang", "wrong-size"]


@dataclass
class Fault:
    """What goes wrong when a file is fetched; `times`: how many requests still get it
    (None: all). The server counts it down and drops the fault when it reaches 0.

    http-500: a 500 answer. truncate: the full Content-Length, half the body, then close.
    corrupt: same size, bytes flipped in the middle (the listed MD5 mismatches). hang: no
    answer until `GdeltServer.hang_seconds` pass or the server stops. wrong-size: the file
    plus 1 KiB of zeros, honestly announced (only comparing with the listed size shows it).
    """

    kind: FaultKind
    times: int | None = None


class _Handler(BaseHTTPRequestHandler):
    """GET of the files directly in the folder, under URL_PATH; HTTP/1.0, one request per
    connection, so no idle keep-alive connection outlives a test."""

    def __init__(self, *args: Any, feed: GdeltServer, **kwargs: Any) -> None:
        self.feed = feed  # before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `requests`, not logs

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        name = path.removeprefix(URL_PATH)
        file = self.feed.root / name
        self.feed._count(path)
        if not path.startswith(URL_PATH) or not name or "/" in name or not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        kind = self.feed._take_fault(name)
        try:
            if kind == "hang":
                self.feed._stopping.wait(self.feed.hang_seconds)
                return
            if kind == "http-500":
                self.send_error(500, "injected fault")
                return
            body, length = data, len(data)
            if kind == "corrupt":
                middle = len(data) // 2
                body = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]
            elif kind == "wrong-size":
                body = data + bytes(1024)
                length = len(body)
            elif kind == "truncate":
                body = data[: len(data) // 2]
            self.send_response(200)
            self.send_header("Content-Type", "application/zip" if name.endswith(".zip") else "text/plain")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            pass  # the client gave up (its timeout): nothing to tell it


class GdeltServer:
    """A GDELT folder served over HTTP on 127.0.0.1, in a background thread.

    Bound to a free port on construction, so `base_url` (`http://127.0.0.1:PORT/gdeltv2/`)
    is known before the folder is built; `with` (or start/stop) serves. `requests` counts
    GETs by URL path (`/gdeltv2/lastupdate.txt`); `faults` maps a file NAME to a Fault.
    Stopping takes well under a second, hanging requests included (they are released).
    """

    def __init__(self, root: Path, hang_seconds: float = 60.0) -> None:
        self.root = root
        self.hang_seconds = hang_seconds
        self.faults: dict[str, Fault] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((HOST, 0), lambda *args: _Handler(*args, feed=self))
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://{HOST}:{self.port}{URL_PATH}"
        self._thread: threading.Thread | None = None

    def start(self) -> GdeltServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving, close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> GdeltServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, name: str) -> str:
        return self.base_url + name

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def _take_fault(self, name: str) -> FaultKind | None:
        """The fault this request gets, if any, counting it down."""
        with self._lock:
            fault = self.faults.get(name)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[name]
                if fault.times < 0:
                    return None
            return fault.kind
