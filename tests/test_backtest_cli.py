"""`crisismon backtest` end to end, through the installed command, on the article's log."""

import json
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
import yaml

from schemas.outputs import Alert, Level
from tests.gdelt_samples import broken_gdelt2, unseen_crisis_lines

ROOT = Path(__file__).parent.parent
ARTICLE_LOG = ROOT / "replay" / "data" / "pakistan-iran-2024.jsonl"
ARTICLE_LABELS = ROOT / "replay" / "data" / "crises" / "pakistan-iran-2024.labels.yaml"
CRISISMON = Path(sys.executable).parent / "crisismon"


def crisismon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("CRISISMON_")}
    return subprocess.run(
        [str(CRISISMON), *args], capture_output=True, text=True, env={**clean_env, **(env or {})}, timeout=120
    )


@pytest.fixture(scope="module")
def article_alerts() -> list[Alert]:
    run = crisismon("backtest", str(ARTICLE_LOG), "--json")
    assert run.returncode == 0, run.stderr
    return [Alert.model_validate_json(line) for line in run.stdout.splitlines()]


def test_json_output_is_only_alert_lines(article_alerts: list[Alert]) -> None:
    assert article_alerts
    assert all(alert.emitted_at is not None for alert in article_alerts)


def test_the_article_meets_the_contract(article_alerts: list[Alert]) -> None:
    irn_pak = [a for a in article_alerts if a.dyad == "IRN-PAK"]
    escalations = [a for a in irn_pak if a.kind == "escalation"]
    de_escalations = [a for a in irn_pak if a.kind == "de-escalation"]
    assert all(a.event_time.date() >= date(2024, 1, 16) for a in escalations)
    assert any(a.event_time.date() == date(2024, 1, 16) for a in escalations)
    assert any(
        a.level.rank >= Level.WARNING.rank and a.event_time.date() <= date(2024, 1, 18) for a in escalations
    )
    assert all(a.event_time.date() >= date(2024, 1, 18) for a in de_escalations)
    assert any(date(2024, 1, 18) <= a.event_time.date() <= date(2024, 1, 31) for a in de_escalations)


def test_golden_timeline_of_the_article(article_alerts: list[Alert]) -> None:
    """The article's alerts, pinned: a change here is a change of behaviour, to be explained."""
    assert [
        (
            a.dyad,
            a.event_time.date().isoformat(),
            a.kind,
            a.previous_level,
            a.level,
            a.reason_code,
            a.triggered_by,
        )
        for a in article_alerts
    ] == [
        ("IRN-PAK", "2024-01-16", "escalation", "normal", "watch", "level-rise", "pkir24-005"),
        ("IRN-PAK", "2024-01-17", "escalation", "watch", "warning", "level-rise", "pkir24-007"),
        ("IRN-PAK", "2024-01-26", "de-escalation", "warning", "watch", "crisis-resolved", "pkir24-024"),
    ]
    assert article_alerts[0].contributors[0].event_id == "pkir24-005"


def test_alert_ids_are_the_same_run_after_run(article_alerts: list[Alert]) -> None:
    again = crisismon("backtest", str(ARTICLE_LOG), "--json")
    assert [json.loads(line)["alert_id"] for line in again.stdout.splitlines()] == [
        a.alert_id for a in article_alerts
    ]


def test_human_output_is_a_timeline_per_dyad() -> None:
    run = crisismon("backtest", str(ARTICLE_LOG))
    assert run.returncode == 0
    assert "IRN-PAK: 17 records, peak level warning, 3 alerts" in run.stdout
    assert "▲ ESCALATION normal → watch" in run.stdout
    assert "no-dyad 3" in run.stdout


