"""A backtest split over processes (`--jobs`) is the same run as in one: the same alerts with
the same ids in the same order, the same counts, dyads, curves, listed records and bad rows, on
inputs of every kind with their rough edges (bad rows of dyads and of none, conflicting copies,
retractions, duplicates, rows dated in the future)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from replay.ordering import ReadReport, read_in_play_order
from replay.readers.base import PLAY_ORDERS, Part, PlayOrder, ReaderOptions
from schemas.events import record_id
from schemas.outputs import Alert
from services.backtest.parts import PartFailed, in_parts
from services.backtest.run import BacktestResult, run_backtest
from services.core import EngineConfig
from services.settings import DEFAULT_MAX_JOBS, Settings, usable_cpus
from tests.builders import event, retraction
from tests.gdelt_samples import ICEWS_SAMPLE, gdelt2_lines, unseen_crisis_lines
from tests.live import children_of, eventually
from tests.synthetic import write_events

CRISISMON = Path(sys.executable).parent / "crisismon"
CLOCK = datetime(2026, 1, 1, tzinfo=UTC)
WATCHED = ("ARM-AZE", "GEO-RUS", "IRN-PAK")
WAIT_BOUND_SECONDS = 30.0


def write_gdelt(path: Path) -> Path:
    """Real rows over many dyads, an unseen crisis, and bad rows of dyads and of none."""
    lines = [*gdelt2_lines(repeats=2), *unseen_crisis_lines()]
    dyad_rows = [at for at, line in enumerate(lines) if line.split("\t")[7] not in ("", line.split("\t")[17])]
    for nth, at in enumerate(dyad_rows[5::97]):  # rows of many dyads, broken one way or another
        columns = lines[at].split("\t")
        column, value = [(1, "2012-01-03"), (30, "very bad"), (26, "999"), (1, "20991231")][nth % 4]
        columns[column] = value
        lines[at] = "\t".join(columns)
    lines[40:40] = ["too\tfew\tcolumns", ""]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_native(path: Path) -> Path:
    """Events over 45 dyads, then conflicting copies, duplicates, retractions and a bad line."""
    write_events(path, 900)
    tricky = [
        event("syn-000010", 30, cameo_code="190", source="CHN", target="USA"),
        event("strike", 10, cameo_code="195"),
        event("strike", 11, cameo_code="190"),  # a conflicting copy
        event("strike", 10, cameo_code="195"),  # a duplicate
        retraction("strike", 40),
        event("calm", 12, cameo_code="042", source="CHN", target="USA"),
        retraction("calm", 50, dyad="CHN-USA"),
    ]
    with path.open("a") as handle:
        handle.write("".join(record.model_dump_json() + "\n" for record in tricky))
        handle.write("{not json\n")
    return path


def summary(result: BacktestResult) -> dict[str, Any]:
    """Everything a run shows: what the timeline, report, scores and --json are drawn from."""
    read = result.read
    return {
        "alerts": [alert.model_dump_json() for alert in result.alerts],
        "counts": dict(result.counts),  # shown sorted
        "read": (read.rows, read.no_dyad, read.merged, read.bad_count, list(read.bad_reasons.items())),
        "bad rows": [(bad.where, bad.category, bad.reason) for bad in read.bad_rows],
        "inputs": read.inputs,
        "dyads": [
            (
                trace.dyad,
                trace.records,
                trace.peak,
                [list(column) for column in trace.trail._columns],
                [(step.item.where, step.outcome.fate, step.outcome.record_id) for step in trace.steps],
                [alert.alert_id for alert in trace.alerts],
            )
            for trace in result.dyads.values()
        ],
        "listed": (result.listed, result.complete_listing),
        "strong conflict": sorted(result.strong_conflict.items()),
        "span": (result.first_time, result.last_time),
    }


def split(path: Path, files: int) -> list[Path]:
    """The file's lines in `files` files of consecutive lines, named in their order."""
    lines = path.read_text().splitlines(keepends=True)
    size = -(-len(lines) // files)
    pieces = [path.with_name(f"{at}-{path.name}") for at in range(files)]
    for at, piece in enumerate(pieces):
        piece.write_text("".join(lines[at * size : (at + 1) * size]))
    return pieces


@pytest.mark.parametrize("order", PLAY_ORDERS)
def test_a_run_in_parts_is_the_run_in_one_process(tmp_path: Path, order: PlayOrder) -> None:
    gdelt = split(write_gdelt(tmp_path / "g.export.CSV"), 3)
    paths = [*gdelt, write_native(tmp_path / "n.jsonl"), ICEWS_SAMPLE]
    options = ReaderOptions(clock=CLOCK, order=order)
    whole = run_backtest(paths, EngineConfig(), options=options, watched=WATCHED)
    expected = summary(whole)
    assert len(whole.dyads) > 40 and len(whole.alerts) > 20
    assert {"conflicting copy", "SQLDATE", "Goldstein", "CAMEO code", "columns", "event_time", "JSON"} <= set(
        whole.read.bad_reasons
    )
    assert whole.counts["retraction-applied"] == 2 and whole.counts["duplicate"] >= 1
    for jobs in (2, 3):
        seen: list[Alert] = []
        parts = run_backtest(
            paths, EngineConfig(), options=options, watched=WATCHED, on_alert=seen.append, jobs=jobs
        )
        assert summary(parts) == expected, f"{jobs} parts"
        assert [alert.model_dump_json() for alert in seen] == expected["alerts"]


def gdelt_row(
    row_id: int, day: int, countries: tuple[str, str], actor: str = "", goldstein: str = "-10"
) -> str:
    """A GDELT 2.0 row of January 2024 between two countries' actors (`actor`: an actor code
    that does not name its country, e.g. REB, so rows of two dyads can share a merged id)."""
    columns = [""] * 61
    date = f"202401{day:02d}"
    columns[:5] = [str(row_id), date, date[:6], date[:4], "2024.0027"]
    for at, country in zip((5, 15), countries, strict=True):
        columns[at : at + 3] = [actor or country, actor or country, country]
    columns[25:35] = ["1", "190", "190", "19", "4", goldstein, "5", "5", "5", "1"]
    columns[59:] = [f"{date}120000", f"https://news.example/{row_id}"]
    return "\t".join(columns)


def one_id_two_dyads(folder: Path) -> tuple[list[Path], ReaderOptions]:
    """Rows merged by id whose actor codes do not name their countries (REB of SYR, of IRQ)."""
    path = folder / "reb.export.CSV"
    countries = [("SYR", "USA"), ("IRQ", "USA")] * 2
    rows = [
        gdelt_row(day * 10 + at, day, pair, "REB")
        for day in range(1, 29)
        for at, pair in enumerate(countries)
    ]
    path.write_text("\n".join(rows) + "\n")
    return [path], ReaderOptions()


def one_row_id_two_dyads(folder: Path) -> tuple[list[Path], ReaderOptions]:
    """Each GLOBALEVENTID given twice, with other countries, the rows read one by one."""
    path = folder / "again.export.CSV"
    pairs = [("SYR", "USA"), ("IRQ", "USA")]
    path.write_text("".join(gdelt_row(day, day, pair) + "\n" for day in range(1, 20) for pair in pairs))
    return [path], ReaderOptions(repeats="rows")


def ties_across_dyads(folder: Path) -> tuple[list[Path], ReaderOptions]:
    """Records of one time and id in two dyads, read in the other order than their dyads sort."""
    path = folder / "ties.jsonl"
    records = [
        event(f"e{at}", at * 6, cameo_code="195", source=source, target=target)
        for at in range(12)
        for source, target in (("IRN", "PAK"), ("CHN", "USA"))
    ]
    path.write_text("".join(record.model_dump_json() + "\n" for record in records))
    return [path], ReaderOptions()


def input_breaks_off(folder: Path) -> tuple[list[Path], ReaderOptions]:
    """A zipped export, over a megabyte, whose member fails its CRC once read, with bad rows of
    dyads of both parts and of none before the break."""
    rows = [gdelt_row(7_000 + at, 1 + at % 28, (("IRQ", "SYR")[at % 2], "USA")) for at in range(8_000)]
    rows[4] = gdelt_row(7_004, 5, ("IRQ", "USA"), goldstein="bad")
    rows[5] = gdelt_row(7_005, 6, ("SYR", "USA"), goldstein="bad")
    rows.insert(2, "too\tfew")
    path = folder / "broken.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("g.export.CSV", "\n".join(rows) + "\n")
    data = bytearray(path.read_bytes())
    data[data.index(b"https://news.example/14999") + 21] ^= 1
    path.write_bytes(bytes(data))
    return [path], ReaderOptions()


def a_file_given_twice(folder: Path) -> tuple[list[Path], ReaderOptions]:
    rows = [gdelt_row(9_000 + at, 1 + at % 28, (("IRQ", "SYR")[at % 2], "USA")) for at in range(40)]
    rows[4] = gdelt_row(9_004, 5, ("IRQ", "USA"), goldstein="bad")
    rows[9] = gdelt_row(9_009, 10, ("SYR", "USA"), goldstein="bad")
    path = folder / "twice.export.CSV"
    path.write_text("\n".join(rows) + "\n")
    return [path, path], ReaderOptions()


def native_bad_lines_of_dyads(folder: Path) -> tuple[list[Path], ReaderOptions]:
    """Native lines that name dyads of both parts but fail validation: reported once, in place."""
    path = write_native(folder / "n.jsonl")
    bad = [
        event(f"bad-{source}", 5, source=source, target=target)
        for source, target in (("IRN", "PAK"), ("CHN", "USA"))
    ]
    with path.open("a") as handle:
        for record in bad:
            handle.write(json.dumps({**record.model_dump(mode="json"), "event_time": "not a time"}) + "\n")
    return [path], ReaderOptions()


@pytest.mark.parametrize(
    "inputs",
    [
        one_id_two_dyads,
        one_row_id_two_dyads,
        ties_across_dyads,
        input_breaks_off,
        a_file_given_twice,
        native_bad_lines_of_dyads,
    ],
)
@pytest.mark.parametrize("order", PLAY_ORDERS)
def test_a_run_in_parts_is_the_run_in_one_process_at_the_edges(
    tmp_path: Path, order: PlayOrder, inputs: Callable[[Path], tuple[list[Path], ReaderOptions]]
) -> None:
    paths, options = inputs(tmp_path)
    options = replace(options, order=order)
    whole = run_backtest(paths, EngineConfig(), options=options)
    owners = {
        Part(0, 2).owns(dyad)
        for dyad in [*whole.dyads, *(bad.dyad for bad in whole.read.bad_rows if bad.dyad)]
    }
    assert owners == {True, False}, "the input spans both parts"
    assert summary(run_backtest(paths, EngineConfig(), options=options, jobs=2)) == summary(whole)


def test_each_part_reads_its_own_dyads_and_together_every_row(tmp_path: Path) -> None:
    path = write_gdelt(tmp_path / "g.export.CSV")

    def read(part: Part) -> tuple[ReadReport, list[str]]:
        report = ReadReport()
        played = read_in_play_order([path], options=ReaderOptions(part=part), report=report)
        return report, [record_id(item.record) for item in played]

    whole, every_record = read(Part())
    parts = [read(Part(index, 3)) for index in range(3)]
    assert all(records for _, records in parts)
    assert sorted(record for _, records in parts for record in records) == sorted(every_record)
    assert sum(report.rows for report, _ in parts) == whole.rows
    assert sum(report.bad_count for report, _ in parts) == whole.bad_count > 0
    assert [report.no_dyad > 0 for report, _ in parts] == [True, False, False]


def test_a_split_backtest_prints_what_one_process_prints(tmp_path: Path) -> None:
    paths = [str(write_gdelt(tmp_path / "g.export.CSV")), str(write_native(tmp_path / "n.jsonl"))]
    labels = tmp_path / "arm.labels.yaml"
    labels.write_text(
        "name: Nagorno-Karabakh 2020\ndyad: ARM-AZE\ncovers: {from: 2020-08-01, to: 2020-12-28}\n"
        "onset: 2020-09-27\npeak: 2020-10-10\nresolution: 2020-11-10\n"
        "expect: {escalation: true, warning: true, de_escalation: true}\n"
    )

    def run(*flags: str) -> tuple[list[dict[str, Any]], str]:
        done = subprocess.run(
            [str(CRISISMON), "backtest", *paths, "--labels", str(labels), *flags],
            capture_output=True,
            text=True,
            check=True,
        )
        alerts = [json.loads(line) for line in done.stdout.splitlines()] if "--json" in flags else []
        for alert in alerts:
            del alert["emitted_at"]  # the clock's
        return alerts or [{"stdout": done.stdout}], re.sub(r"ahead of \S+", "ahead of (now)", done.stderr)

    assert run("--json", "--jobs", "2") == run("--json", "--jobs", "1")
    assert run("--jobs", "2") == run("--jobs", "1")


def test_by_default_a_backtest_runs_in_a_process_per_cpu_up_to_eight() -> None:
    assert Settings().backtest_processes() == min(usable_cpus(), DEFAULT_MAX_JOBS)
    assert Settings(backtest_jobs=12).backtest_processes() == 12


@pytest.mark.parametrize(
    ("cpu_max", "cpus"), [("max 100000\n", 64), ("150000 100000\n", 2), ("50000 100000", 1), ("garbled", 64)]
)
def test_the_cpus_a_backtest_counts_are_those_its_cgroup_quota_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, cpus: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)))
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert usable_cpus(tmp_path / "cpu.max") == cpus
    assert usable_cpus(tmp_path / "none") == 64


