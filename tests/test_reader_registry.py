"""The registry of readers: one registration drives `--format`'s choices, auto-detection and
dispatch; each existing format is recognised by content."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from replay.readers import FORMATS, READERS, InputError, dispatch
from replay.readers.base import BadField, BadRow, Located, ReaderOptions, ReadItem, SourceLine, lines, text_of
from replay.readers.dispatch import Input, read_input
from replay.readers.registry import Registry
from schemas.events import CrisisEvent
from tests.builders import event
from tests.gdelt_samples import GEORGIA_CSV, ICEWS_SAMPLE


class HandCodedReader:
    """A format as `Reader`'s docstring adds one: `event_id,hours` rows under a header."""

    name = "handcoded"
    description = "a hand-coded CSV file"

    def sniff(self, first_line: bytes) -> bool:
        return first_line.startswith(b"event_id,hours")

    def read(self, handle: IO[bytes], name: str, options: ReaderOptions) -> Iterator[ReadItem]:
        for numbered in lines(handle, name):
            if isinstance(numbered, BadRow):
                yield numbered
                continue
            number, raw = numbered
            if number == 1 or not raw.strip():
                continue
            where = SourceLine(name, number)
            try:
                yield Located(where, parse_hand_coded(raw))
            except BadField as error:
                yield BadRow(where, error.category, str(error), text_of(raw))


def parse_hand_coded(raw: bytes) -> CrisisEvent:
    event_id, hours = raw.decode().split(",")
    if not hours.isdigit():
        raise BadField("hours", "not a count", hours)
    return event(event_id, hours=int(hours))


def test_the_formats_are_the_registry_in_sniffing_order() -> None:
    assert FORMATS == READERS.formats == ("auto", "native", "icews", "gdelt")


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        (b'{"event_id": "x"}', "native"),
        (b"", "native"),
        (b"Event ID\tEvent Date\tSource Name\tCAMEO Code", "icews"),
        (b'"GLOBALEVENTID","SQLDATE"', "gdelt"),
        (b"\t".join([b"1"] * 61), "gdelt"),
        (b"\t".join([b"1"] * 58), "gdelt"),
        (b"\t".join([b"1"] * 57), "gdelt"),
    ],
)
def test_auto_recognises_each_format_by_its_first_line(first_line: bytes, expected: str) -> None:
    assert READERS.detect(first_line, "x").name == expected


@pytest.mark.parametrize(("sample", "expected"), [(GEORGIA_CSV, "gdelt"), (ICEWS_SAMPLE, "icews")])
def test_auto_recognises_the_real_samples(sample: Path, expected: str) -> None:
    assert READERS.detect(sample.read_bytes().split(b"\n", 1)[0], str(sample)).name == expected


def test_what_no_reader_recognises_is_an_input_error_naming_them_all() -> None:
    with pytest.raises(InputError) as unknown:
        READERS.detect(b"hello, world", "notes.txt")
    assert str(unknown.value) == (
        "notes.txt: cannot recognise the format"
        " (not JSON Lines, an ICEWS file or a GDELT export); give --format"
    )
    with pytest.raises(InputError, match="unknown format 'csv'; choose one of auto, native, icews, gdelt"):
        READERS.choose("csv", b"", "x")


def test_a_format_registered_once_drives_formats_detection_and_dispatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Registry((*READERS.readers, HandCodedReader()))
    assert registry.formats == (*FORMATS, "handcoded")
    assert registry.detect(b"event_id,hours", "x").name == "handcoded"
    assert registry.detect(b'{"event_id": "x"}', "x").name == "native"
    monkeypatch.setattr(dispatch, "READERS", registry)
    data = b"\xef\xbb\xbfevent_id,hours\ne1,3\ne2,soon\n"  # a byte order mark, skipped for every format
    for file_format in ("auto", "handcoded"):
        stream = Input("hand.csv", io.BytesIO(data), len(data), len(data))
        first, second = read_input(stream, file_format, ReaderOptions())
        assert isinstance(first, Located) and first.record == event("e1", hours=3)
        assert isinstance(second, BadRow) and second.where == SourceLine("hand.csv", 3)
        assert (second.category, second.reason) == ("hours", "hours: not a count: 'soon'")


def test_a_name_is_registered_once_and_auto_is_not_a_name() -> None:
    with pytest.raises(ValueError, match="unique"):
        Registry((HandCodedReader(), HandCodedReader()))
    auto = HandCodedReader()
    auto.name = "auto"
    with pytest.raises(ValueError, match="unique"):
        Registry((auto,))
