"""GDELT events as Google BigQuery exports them, on a real export (tests/data, see SOURCES.md).

BigQuery writes the events tables as CSV: comma-separated, fields quoted, `NULL` for nulls,
with or without a header, GDELT 1.0 (58 columns) or 2.0 (61 columns) in the raw export's
column order. The real file is a headerless 1.0 export of USA-CHN rows of 2018; the other
layouts are made from its rows, so every variant is read on real codes, actors and scores.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.ordering import ReadReport, read_in_play_order
from replay.readers import READERS, read_events
from replay.readers.base import BadRow, Pending, ReaderOptions
from replay.readers.dispatch import Input, read_input
from replay.readers.gdelt import GdeltReader
from schemas.actors import ActorRole
from schemas.cameo import goldstein_scale
from schemas.events import CrisisEvent
from schemas.outputs import Alert
from tests.gdelt_samples import ICEWS_SAMPLE, as_gdelt2, georgia_rows
from tests.test_backtest_cli import ARTICLE_LOG, crisismon
from tests.test_readers import built, located, read_without_raising, tally

BIGQUERY_CSV = Path(__file__).parent / "data" / "gdelt1_bigquery_usa_chn_2018.csv"
BIGQUERY_ROWS = 3340
MERGED_EVENTS = 2309
"""The real rows' events with `repeats: merge`: rows of one day, actors, roles and code are one."""
EACH_ROW = ReaderOptions(repeats="rows")
EVENT_CODE, ROOT_CODE, GOLDSTEIN, NUM_SOURCES, SOURCEURL = 26, 28, 30, 32, 57
ACTOR1_CODE, ACTOR1_NAME, ACTOR1_TYPE1, SQLDATE = 5, 6, 12, 1


def bigquery_rows() -> list[list[str]]:
    with BIGQUERY_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def bigquery_line(fields: Sequence[str], null: str = "NULL") -> str:
    """A row as BigQuery writes it: every field quoted, nulls (`NULL` in the real file) as `null`."""
    return ",".join(null if value == "NULL" else '"' + value.replace('"', '""') + '"' for value in fields)


