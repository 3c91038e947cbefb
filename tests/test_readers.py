"""The readers on the real samples (tests/data, copied from ../shared/data with SOURCES.md),
on broken rows and on arbitrary bytes, and the play order they feed."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.ordering import ReadReport, external_sort, play_key, read_in_play_order
from replay.readers import InputError, read_events
from replay.readers.base import (
    MAX_LINE_BYTES,
    BadRow,
    Located,
    NoDyadRows,
    Pending,
    ReaderOptions,
    SourceLine,
    blocks,
)
from replay.readers.dispatch import Input, read_input
from replay.readers.gdelt import GdeltRow
from replay.readers.icews import IcewsRow
from schemas.events import CrisisEvent
from services.backtest.timeline import render_bad_rows
from tests.builders import event
from tests.gdelt_samples import GEORGIA_CSV, ICEWS_SAMPLE, broken_gdelt2, gdelt2_lines, georgia_rows

GEORGIA_ROWS = 4324
GEORGIA_DYAD_ROWS = 264  # both actors with a country code, and different ones


def tally(path: Path, file_format: str = "auto", options: ReaderOptions | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for item in read_events(path, file_format, options):
        kind = "Located" if isinstance(item, Pending) else type(item).__name__
        counts[kind] += item.count if isinstance(item, NoDyadRows) else 1
    return counts


def built(item: object) -> Located | None:
    """A reader's event as the play order builds it (a Pending row alone, at its own weight)."""
    if isinstance(item, Pending):
        return item.located({item.row_id: item.weight})
    return item if isinstance(item, Located) else None


def located(path: Path, file_format: str = "auto", options: ReaderOptions | None = None) -> list[Located]:
    return [event for item in read_events(path, file_format, options) if (event := built(item))]


