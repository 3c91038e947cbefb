"""`crisismon backtest` end to end, through the installed command, on the article's log."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from schemas.outputs import Alert, Level

ROOT = Path(__file__).parent.parent
ARTICLE_LOG = ROOT / "replay" / "data" / "pakistan-iran-2024.jsonl"
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
        (
            "IRN-PAK",
            "2024-01-22",
            "de-escalation",
            "warning",
            "warning",
            "cooperation-overtakes",
            "pkir24-022",
        ),
        ("IRN-PAK", "2024-01-26", "de-escalation", "warning", "watch", "level-fall", "pkir24-024"),
        ("IRN-PAK", "2024-01-29", "de-escalation", "watch", "normal", "level-fall", "pkir24-026"),
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
    assert "IRN-PAK: 17 records, peak level warning, 5 alerts" in run.stdout
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