def minimally_quoted_line(fields: Sequence[str]) -> str:
    """A row quoted only where a field needs it (a comma in "Beijing, China"), nulls empty."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow("" if value == "NULL" else value for value in fields)
    return line.getvalue()


def gdelt1_header() -> list[str]:
    """GDELT 1.0's column names, as a BigQuery header names them (the real Georgia CSV's)."""
    header, _ = georgia_rows()
    assert len(header) == 58 and header[-2:] == ["DATEADDED", "SOURCEURL"]
    return header


def gdelt2_header() -> list[str]:
    """GDELT 2.0's column names: 1.0's with an ADM2 code after each ADM1 code (see `as_gdelt2`)."""
    names: list[str] = []
    for name in gdelt1_header()[:56]:
        names.append(name)
        if name.endswith("ADM1Code"):
            names.append(name.replace("ADM1", "ADM2"))
    return [*names, "DATEADDED", "SOURCEURL"]


def write(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def without_provenance(path: Path, file_format: str = "auto") -> list[dict[str, object]]:
    return [item.record.model_dump(exclude={"provenance"}) for item in located(path, file_format, EACH_ROW)]


def events_of(path: Path, file_format: str = "auto") -> list[CrisisEvent]:
    records = [item.record for item in located(path, file_format, EACH_ROW)]
    assert all(isinstance(record, CrisisEvent) for record in records)
    return [record for record in records if isinstance(record, CrisisEvent)]


def test_the_helper_writes_rows_as_the_real_export_does() -> None:
    """So that the variants below differ from the real file only in what each one varies."""
    assert "\n".join(map(bigquery_line, bigquery_rows())) + "\n" == BIGQUERY_CSV.read_text(encoding="utf-8")


@pytest.mark.parametrize("file_format", ["auto", "gdelt"])
def test_every_row_of_the_real_export_reads_as_a_usa_chn_event(file_format: str) -> None:
    assert tally(BIGQUERY_CSV, file_format) == {"Located": BIGQUERY_ROWS}
    rows = bigquery_rows()
    items = located(BIGQUERY_CSV, file_format, EACH_ROW)
    events = events_of(BIGQUERY_CSV, file_format)
    assert [item.where.line for item in items] == list(range(1, BIGQUERY_ROWS + 1))
    assert [event.event_id for event in events] == [f"gdelt-{row[0]}" for row in rows]
    assert Counter((event.source.country, event.target.country) for event in events) == {
        ("CHN", "USA"): 2073,
        ("USA", "CHN"): 1267,
    }
    assert [event.goldstein for event in events] == [float(row[GOLDSTEIN]) for row in rows]
    assert [event.provenance.document for event in events] == [row[SOURCEURL] for row in rows]
    # Every type code is NULL: each actor's role comes from its code, a country's: the state.
    assert {(event.source.role, event.target.role) for event in events} == {
        (ActorRole.STATE, ActorRole.STATE)
    }
    first = events[0]
    assert (first.source.code, first.source.name, first.target.code, first.target.name) == (
        "USA",
        "UNITED STATES",
        "CHN",
        "CHINA",
    )
    assert (first.cameo_code, first.event_time) == ("160", datetime(2018, 5, 30, tzinfo=UTC))
    assert first.weight == pytest.approx(0.2)  # NumSources 1 of the 5 for full weight
    assert first.provenance.coded_by == (
        f"GDELT 1.0 (machine-coded), GLOBALEVENTID 760359406, {BIGQUERY_CSV}:1"
    )
    assert "NULL" not in first.provenance.coded_by and first.provenance.quote.startswith(
        "760359406,20180530,"
    )


def test_the_real_rows_merge_into_events_in_the_play_order_backtest_and_replay_share() -> None:
    report = ReadReport()
    played = list(read_in_play_order([BIGQUERY_CSV], report=report))
    assert len(played) == MERGED_EVENTS
    assert (report.rows, report.merged, report.no_dyad, report.bad_count) == (
        BIGQUERY_ROWS,
        BIGQUERY_ROWS - MERGED_EVENTS,
        0,
        0,
    )


def test_event_codes_exported_as_numbers_get_their_leading_zero_back() -> None:
    """The real export typed CAMEO codes as numbers: 080 is "80", 010 is "10", which as it
    stands is another code (10: demand). The one-digit EventRootCode tells them apart; GDELT's
    own Goldstein score of each row proves the code read is the code GDELT coded."""
    rows = bigquery_rows()
    assert rows[1][EVENT_CODE : ROOT_CODE + 1] == ["80", "80", "8"]
    scale = goldstein_scale("gdelt").scores
    events = events_of(BIGQUERY_CSV)
    assert events[1].cameo_code == "080"
    for row, event in zip(rows, events, strict=True):
        assert event.cameo_code.startswith(row[ROOT_CODE].zfill(2))
        assert event.cameo_code.lstrip("0") == row[EVENT_CODE].lstrip("0")
        assert event.goldstein is not None and scale[event.cameo_code] == event.goldstein
    made_statements = [e for row, e in zip(rows, events, strict=True) if row[EVENT_CODE] == "10"]
    assert made_statements and {e.cameo_code for e in made_statements} == {"010"}


@pytest.mark.parametrize("quoted", [True, False])
def test_the_real_rows_under_a_header_read_as_without_one(quoted: bool, tmp_path: Path) -> None:
    header = gdelt1_header()
    header_line = bigquery_line(header) if quoted else ",".join(header)
    text = BIGQUERY_CSV.read_text(encoding="utf-8")
    path = tmp_path / "with_header.csv"
    path.write_text(f"{header_line}\n{text}", encoding="utf-8")
    assert tally(path) == {"Located": BIGQUERY_ROWS}
    assert without_provenance(path) == without_provenance(BIGQUERY_CSV)
    with_header, without = located(path, "auto", EACH_ROW), located(BIGQUERY_CSV, "auto", EACH_ROW)
    assert [item.where.line - 1 for item in with_header] == [item.where.line for item in without]
    documents = [event.provenance.document for event in events_of(BIGQUERY_CSV)]
    assert [event.provenance.document for event in events_of(path)] == documents


def test_an_export_quoted_only_where_needed_reads_like_the_real_one(tmp_path: Path) -> None:
    path = write(tmp_path / "minimal.csv", [minimally_quoted_line(row) for row in bigquery_rows()])
    assert b'"' in path.read_bytes() and b'"760359406"' not in path.read_bytes()
    assert without_provenance(path) == without_provenance(BIGQUERY_CSV)


@pytest.fixture(scope="module")
def gdelt2_rows() -> list[list[str]]:
    """The real rows in GDELT 2.0's 61 columns (empty ADM2 codes, DATEADDED with a time)."""
    header = gdelt1_header()
    return [as_gdelt2(header, row).split("\t") for row in bigquery_rows()]