def test_a_missing_file_is_one_line_and_exit_2() -> None:
    run = crisismon("backtest", "missing.jsonl")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "missing.jsonl" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("backtest",),
        ("backtest", "x.jsonl", "--format", "csv"),
        ("backtest", "--nope", "x"),
        ("nosuchcommand",),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    run = crisismon(*args)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("crisismon: error:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'half_life: !!python/object/apply:os.system ["touch {pwned}"]\n',
            "could not determine a constructor",
        ),
        ("watch_threshold: [1,\n", "not valid YAML"),
        ("\udcff", "utf-8"),
        ("- [watch_threshold, 12]\n", "expected a mapping of settings"),
        (1048577, "over 1048576 bytes"),  # the size of a sparse file, refused unread
        (None, "not a regular file"),  # /dev/zero: endless, refused unopened
    ],
)
def test_a_bad_settings_file_is_one_line_and_exit_2(
    tmp_path: Path, content: str | int | None, message: str
) -> None:
    config = tmp_path / "settings.yaml"
    if content is None:
        config = Path("/dev/zero")
    elif isinstance(content, int):
        with config.open("wb") as sparse:
            sparse.truncate(content)
    else:
        config.write_bytes(content.format(pwned=tmp_path / "pwned").encode("utf-8", "surrogateescape"))
    run = crisismon("backtest", str(ARTICLE_LOG), "--config", str(config))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr and not (tmp_path / "pwned").exists()


def test_dates_out_of_range_or_ahead_of_the_clock_are_bad_rows(tmp_path: Path) -> None:
    strike = json.loads(ARTICLE_LOG.read_text().splitlines()[4])
    rows = [
        {**strike, "event_id": f"probe-{number}", "event_time": moment}
        for number, moment in enumerate(
            ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "2199-01-01T00:00:00Z"], start=1
        )
    ]
    probes = tmp_path / "probes.jsonl"
    probes.write_text("".join(json.dumps(row) + "\n" for row in rows) + ARTICLE_LOG.read_text())
    run = crisismon("backtest", str(probes), "--json")
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "3 bad rows skipped" in run.stderr
    assert f"{probes}:3: skipped: event_time: 2199-01-01T00:00:00Z is more than 1d ahead of" in run.stderr
    first = Alert.model_validate_json(run.stdout.splitlines()[0])
    assert first.triggered_by == "pkir24-005"


def test_a_byte_order_mark_costs_no_line(tmp_path: Path) -> None:
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + ARTICLE_LOG.read_bytes())
    run = crisismon("backtest", str(marked), "--json")
    assert run.returncode == 0 and run.stderr == ""


def test_bad_settings_are_one_line_and_exit_2() -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), env={"CRISISMON_WATCH_THRESHOLD": "high"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "watch_threshold" in run.stderr


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    good = ARTICLE_LOG.read_text().splitlines()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([good[4], "not json", '{"event_id": "x"}', good[5]]) + "\n")
    run = crisismon("backtest", str(mixed), "--json")
    assert run.returncode == 0
    assert f"{mixed}:2: skipped:" in run.stderr and f"{mixed}:3: skipped:" in run.stderr
    assert "2 bad rows skipped" in run.stderr
    assert len(run.stdout.splitlines()) == 1  # the strike still raises its alert


def test_settings_come_from_a_file_and_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "strict.yaml"
    config.write_text("watch_threshold: 12\nwarning_threshold: 20\n")
    from_file = crisismon("backtest", str(ARTICLE_LOG), "--json", "--config", str(config))
    from_env = crisismon(
        "backtest",
        str(ARTICLE_LOG),
        "--json",
        env={"CRISISMON_WATCH_THRESHOLD": "12", "CRISISMON_WARNING_THRESHOLD": "20"},
    )
    first = [Alert.model_validate_json(line) for line in from_file.stdout.splitlines()]
    assert first[0].triggered_by == "pkir24-007"  # the strike alone no longer reaches watch
    assert [a.alert_id for a in first] == [
        json.loads(line)["alert_id"] for line in from_env.stdout.splitlines()
    ]


def test_an_unknown_setting_in_a_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("watch_treshold = 12\n")
    run = crisismon("backtest", str(ARTICLE_LOG), "--config", str(config))
    assert run.returncode == 2 and "watch_treshold" in run.stderr