@pytest.fixture(scope="module")
def gdelt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gdelt") / "20120101.export.CSV"
    path.write_text("\n".join(gdelt2_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gdelt1_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real rows as a raw GDELT 1.0 daily export: 58 tab-separated columns, no header."""
    header, rows = georgia_rows()
    path = tmp_path_factory.mktemp("gdelt") / "20120101.export.tab"
    lines = ["\t".join("" if value == "NA" else value for value in row) for row in rows]
    assert len(header) == 58
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_gdelt_csv_with_header_real_sample() -> None:
    assert tally(GEORGIA_CSV) == {
        "Located": GEORGIA_DYAD_ROWS,
        "NoDyadRows": GEORGIA_ROWS - GEORGIA_DYAD_ROWS,
    }
    first = located(GEORGIA_CSV, "gdelt")[0]
    record = first.record
    assert isinstance(record, CrisisEvent)
    assert (record.source.country, record.target.country, record.cameo_code) == ("USA", "RUS", "070")
    assert record.goldstein == 7.0
    assert record.event_time == datetime(2012, 1, 3, tzinfo=UTC)
    assert record.weight == pytest.approx(0.2)  # NumSources 1 of the 5 for full weight
    assert first.where.line == 149
    assert "83784238" in record.provenance.quote and "83784238" in record.provenance.coded_by


def test_gdelt2_and_gdelt1_raw_exports_give_the_same_events(gdelt2: Path, gdelt1_raw: Path) -> None:
    from_csv = [(i.record.model_dump(exclude={"provenance"}), i.where.line) for i in located(GEORGIA_CSV)]
    from_2 = [(i.record.model_dump(exclude={"provenance"}), i.where.line + 1) for i in located(gdelt2)]
    from_1 = [(i.record.model_dump(exclude={"provenance"}), i.where.line + 1) for i in located(gdelt1_raw)]
    assert from_csv == from_2 == from_1
    record = located(gdelt2)[0].record
    assert isinstance(record, CrisisEvent)
    assert record.provenance.document.startswith("https://news.example/")
    assert record.provenance.coded_by.startswith("GDELT 2.0")


def test_zipped_exports_read_like_plain_ones(gdelt2: Path, tmp_path: Path) -> None:
    archive = tmp_path / "20120101.export.CSV.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(gdelt2, gdelt2.name)
    plain = [i.record for i in located(gdelt2)]
    assert [i.record.model_dump(exclude={"provenance"}) for i in located(archive)] == [
        r.model_dump(exclude={"provenance"}) for r in plain
    ]
    assert located(archive)[0].where.path == f"{archive}!{gdelt2.name}"


def test_icews_real_sample_country_names_become_codes() -> None:
    counts = tally(ICEWS_SAMPLE)
    assert counts == {"Located": 1741, "NoDyadRows": 1964}
    events = [i.record for i in located(ICEWS_SAMPLE)]
    first = events[0]
    assert isinstance(first, CrisisEvent)
    assert (first.event_id, first.source.country, first.target.country) == (
        "icews-20180601-BGD-VNM-040",
        "BGD",
        "VNM",
    )
    assert first.goldstein == 1.0 and first.cameo_code == "040"
    countries = {a.country for e in events if isinstance(e, CrisisEvent) for a in (e.source, e.target)}
    assert {"RUS", "TUR", "PSE", "COD", "KOR", "PRK", "MDA"} <= countries  # names ISO spells otherwise
    one_each = [i.record for i in located(ICEWS_SAMPLE, options=ReaderOptions(repeats="rows"))]
    ids = [r.event_id for r in one_each if isinstance(r, CrisisEvent)]
    assert ids[0] == "icews-20180601-32889836" and len(set(ids)) == len(ids) == 1741


def test_auto_refuses_what_it_cannot_recognise(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, world\n")
    with pytest.raises(InputError, match="cannot recognise"):
        list(read_events(path))


BROKEN_LINES = {
    2: ("columns", "3 tab-separated columns"),
    3: ("SQLDATE", "SQLDATE: not a YYYYMMDD date"),
    4: ("CAMEO code", "EventCode: unknown CAMEO code"),
    5: ("Goldstein", "GoldsteinScale: not a number"),
    6: ("NumSources", "NumSources: not a count"),
    7: ("line too long", f"line longer than {MAX_LINE_BYTES} bytes"),
}


def test_broken_rows_are_reported_with_line_category_and_reason_and_the_rest_is_read(tmp_path: Path) -> None:
    path = broken_gdelt2(tmp_path / "broken.export.CSV")
    items = list(read_events(path, "gdelt"))
    bad = {item.where.line: item for item in items if isinstance(item, BadRow)}
    assert sorted(bad) == sorted(BROKEN_LINES)
    for line, (category, reason) in BROKEN_LINES.items():
        assert bad[line].category == category
        assert bad[line].reason.startswith(reason), bad[line].reason
    good = [item for item in items if isinstance(item, Pending)]
    assert [item.where.line for item in good][:2] == [1, 8]


@pytest.mark.parametrize("sources", ["²", "1" * 5000])
def test_a_count_int_would_refuse_is_a_bad_row_not_a_crash(sources: str) -> None:
    rows = (line.split("\t") for line in gdelt2_lines())
    fields = next(row for row in rows if (row[7], row[17]) == ("USA", "RUS"))  # a dyad: checked, not counted
    fields[32] = sources  # NumSources: '²' is a digit, and int() refuses over 4300 of them
    data = "\t".join(fields).encode()
    (bad,) = read_input(Input("x", io.BytesIO(data), len(data), len(data)), "gdelt", ReaderOptions())
    assert isinstance(bad, BadRow) and bad.category == "NumSources"


def test_a_row_of_only_tabs_is_reported_like_any_short_row_and_a_blank_line_is_not(
    gdelt2: Path, tmp_path: Path
) -> None:
    gdelt_row = gdelt2.read_text(encoding="utf-8").splitlines()[0]
    icews_header, icews_row = ICEWS_SAMPLE.read_text(encoding="utf-8").splitlines()[:2]
    cases = [
        ("gdelt", gdelt_row, gdelt_row, "4 tab-separated columns; a GDELT export row has 57, 58 or 61"),
        ("icews", icews_header, icews_row, "4 columns; the header has 20"),
    ]
    for file_format, first, last, reason in cases:
        path = tmp_path / f"tabs.{file_format}"
        path.write_text("\n".join([first, "\t\t\t", "", "   ", last]) + "\n", encoding="utf-8")
        bad = [item for item in read_events(path, file_format) if isinstance(item, BadRow)]
        assert [(b.where.line, b.category, b.reason, b.raw) for b in bad] == [
            (2, "columns", reason, "\t\t\t")
        ]


def test_the_summary_counts_bad_rows_by_category_and_each_row_keeps_its_reason(tmp_path: Path) -> None:
    path = broken_gdelt2(tmp_path / "broken.export.CSV")
    with path.open("a", encoding="utf-8") as export:
        export.write("five\tshort\ttab\tseparated\tcolumns\n")
    report = ReadReport()
    list(read_in_play_order([path], "gdelt", report=report))
    lines = list(render_bad_rows(report))
    assert f"{path}:2: skipped: 3 tab-separated columns; a GDELT export row has 57, 58 or 61" in lines
    assert any(
        line.startswith(f"{path}:3: skipped: SQLDATE: not a YYYYMMDD date: '2012-01-03'") for line in lines
    )
    assert lines[-1] == (
        f"7 bad rows skipped, of {report.rows} rows read"
        " (columns 2, SQLDATE 1, CAMEO code 1, Goldstein 1, NumSources 1, line too long 1)"
    )


def test_typed_rows_round_trip_through_pickle_as_the_external_sort_spills_them(gdelt2: Path) -> None:
    pending = [
        item
        for path in (gdelt2, ICEWS_SAMPLE)
        for item in read_events(path, options=ReaderOptions(repeats="rows"))
        if isinstance(item, Pending)
    ]
    assert {type(item.row) for item in pending} == {GdeltRow, IcewsRow}
    assert pickle.loads(pickle.dumps(pending, protocol=pickle.HIGHEST_PROTOCOL)) == pending
    in_memory = sorted(pending, key=play_key)
    spilled = list(external_sort(pending, run_size=500))
    assert spilled == in_memory
    assert [built(item) for item in spilled] == [built(item) for item in in_memory]


def test_blocks_number_lines_across_reads_and_skip_long_lines() -> None:
    data = b"a\nbb\n" + b"x" * (MAX_LINE_BYTES * 2 + 5) + b"\nccc\nlast"
    got = []
    for block in blocks(io.BytesIO(data), "f", size=1000):
        if isinstance(block, BadRow):
            got.append((block.where.line, "BAD"))
        else:
            first, lines = block
            got.extend(enumerate([line.decode() for line in lines], start=first))
    assert got == [(1, "a"), (2, "bb"), (3, "BAD"), (4, "ccc"), (5, "last")]


def test_repeats_merge_into_one_event_whose_weight_adds_up(gdelt2: Path) -> None:
    report = ReadReport()
    merged = list(read_in_play_order([gdelt2], "gdelt", report=report))
    rows = list(read_in_play_order([gdelt2], "gdelt", ReaderOptions(repeats="rows")))
    assert len(rows) == GEORGIA_DYAD_ROWS
    assert len(merged) + report.merged == GEORGIA_DYAD_ROWS
    assert report.merged > 0
    ids = [play_key(item) for item in merged]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    by_id: dict[str, float] = {}
    for item in read_events(gdelt2, "gdelt"):
        if isinstance(item, Pending):
            by_id[item.event_id] = by_id.get(item.event_id, 0.0) + item.weight
    for item in merged:
        assert isinstance(item.record, CrisisEvent)
        assert item.record.weight == pytest.approx(min(1.0, by_id[item.record.event_id]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 7))
def test_external_sort_spilled_equals_sorted_in_memory(hours: list[int], run_size: int) -> None:
    items = [Located(SourceLine("f", i), event(f"e{i:03d}", hours=h)) for i, h in enumerate(hours)]
    spilled = list(external_sort(items, run_size=run_size))
    assert [play_key(i) for i in spilled] == sorted(play_key(i) for i in items)


def read_without_raising(data: bytes, file_format: str) -> None:
    """Reads `data` to the end; every event a reader makes, the log accepts as it is."""
    stream = Input("fuzz", io.BytesIO(data), len(data), len(data))
    for item in read_input(stream, file_format, ReaderOptions()):
        assert isinstance(item, Located | Pending | BadRow | NoDyadRows)
        if event := built(item):
            assert type(event.record).model_validate_json(event.record.model_dump_json()) == event.record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), file_format=st.sampled_from(["native", "gdelt", "icews"]))
def test_readers_never_raise_on_arbitrary_bytes(data: bytes, file_format: str) -> None:
    read_without_raising(data, file_format)


ROW_PIECES = st.sampled_from(
    [
        "",
        "NA",
        "USA",
        "RUS",
        "IRN",
        "PAK",
        "EUR",
        "190",
        "0211",
        "-10",
        "7.5",
        "nan",
        "20151124",
        "abc",
        "é",
        "\x00",
        "²",
        "1" * 5000,
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ROW_PIECES, min_size=55, max_size=62), max_size=5))
def test_gdelt_reader_never_raises_on_rows_of_plausible_fields(rows: list[list[str]]) -> None:
    data = "\n".join("\t".join(row) for row in rows).encode()
    read_without_raising(data, "gdelt")


def test_auto_raises_only_input_error_on_arbitrary_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError):
        list(read_events(path))


ICEWS_PIECES = st.sampled_from(
    [
        "",
        "NA",
        "Russian Federation",
        "Turkey",
        "Atlantis",
        "190",
        "0211",
        "999",
        "-10",
        "12",
        "x",
        "2018-06-01",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(ICEWS_PIECES, min_size=19, max_size=21), max_size=5))
def test_icews_reader_never_raises_on_rows_of_plausible_fields(rows: list[list[str]]) -> None:
    header = ICEWS_SAMPLE.read_text(encoding="utf-8").splitlines()[0]
    data = "\n".join([header, *("\t".join(row) for row in rows)]).encode()
    read_without_raising(data, "icews")