@pytest.mark.parametrize("null", ["NULL", "NA", "", '""'])
@pytest.mark.parametrize("with_header", [False, True])
def test_a_gdelt2_export_reads_like_the_gdelt1_one(
    gdelt2_rows: list[list[str]], null: str, with_header: bool, tmp_path: Path
) -> None:
    assert {len(row) for row in gdelt2_rows} == {61}
    header = [bigquery_line(gdelt2_header())] if with_header else []
    path = write(tmp_path / "gdelt2.csv", [*header, *(bigquery_line(row, null) for row in gdelt2_rows)])
    assert tally(path) == {"Located": BIGQUERY_ROWS}
    assert without_provenance(path) == without_provenance(BIGQUERY_CSV)
    first = events_of(path)[0]
    assert first.provenance.document == "https://news.example/760359406"
    assert first.provenance.coded_by.startswith("GDELT CSV" if with_header else "GDELT 2.0")


def test_a_gdelt1_export_of_57_columns_reads_without_a_source_url(tmp_path: Path) -> None:
    path = write(tmp_path / "gdelt1_57.csv", [bigquery_line(row[:57]) for row in bigquery_rows()[:50]])
    events = events_of(path)
    assert [e.model_dump(exclude={"provenance"}) for e in events] == without_provenance(BIGQUERY_CSV)[:50]
    assert {event.provenance.document for event in events} == {str(path)}


def test_a_zipped_export_reads_like_the_plain_one(tmp_path: Path) -> None:
    archive = tmp_path / "usa_chn.csv.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(BIGQUERY_CSV, BIGQUERY_CSV.name)
    assert without_provenance(archive) == without_provenance(BIGQUERY_CSV)


def one_event(fields: Sequence[str]) -> CrisisEvent:
    data = bigquery_line(fields).encode()
    (item,) = read_input(Input("row.csv", io.BytesIO(data), len(data), len(data)), "auto", EACH_ROW)
    built_event = built(item)
    assert built_event is not None and isinstance(built_event.record, CrisisEvent)
    return built_event.record


def test_null_fields_read_as_nulls() -> None:
    fields = bigquery_rows()[0]
    assert fields[ACTOR1_CODE : ACTOR1_TYPE1 + 3] == ["USA", "UNITED STATES", "USA", *["NULL"] * 7]
    fields[ACTOR1_CODE] = fields[ACTOR1_NAME] = fields[GOLDSTEIN] = fields[NUM_SOURCES] = "NULL"
    event = one_event(fields)
    assert (event.source.code, event.source.name, event.source.role) == ("USA", "USA", ActorRole.STATE)
    assert event.goldstein is None
    assert event.weight == pytest.approx(0.2)  # no NumSources: one source
    fields[ACTOR1_TYPE1] = "CVL"  # civilians: a type code given beside NULL ones
    assert one_event(fields).source.role == ActorRole.NON_STATE


def test_broken_rows_are_bad_rows_with_their_line_and_the_others_read(tmp_path: Path) -> None:
    rows = bigquery_rows()[:6]
    broken_date = [*rows[2]]
    broken_date[SQLDATE] = "2018-05-30"
    lines = [
        bigquery_line(rows[0]),
        bigquery_line(rows[1][:40]),
        bigquery_line(broken_date),
        bigquery_line([*rows[3], "one too many"]),
        "",  # a blank line is no row
        *map(bigquery_line, rows[4:]),
    ]
    path = write(tmp_path / "broken.csv", lines)
    items = list(read_events(path))
    bad = [(item.where.line, item.category, item.reason) for item in items if isinstance(item, BadRow)]
    assert bad == [
        (2, "columns", "40 columns; a GDELT export row has 57, 58 or 61"),
        (3, "SQLDATE", "SQLDATE: not a YYYYMMDD date: '2018-05-30'"),
        (4, "columns", "59 columns; a GDELT export row has 57, 58 or 61"),
    ]
    assert [item.where.line for item in items if isinstance(item, Pending)] == [1, 6, 7]