def test_report_writes_a_page_and_a_chart_per_dyad(tmp_path: Path) -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), "--report", str(tmp_path / "report"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "report" / "index.html").exists()
    assert (tmp_path / "report" / "IRN-PAK.png").read_bytes().startswith(b"\x89PNG")


def test_schemas_export_check_passes_on_the_committed_files() -> None:
    run = crisismon("schemas", "export", "--check")
    assert run.returncode == 0, run.stderr


UNSEEN_LABELS = """
- name: "Armenia–Azerbaijan, autumn 2020 (synthetic GDELT rows)"
  dyad: ARM-AZE
  covers: {from: 2020-08-01, to: 2020-12-28}
  onset: 2020-09-27
  peak: 2020-10-01
  resolution: 2020-11-10
  expect: {escalation: true, warning: true, de_escalation: true}
  calm: [{from: 2020-08-01, to: 2020-09-20}]
- name: "Norway–Sweden, calm (synthetic GDELT rows with coding noise)"
  dyad: NOR-SWE
  covers: {from: 2020-08-01, to: 2020-12-28}
  expect: {escalation: false, warning: false, de_escalation: false}
  calm: [{from: 2020-08-01, to: 2020-12-28}]
"""


@pytest.fixture(scope="module")
def unseen_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gdelt") / "20201231.export.CSV"
    path.write_text("\n".join(unseen_crisis_lines()) + "\n", encoding="utf-8")
    return path


def split_labels(tmp_path: Path) -> Path:
    """The two crises as two labels files in one directory (--labels takes either)."""
    for number, crisis in enumerate(yaml.safe_load(UNSEEN_LABELS)):
        (tmp_path / f"{number}.labels.yaml").write_text(yaml.safe_dump(crisis))
    return tmp_path


def test_a_gdelt2_export_of_an_unseen_crisis(unseen_export: Path, tmp_path: Path) -> None:
    run = crisismon("backtest", "--format", "gdelt", str(unseen_export), "--json")
    assert run.returncode == 0, run.stderr
    alerts = [Alert.model_validate_json(line) for line in run.stdout.splitlines()]
    assert {a.dyad for a in alerts} == {"ARM-AZE"}  # nothing on the calm, noisy NOR-SWE
    rises = [a for a in alerts if a.kind == "escalation"]
    falls = [a for a in alerts if a.kind == "de-escalation"]
    assert rises[0].event_time.date() == date(2020, 9, 27)
    assert max(a.level.rank for a in rises) >= Level.WARNING.rank
    assert all(a.event_time.date() >= date(2020, 11, 10) for a in falls)
    assert date(2020, 11, 10) <= falls[0].event_time.date() <= date(2020, 11, 17)

    archive = tmp_path / "20201231.export.CSV.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(unseen_export, unseen_export.name)
    zipped_run = crisismon("backtest", str(archive), "--json")  # auto: a zip of a GDELT export
    assert [json.loads(line)["alert_id"] for line in zipped_run.stdout.splitlines()] == [
        a.alert_id for a in alerts
    ]


def test_broken_gdelt_rows_are_reported_and_counted_and_the_run_exits_0(tmp_path: Path) -> None:
    path = broken_gdelt2(tmp_path / "broken.export.CSV")
    run = crisismon("backtest", str(path), "--json")
    assert run.returncode == 0, run.stderr
    assert f"{path}:2: skipped: 3 tab-separated columns" in run.stderr
    assert f"{path}:3: skipped: SQLDATE: not a YYYYMMDD date" in run.stderr
    assert "6 bad rows skipped, of" in run.stderr
    assert all(json.loads(line)["dyad"] == "RUS-USA" for line in run.stdout.splitlines())


