"""Actor roles: the mappings of schemas/actors.py on real actors, the roles the ICEWS and GDELT
readers set, the merged ids that keep role pairs apart (and stay as they were for state to
state), and a code for every country name of the shared ICEWS files."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO

import pytest

from replay.ordering import ReadReport, read_in_play_order
from replay.readers import read_events
from replay.readers.base import Pending, ReaderOptions
from replay.readers.gdelt import GdeltRow
from replay.readers.icews import IcewsRow
from schemas.actors import ActorRole, role_from_cameo, role_from_icews
from schemas.countries import country_code, country_codes
from schemas.events import CrisisEvent
from tests.gdelt_samples import GEORGIA_CSV, ICEWS_SAMPLE, gdelt2_row, georgia_rows

REAL_ICEWS_ZIP = Path(__file__).parents[1] / "replay" / "data" / "real" / "icews-daily-2018q4.zip"
STATE, NON_STATE = ActorRole.STATE, ActorRole.NON_STATE


@pytest.mark.parametrize(
    ("code", "country", "types", "role"),
    [
        ("USAGOV", "USA", (), STATE),
        ("RUSMIL", "RUS", (), STATE),
        ("USACOP", "USA", (), STATE),
        ("IRN", "IRN", (), STATE),  # a bare country code is the state
        (None, "PAK", (), STATE),  # no code: a hand-coded event that names the country
        ("GBRCVL", "GBR", (), NON_STATE),
        ("CHNBUS", "CHN", (), NON_STATE),
        ("USAMED", "USA", (), NON_STATE),
        ("VENOPP", "VEN", (), NON_STATE),
        ("SYRREB", "SYR", (), NON_STATE),
        ("SYRMILREB", "SYR", (), NON_STATE),  # rebel soldiers are not the army
        ("USA", "USA", ("GOV", "", ""), STATE),  # GDELT's type codes, when given, decide
        ("USAGOV", "USA", ("GOV", "", ""), STATE),
        ("SOMLAB", "SOM", ("LAB", "", ""), NON_STATE),
        ("AFGMIL", "AFG", ("MIL", "REB", ""), NON_STATE),
    ],
)
def test_role_from_cameo(code: str | None, country: str, types: tuple[str, ...], role: ActorRole) -> None:
    assert role_from_cameo(code, country, types) is role


@pytest.mark.parametrize(
    ("name", "sectors", "country", "role"),
    [
        ("Police (United States)", "Police,Government", "United States", STATE),
        ("Foreign Affairs (Bangladesh)", "Executive,Foreign Ministry,Government", "Bangladesh", STATE),
        ("Naval (Ukraine)", "Government,Military,Navy", "Ukraine", STATE),
        ("Russia", "", "Russian Federation", STATE),  # named after its country, in another spelling
        ("Ukraine", "", "Ukraine", STATE),
        (
            "Citizen (United Kingdom)",
            "General Population / Civilian / Social,Social",
            "United Kingdom",
            NON_STATE,
        ),
        ("Amanda Knox", "", "United States", NON_STATE),
        ("Media (Russia)", "Media,Social", "Russian Federation", NON_STATE),
        (
            "Bharatiya Janata",
            "Opposition Major Party (Out Of Government),(National) Major Party,Parties",
            "India",
            NON_STATE,
        ),
        (  # a sitting prime minister keeps the opposition sector of his party's past: state wins
            "Scott Morrison",
            "Lower House,Executive,Parties,Government,Opposition Major Party (Out Of Government)",
            "Australia",
            STATE,
        ),
        ("Criminal (India)", "Criminals / Gangs,Dissident", "India", NON_STATE),
    ],
)
def test_role_from_icews(name: str, sectors: str, country: str, role: ActorRole) -> None:
    assert role_from_icews(name, sectors, country) is role


ICEWS_HEADER = ICEWS_SAMPLE.read_text(encoding="utf-8").splitlines()[0]
KERCH_ROWS = [  # real rows of the 2018 Q4 daily files: the Kerch Strait incident, 2018-11-25
    [
        "33814926", "2018-11-25", "Military Personnel - Special (Russia)", "Military,Government",
        "Russian Federation", "Confiscate property", "1711", "-9.2", "Naval (Ukraine)",
        "Government,Military,Navy", "Ukraine", "48568431", "1", "Reuters News", "", "", "", "Ukraine",
        "50.4547", "30.5238",
    ],
    [
        "33814948", "2018-11-25", "Russia", "", "Russian Federation", "Confiscate property", "1711",
        "-9.2", "Naval (Ukraine)", "Government,Military,Navy", "Ukraine", "48568439", "1",
        "Agence France-Presse", "Kiev", "", "Misto Kyyiv", "Ukraine", "50.4547", "30.5238",
    ],
    [
        "33815037", "2018-11-25", "Crimea", "", "Russian Federation", "Confiscate property", "1711",
        "-9.2", "Ukraine", "", "Ukraine", "48568602", "1", "Reuters News", "Moscow", "", "Moskva",
        "Russian Federation", "55.7522", "37.6156",
    ],
    [
        "33815145", "2018-11-25", "Crimea", "", "Russian Federation", "Confiscate property", "1711",
        "-9.2", "Ukraine", "", "Ukraine", "48568929", "1", "Reuters News", "Moscow", "", "Moskva",
        "Russian Federation", "55.7522", "37.6156",
    ],
    [
        "33815230", "2018-11-25", "Military (Russia)", "Military,Government", "Russian Federation",
        "Confiscate property", "1711", "-9.2", "Ukraine", "", "Ukraine", "48569081", "1",
        "Xinhua News Agency", "Moscow", "", "Moskva", "Russian Federation", "55.7522", "37.6156",
    ],
    [
        "33814651", "2018-11-25", "Media (Russia)", "Media,Social", "Russian Federation",
        "Make statement", "010", "0", "Naval (Ukraine)", "Navy,Military,Government", "Ukraine",
        "48567778", "6", "Deutsche Welle", "Mariupol", "", "Donets'ka Oblast'", "Ukraine", "47.0951",
        "37.5413",
    ],
]  # fmt: skip


@pytest.fixture(scope="module")
def kerch_icews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("icews") / "20181126-icews-events.tab"
    lines = [ICEWS_HEADER, *("\t".join(row) for row in KERCH_ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pending(path: Path, file_format: str, options: ReaderOptions | None = None) -> list[Pending]:
    return [item for item in read_events(path, file_format, options) if isinstance(item, Pending)]


def roles(item: Pending) -> tuple[ActorRole, ActorRole]:
    assert isinstance(item.row, GdeltRow | IcewsRow)
    return item.row.source_role, item.row.target_role


def played(path: Path, file_format: str) -> tuple[dict[str, CrisisEvent], ReadReport]:
    report = ReadReport()
    events = {}
    for item in read_in_play_order([path], file_format, report=report):
        assert isinstance(item.record, CrisisEvent)
        events[item.record.event_id] = item.record
    return events, report


def test_icews_reader_sets_roles_and_merges_each_role_pair_apart(kerch_icews: Path) -> None:
    rows = pending(kerch_icews, "icews")
    assert [(row.row_id, row.event_id) for row in rows] == [
        ("20181125-33814926", "icews-20181125-RUS-UKR-1711"),
        ("20181125-33814948", "icews-20181125-RUS-UKR-1711"),  # "Russia" of the "Russian Federation"
        ("20181125-33815037", "icews-20181125-RUS-UKR-1711-ns.s"),  # Crimea, a region
        ("20181125-33815145", "icews-20181125-RUS-UKR-1711-ns.s"),
        ("20181125-33815230", "icews-20181125-RUS-UKR-1711"),
        ("20181125-33814651", "icews-20181125-RUS-UKR-010-ns.s"),  # Russian media, Ukraine's navy
    ]
    events, report = played(kerch_icews, "icews")
    assert sorted(events) == [
        "icews-20181125-RUS-UKR-010-ns.s",
        "icews-20181125-RUS-UKR-1711",
        "icews-20181125-RUS-UKR-1711-ns.s",
    ]
    assert report.merged == 3
    seized = events["icews-20181125-RUS-UKR-1711"]
    assert (seized.source.role, seized.target.role) == (STATE, STATE)
    assert seized.weight == pytest.approx(3 / 5)  # three rows, one witness each
    crimea = events["icews-20181125-RUS-UKR-1711-ns.s"]
    assert (crimea.source.name, crimea.source.role, crimea.target.role) == ("Crimea", NON_STATE, STATE)
    media = events["icews-20181125-RUS-UKR-010-ns.s"].model_dump(mode="json")
    assert (media["source"]["role"], media["target"]["role"]) == ("non-state", "state")


def test_icews_rows_mode_ids_are_unchanged(kerch_icews: Path) -> None:
    rows = pending(kerch_icews, "icews", ReaderOptions(repeats="rows"))
    assert [row.event_id for row in rows] == [f"icews-20181125-{row[0]}" for row in KERCH_ROWS]


def test_icews_real_sample_keeps_state_ids_and_parts_citizens_from_governments() -> None:
    by_id: dict[str, set[tuple[ActorRole, ActorRole]]] = {}
    for row in pending(ICEWS_SAMPLE, "icews"):
        by_id.setdefault(row.event_id, set()).add(roles(row))
    assert all(len(pairs) == 1 for pairs in by_id.values())  # one role pair per merged id
    # India and Pakistan (state), and their citizens (not), on 2018-06-01, CAMEO 030
    assert by_id["icews-20180601-IND-PAK-030"] == {(STATE, STATE)}
    assert by_id["icews-20180601-IND-PAK-030-ns.ns"] == {(NON_STATE, NON_STATE)}
    assert by_id["icews-20180601-BGD-VNM-040"] == {(STATE, STATE)}


def gdelt_line(
    row_id: int, actors: tuple[str, str], types: tuple[str, str] = ("", ""), code: str = "190"
) -> str:
    """A GDELT 2.0 row of 2018-11-25 between actors with these CAMEO codes and Type1Codes."""
    fields = gdelt2_row(row_id, datetime(2018, 11, 25), ("RUS", "UKR"), code, -10.0, 2).split("\t")
    fields[5], fields[6], fields[12] = actors[0], actors[0], types[0]
    fields[15], fields[16], fields[22] = actors[1], actors[1], types[1]
    return "\t".join(fields)


@pytest.fixture(scope="module")
def kerch_gdelt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gdelt") / "20181125.export.CSV"
    lines = [
        gdelt_line(1, ("RUS", "UKR")),
        gdelt_line(2, ("RUSMIL", "UKR"), ("MIL", "")),
        gdelt_line(3, ("RUS", "UKR"), ("REB", "")),  # the type codes say rebels: not the state
        gdelt_line(4, ("RUS", "UKR")),
        gdelt_line(5, ("RUSCVL", "UKRMED"), ("CVL", "MED")),
        gdelt_line(6, ("RUSMIL", "UKRMIL"), ("MIL", "MIL")),
        gdelt_line(7, ("RUSMIL", "UKRREB")),  # no type codes: the actor codes say it
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_gdelt_reader_reads_roles_from_type_codes_and_merges_each_role_pair_apart(kerch_gdelt: Path) -> None:
    rows = pending(kerch_gdelt, "gdelt")
    assert [(row.row_id, row.event_id) for row in rows] == [
        ("1", "gdelt-20181125-RUS-UKR-190"),
        ("2", "gdelt-20181125-RUSMIL-UKR-190"),
        ("3", "gdelt-20181125-RUS-UKR-190-ns.s"),
        ("4", "gdelt-20181125-RUS-UKR-190"),
        ("5", "gdelt-20181125-RUSCVL-UKRMED-190-ns.ns"),
        ("6", "gdelt-20181125-RUSMIL-UKRMIL-190"),
        ("7", "gdelt-20181125-RUSMIL-UKRREB-190-s.ns"),
    ]
    events, report = played(kerch_gdelt, "gdelt")
    assert len(events) == 6 and report.merged == 1
    state = events["gdelt-20181125-RUS-UKR-190"]
    assert (state.source.role, state.target.role) == (STATE, STATE)
    assert state.weight == pytest.approx(4 / 5)
    rebels = events["gdelt-20181125-RUS-UKR-190-ns.s"]
    assert (rebels.source.role, rebels.target.role) == (NON_STATE, STATE)
    assert rebels.weight == pytest.approx(2 / 5)
    rows_mode = pending(kerch_gdelt, "gdelt", ReaderOptions(repeats="rows"))
    assert [row.event_id for row in rows_mode] == [f"gdelt-{n}" for n in range(1, 8)]


def test_gdelt_real_sample_roles_from_csv_and_raw_layouts(tmp_path: Path) -> None:
    header, rows = georgia_rows()
    expected = ("gdelt-20120125-USAGOV-SOMLAB-073-s.ns", STATE, NON_STATE)  # line 2962: Somali labour
    raw = tmp_path / "20120101.export.tab"  # GDELT 1.0: 58 tab-separated columns
    raw.write_text(
        "\n".join("\t".join("" if v == "NA" else v for v in row) for row in rows) + "\n", encoding="utf-8"
    )
    for path, line in ((GEORGIA_CSV, 2962), (raw, 2961)):
        (row,) = (item for item in pending(path, "gdelt") if item.where.line == line)
        assert (row.event_id, *roles(row)) == expected
    no_types = [at for at, name in enumerate(header) if "Type" not in name]
    csv_without_types = tmp_path / "no_types.csv"  # roles then come from the actor codes
    with csv_without_types.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([row[at] for at in no_types] for row in [header, *rows])
    (row,) = (item for item in pending(csv_without_types, "gdelt") if item.where.line == 2962)
    assert (row.event_id, *roles(row)) == expected


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Brunei", "BRN"),
        ("Micronesia", "FSM"),
        ("Cook Island", "COK"),
        ("U.S. Virgin Islands", "VIR"),
        ("Falkland Islands", "FLK"),
        ("Reunion", "REU"),
        ("Bavaria", "DEU"),  # the Country (location) column, twice
        ("Russia", "RUS"),  # the actor ICEWS names after the Russian Federation
        ("Palestinian Territory, Occupied", "PSE"),
        ("Russian Federation", "RUS"),
        ("Occupied Palestinian Territory", "PSE"),
        ("NA", None),  # ICEWS's null, not Namibia's alpha-2 code
        ("US", None),
    ],
)
def test_country_code_of_icews_names(name: str, code: str | None) -> None:
    assert country_code(name) == code
    assert code is None or code in country_codes()


def country_names(
    handle: IO[bytes], columns: Iterable[str] = ("Source Country", "Target Country")
) -> set[str]:
    """The distinct values of `columns` in an ICEWS file; splits each row only as far as needed."""
    header = handle.readline().decode("utf-8").rstrip("\r\n").split("\t")
    at = [header.index(column) for column in columns]
    names: set[bytes] = set()
    for line in handle:
        fields = line.split(b"\t", max(at) + 1)
        names.update(fields[n].strip() for n in at)
    return {name.decode("utf-8") for name in names} - {"", "NA"}


def test_every_country_name_of_the_shared_icews_files_has_a_code() -> None:
    names = set()
    with zipfile.ZipFile(REAL_ICEWS_ZIP) as archive:
        members = [member for member in archive.namelist() if member.endswith(".tab")]
        assert len(members) == 86
        for member in members:
            with archive.open(member) as handle:
                names |= country_names(handle)
    with ICEWS_SAMPLE.open("rb") as handle:
        names |= country_names(handle)
    assert len(names) > 200
    unknown = sorted(name for name in names if country_code(name) not in country_codes())
    assert unknown == []