@pytest.mark.parametrize("jobs", ["0", "many"])
def test_a_bad_jobs_count_is_one_line_and_exit_2(tmp_path: Path, jobs: str) -> None:
    done = subprocess.run(
        [str(CRISISMON), "backtest", str(write_native(tmp_path / "n.jsonl")), "--jobs", jobs],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "--jobs" in done.stderr


def _fails_in_part_one(part: Part) -> int:
    if part.index == 1:
        raise ValueError("part one fails")
    return part.index


class TwoArguments(Exception):
    """An exception whose pickle cannot be loaded: its arguments are not its constructor's."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} in {where}")


def _fails_unpicklably_in_part_one(part: Part) -> int:
    if part.index == 1:
        raise TwoArguments("a failure", "part one")
    return part.index


def _dies_in_part_one(part: Part) -> int:
    if part.index == 1:
        os._exit(9)
    return part.index


def test_a_part_that_fails_fails_the_run(tmp_path: Path) -> None:
    folders = [tmp_path / name for name in ("fine", "fails", "dies", "unpicklable")]
    for folder in folders:
        folder.mkdir()
    assert in_parts(3, folders[0], lambda part: part.index * 10) == [0, 10, 20]
    with pytest.raises(ValueError, match="part one fails") as raised:
        in_parts(2, folders[1], _fails_in_part_one)
    assert any("in part 1 of the backtest" in note for note in raised.value.__notes__)
    with pytest.raises(PartFailed, match=r"part 1 of the backtest ended without a result \(exit code 9\)"):
        in_parts(2, folders[2], _dies_in_part_one)
    with pytest.raises(PartFailed, match="TwoArguments: a failure in part one") as unpicklable:
        in_parts(2, folders[3], _fails_unpicklably_in_part_one)
    assert any("in part 1 of the backtest" in note for note in unpicklable.value.__notes__)


def _waits_in_every_part(part: Part) -> int:
    """Each part writes where it runs, then waits far longer than any test."""
    folder = Path(os.environ["PARTS_TEST_FOLDER"])
    (folder / f"part-{part.index}.pid").write_text(str(os.getpid()))
    time.sleep(WAIT_BOUND_SECONDS * 4)
    return part.index


def _ended(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (as in a container whose first process reaps none)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_part_ends_with_the_process_that_forked_it_even_killed(tmp_path: Path) -> None:
    script = (
        "from pathlib import Path\n"
        "from services.backtest.parts import in_parts\n"
        "from tests.test_backtest_parts import _waits_in_every_part\n"
        "in_parts(3, Path('.'), _waits_in_every_part)\n"
    )
    env = {**os.environ, "PARTS_TEST_FOLDER": str(tmp_path)}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=Path(__file__).parent.parent)
    try:
        pids = [
            int(
                eventually(
                    partial(_text_of, tmp_path / f"part-{index}.pid"), WAIT_BOUND_SECONDS, f"part {index}"
                )
            )
            for index in (1, 2)
        ]
        parent.kill()
        parent.wait(WAIT_BOUND_SECONDS)
        eventually(
            lambda: all(map(_ended, pids)), WAIT_BOUND_SECONDS, "the parts to end with their killed parent"
        )
    finally:
        parent.kill()


def many_events(path: Path, copies: int) -> Path:
    """The synthetic events, each copied under new ids: a run that lasts some seconds."""
    lines = write_events(path, 1_000).read_text().splitlines()
    with path.open("w") as handle:
        for copy in range(copies):
            handle.write("".join(line.replace('"syn-', f'"c{copy}-', 1) + "\n" for line in lines))
    return path


@pytest.mark.parametrize("stop", ["terminated", "interrupted"])
def test_a_stopped_backtest_ends_its_parts_and_leaves_no_files(tmp_path: Path, stop: str) -> None:
    """SIGTERM to the command (`timeout`, a scheduler), or Ctrl-C to its process group."""
    events, temporary = many_events(tmp_path / "events.jsonl", 100), tmp_path / "tmp"
    temporary.mkdir()
    run = subprocess.Popen(
        [str(CRISISMON), "backtest", str(events), "--json", "--jobs", "3"],
        env={**os.environ, "TMPDIR": str(temporary)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=partial(signal.signal, signal.SIGINT, signal.SIG_DFL),  # as a shell starts it
    )
    try:
        eventually(lambda: any(temporary.glob("crisismon-parts-*")), WAIT_BOUND_SECONDS, "the parts folder")
        parts = eventually(
            lambda: len(children_of(run.pid)) == 2 and children_of(run.pid), WAIT_BOUND_SECONDS, "two parts"
        )
        if stop == "terminated":
            run.terminate()
        else:
            os.killpg(run.pid, signal.SIGINT)
        _, errors = run.communicate(timeout=WAIT_BOUND_SECONDS)
    finally:
        run.kill()
    assert run.returncode == 2, (
        f"exit code {run.returncode} (0: it ended before it was stopped): {errors[-500:]}"
    )
    assert errors.strip().splitlines()[-1] == "crisismon: error: aborted" and "Traceback" not in errors
    assert all(map(_ended, parts))
    assert list(temporary.iterdir()) == []


def test_the_folder_of_a_backtest_killed_outright_goes_with_the_next_run(tmp_path: Path) -> None:
    """SIGKILL (or the out-of-memory killer) leaves a run no chance to remove its parts' folder,
    which may hold gigabytes: the next run split in parts removes it, and leaves alone the
    folder of a run still running."""
    events, temporary = many_events(tmp_path / "events.jsonl", 100), tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "TMPDIR": str(temporary)}
    killed = subprocess.Popen(
        [str(CRISISMON), "backtest", str(events), "--json", "--jobs", "3"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        (left,) = eventually(
            lambda: list(temporary.glob("crisismon-parts-*")), WAIT_BOUND_SECONDS, "its folder"
        )
        eventually(lambda: len(children_of(killed.pid)) == 2, WAIT_BOUND_SECONDS, "two parts")
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=WAIT_BOUND_SECONDS)
    finally:
        killed.kill()
    assert left.is_dir()
    running = temporary / f"crisismon-parts-{os.getpid()}-running"
    running.mkdir()
    small = write_events(tmp_path / "small.jsonl", 100)
    subprocess.run(
        [str(CRISISMON), "backtest", str(small), "--json", "--jobs", "2"],
        env=environment,
        capture_output=True,
        check=True,
        timeout=WAIT_BOUND_SECONDS,
    )
    assert list(temporary.iterdir()) == [running]