def test_labels_score_the_engine_beside_the_baselines(unseen_export: Path, tmp_path: Path) -> None:
    labels = split_labels(tmp_path)
    run = crisismon("backtest", str(unseen_export), "--labels", str(labels), "--report", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    assert "Over the library:" in run.stdout and "yesterday's level" in run.stdout
    totals = {
        t["detector"]: t for t in json.loads((tmp_path / "r" / "scores.json").read_text())["aggregates"]
    }
    engine, goldstein, yesterday = totals["engine"], totals["Goldstein ≤ -9"], totals["yesterday's level"]
    assert engine["onsets"] == [1, 1] and engine["median_onset_delay_days"] == 0.0  # on its day
    assert engine["de_escalations"] == [1, 1] and engine["false_alarms"] == 0
    assert engine["expectations_met"] == [2, 2]
    assert goldstein["false_alarms"] > 0  # the naive baseline fires on NOR-SWE's noise
    assert yesterday["median_onset_delay_days"] == 1.0  # a day late, by construction


def test_sweep_shows_a_table_and_the_report_a_chart(unseen_export: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    run = crisismon(
        "backtest",
        str(unseen_export),
        "--labels",
        str(split_labels(tmp_path)),
        "--sweep",
        "half_life=1d,3d",
        "--sweep",
        "watch=4,6,20",
        "--report",
        str(report),
    )
    assert run.returncode == 0, run.stderr
    table = run.stdout.split("Sweep")[1].splitlines()[3:]
    assert len(table) == 6
    assert sum("thresholds must rise" in line for line in table) == 2  # watch 20 > warning 15
    assert (report / "sweep.png").read_bytes().startswith(b"\x89PNG")
    page = (report / "index.html").read_text()
    assert "Scores against the labels" in page and "Sweep" in page
    assert len(json.loads((report / "scores.json").read_text())["sweep"]) == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sweep", "half_life=1d"), "give --labels too"),
        (("--labels", "missing.labels.yaml"), "missing.labels.yaml"),
        (("--labels", str(ARTICLE_LABELS), "--sweep", "speed=1"), "choose among"),
        (("--labels", str(ARTICLE_LOG)), "pakistan-iran-2024.jsonl"),
        (("--labels", str(ARTICLE_LABELS), "--sweep", "watch=,,,"), "a value is empty"),
        (("--report", "/proc/x"), "--report /proc/x: cannot create it"),
        (("--report", str(ARTICLE_LOG)), "exists and is not a directory"),
    ],
)
def test_label_and_sweep_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), *args)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr


REAL = ROOT / "replay" / "data" / "real"
QUARTER = REAL / "icews-daily-2018q4.zip"


def budget_rows(text: str) -> dict[str, list[str]]:
    """The alert budget's table from the command's output: name → [count, per 30 d]."""
    lines = text.split("Alert budget over every dyad")[1].splitlines()[3:]
    table = lines[: lines.index("")] if "" in lines else lines
    return {line.rsplit(None, 2)[0]: line.rsplit(None, 2)[1:] for line in table}


def test_the_summary_ends_with_the_alert_budget(article_alerts: list[Alert]) -> None:
    run = crisismon("backtest", str(ARTICLE_LOG))
    assert run.returncode == 0, run.stderr
    assert "per 30 days of event time (2023-12-15 12:00 → 2024-01-29 12:00 UTC: 45.0 days)" in run.stdout
    rows = budget_rows(run.stdout)
    count = len(article_alerts)
    assert rows["all"] == [str(count), f"{count * 30 / 45:.2f}"]
    rises = [a for a in article_alerts if a.level.rank > a.previous_level.rank]
    assert rows["escalation"][0] == str(sum(a.kind == "escalation" for a in article_alerts))
    assert rows["rises to warning or higher"][0] == str(
        sum(a.level.rank >= Level.WARNING.rank for a in rises)
    )
    top = run.stdout.split("Dyads that raise most alerts (top 10):")[1].splitlines()
    assert top[3].split()[:2] == ["IRN-PAK", str(count)]