def test_with_format_gdelt_a_broken_first_row_is_the_only_bad_one(tmp_path: Path) -> None:
    rows = bigquery_rows()[:3]
    path = write(tmp_path / "broken_first.csv", [bigquery_line(rows[0][:10]), *map(bigquery_line, rows[1:])])
    items = list(read_events(path, "gdelt"))
    assert [(item.where.line, item.category) for item in items if isinstance(item, BadRow)] == [
        (1, "columns")
    ]
    assert [item.where.line for item in items if isinstance(item, Pending)] == [2, 3]


def test_a_header_without_gdelt_names_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "other.csv", ['"GLOBALEVENTID","when","who"', '"1","2","3"'])
    (bad,) = read_events(path)
    assert isinstance(bad, BadRow) and (bad.where.line, bad.category) == (1, "header")


def first_line(path: Path) -> bytes:
    return path.read_bytes().split(b"\n", 1)[0]


def test_auto_recognises_a_bigquery_export_whether_its_first_line_is_whole_or_cut(
    gdelt2_rows: list[list[str]],
) -> None:
    real = first_line(BIGQUERY_CSV)
    long_url = bigquery_line([*bigquery_rows()[0][:-1], "https://news.example/" + "x" * 5000]).encode()
    unquoted = minimally_quoted_line(bigquery_rows()[0]).encode()
    for line in (real, long_url[:4096], unquoted, bigquery_line(gdelt2_rows[0]).encode()):
        assert READERS.detect(line, "x").name == "gdelt", line[:80]
    for header in (bigquery_line(gdelt2_header()), ",".join(gdelt1_header())):
        assert READERS.detect(header.encode(), "x").name == "gdelt"


def test_other_formats_are_not_taken_for_gdelt() -> None:
    gdelt = GdeltReader()
    icews_header = first_line(ICEWS_SAMPLE)
    native_lines = ARTICLE_LOG.read_bytes().splitlines()[:5]
    coded_by = b'{"provenance": {"coded_by": "GDELT 1.0 (machine-coded), GLOBALEVENTID 760359406"}}'
    assert READERS.detect(icews_header, "x").name == "icews"
    assert {READERS.detect(line, "x").name for line in [*native_lines, coded_by]} == {"native"}
    for line in (icews_header, *native_lines, coded_by):
        assert not gdelt.sniff(line), line[:80]
    for line in (b'"1","2","3"', b"hello, world", b'"760359406","20180530"' + b',"x"' * 10):
        assert not gdelt.sniff(line), line


PIECES = st.sampled_from(
    ["", "NULL", "NA", '""', '"USA"', '"CHN"', "USA", '"10"', '"1"', '"20180530"', '"-4"', '"x,y"', '"', "é"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(PIECES, min_size=55, max_size=62), min_size=1, max_size=4))
def test_the_csv_path_never_raises_on_rows_of_plausible_fields(rows: list[list[str]]) -> None:
    data = "\n".join('"760359406",' + ",".join(row) for row in rows).encode()
    read_without_raising(data, "gdelt")


def test_a_backtest_of_the_real_export_alerts_on_usa_chn() -> None:
    run = crisismon("backtest", str(BIGQUERY_CSV), "--json")
    assert run.returncode == 0, run.stderr
    alerts = [Alert.model_validate_json(line) for line in run.stdout.splitlines()]
    assert alerts and {alert.dyad for alert in alerts} == {"CHN-USA"}
    # March 2018: steel and aluminium tariffs, then the Section 301 tariffs on Chinese goods.
    assert any(
        alert.kind == "escalation" and date(2018, 3, 1) <= alert.event_time.date() <= date(2018, 3, 31)
        for alert in alerts
    )
    human = crisismon("backtest", str(BIGQUERY_CSV))
    assert human.returncode == 0, human.stderr
    assert f"records: accepted {MERGED_EVENTS}, no-dyad 0" in human.stdout
    assert "skipped" not in human.stdout + human.stderr