def test_with_json_the_budget_goes_to_stderr_with_the_scores() -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), "--json", "--labels", str(ARTICLE_LABELS))
    assert run.returncode == 0, run.stderr
    assert [Alert.model_validate_json(line).dyad for line in run.stdout.splitlines()]  # alerts only
    assert "Alert budget" in run.stderr and "Over the library:" in run.stderr
    assert "Alert budget" not in run.stdout
    quiet = crisismon("backtest", str(ARTICLE_LOG), "--json")  # no labels: stderr stays for problems
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_labels_whose_events_are_not_given_are_noted() -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), "--labels", str(ROOT / "replay" / "data" / "crises"))
    assert run.returncode == 0, run.stderr
    notes = [line for line in run.stderr.splitlines() if "note:" in line]
    assert len([n for n in notes if "is not among the inputs" in n]) == 3  # all but the article's
    assert any("no record of RUS-TUR in the inputs" in n for n in notes)
    assert not any("pakistan-iran-2024.labels.yaml" in n for n in notes)


def test_the_real_quarter_is_scored_against_its_labels() -> None:
    """The real ICEWS quarter (some 8 s): four labels files share one events file; the scores
    and the budget come out; nothing is pinned, since the engine's alerts on it still move."""
    run = crisismon("backtest", str(QUARTER), "--labels", str(REAL))
    assert run.returncode == 0, run.stderr
    assert "note:" not in run.stderr
    scores = run.stdout.split("Scores per labelled crisis")[1].split("Over the library:")[0]
    assert {"RUS-UKR", "GBR-USA", "DEU-FRA", "CAN-USA"} <= set(scores.split())
    assert scores.count(" engine ") == 4
    rows = budget_rows(run.stdout)
    assert int(rows["all"][0]) == sum(int(rows[kind][0]) for kind in ("escalation", "de-escalation")) > 0
    assert "2018-09-17 00:00 → 2019-01-01 00:00 UTC: 106.0 days" in run.stdout
    assert "dyads without alerts are not listed)" in run.stdout  # a large run lists alerting dyads


def test_a_sweep_over_a_new_setting_shows_its_budget(unseen_export: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    labels = str(split_labels(tmp_path))
    args = ("backtest", str(unseen_export), "--labels", labels, "--report", str(report))
    run = crisismon(*args, "--sweep", "sigmas=2,4", "--sweep", "dwell=1d,3d,x")
    assert run.returncode == 0, run.stderr
    header, _, *table = run.stdout.split("Sweep (")[1].splitlines()[1:]
    assert header.split()[:3] == ["sigmas", "dwell", "onsets"] and "alerts/30 d" in header
    assert len(table) == 6 and sum("not run" in line for line in table) == 2  # dwell x is no duration
    document = json.loads((report / "scores.json").read_text())
    assert [p["settings"] for p in document["sweep"]][:2] == [
        {"sigmas": "2", "dwell": "1d"},
        {"sigmas": "2", "dwell": "3d"},
    ]
    ran = [p for p in document["sweep"] if p["engine"]]
    assert len(ran) == 4 and all(p["budget"]["alerts"] >= 1 for p in ran)
    assert document["budget"]["top_dyads"][0]["dyad"] == "ARM-AZE"
    assert "alerts/30 d" in (report / "index.html").read_text()


def test_order_published_plays_file_by_file_in_name_order(tmp_path: Path) -> None:
    """The article cut in two, its second half in the file whose name comes first: played as
    published, the first half arrives late, and the alerts are those a follower would have
    seen, not those of the whole story at once."""
    lines = ARTICLE_LOG.read_text().splitlines()
    (tmp_path / "1-later.jsonl").write_text("\n".join(lines[13:]) + "\n")
    (tmp_path / "2-earlier.jsonl").write_text("\n".join(lines[:13]) + "\n")
    files = [str(path) for path in sorted(tmp_path.glob("*.jsonl"))]

    def alert_ids(*args: str) -> list[str]:
        # The first half comes up to six weeks late: within a lateness that long, it all counts.
        run = crisismon("backtest", "--json", *args, *files, env={"CRISISMON_LATENESS": "60d"})
        assert run.returncode == 0, run.stderr
        return [json.loads(line)["alert_id"] for line in run.stdout.splitlines()]

    as_published, whole = alert_ids("--order", "published"), alert_ids()
    assert whole == alert_ids("--order", "event-time")
    assert len(as_published) > len(whole) and set(whole) <= set(as_published)  # late news, none lost
