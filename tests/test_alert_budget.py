"""The alert budget (alerts per 30 days of event time over every dyad), the real ICEWS quarter's
labels, and sweeps over the engine's newer settings."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from replay.ordering import read_in_play_order
from schemas.events import CrisisEvent
from schemas.outputs import Alert, AlertKind, Level
from services.backtest.budget import TOP_DYADS, alert_budget, run_budget
from services.backtest.labels import events_path, load_labelled, unread_events
from services.backtest.report import scores_json
from services.backtest.run import run_backtest
from services.backtest.scoring import evaluate
from services.backtest.sweep import SWEEP_NAMES, Axis, grid, parse_sweep, run_sweep
from services.backtest.tables import render_budget, render_sweep
from services.core import EngineConfig
from tests.builders import event

ROOT = Path(__file__).parent.parent
REAL = ROOT / "replay" / "data" / "real"
QUARTER = REAL / "icews-daily-2018q4.zip"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
STAMP = EngineConfig().stamp_fields


def alert(dyad: str, day: float, previous: str, level: str, kind: AlertKind | None = None) -> Alert:
    rose = Level(level).rank > Level(previous).rank
    return Alert(
        alert_id=hashlib.md5(f"{dyad}{day}{previous}{level}".encode()).hexdigest(),
        dyad=dyad,
        kind=kind or ("escalation" if rose else "de-escalation"),
        level=Level(level),
        previous_level=Level(previous),
        reason="test",
        reason_code="correction" if kind else ("level-rise" if rose else "level-fall"),
        event_time=T0 + timedelta(days=day),
        escalation_index=1.0,
        de_escalation_index=1.0,
        triggered_by="t-1",
        contributors=[],
        **STAMP,
    )


HAND_BUILT = [
    alert("IRN-PAK", 1, "normal", "watch"),
    alert("IRN-PAK", 2, "watch", "warning"),
    alert("IRN-PAK", 3, "warning", "critical"),
    alert("IRN-PAK", 5, "critical", "warning"),
    alert("CHN-IND", 6, "watch", "watch", kind="de-escalation"),  # cooperation overtakes: no rise
    alert("CHN-IND", 7, "normal", "warning", kind="escalation"),  # a correction upward: a rise
]


def test_the_budget_counts_every_alert_over_the_event_time_span() -> None:
    budget = alert_budget(HAND_BUILT, T0, T0 + timedelta(days=15))

    assert budget.span_days == 15.0
    assert budget.alerts == 6
    assert budget.per_30_days(budget.alerts) == 12.0  # 6 alerts x 30 / 15 days
    assert budget.by_kind == {"escalation": 4, "de-escalation": 2}
    assert budget.rises_to == {"watch": 1, "warning": 2, "critical": 1}
    assert budget.rises_to_warning_or_higher == 3
    assert budget.per_30_days(budget.rises_to_warning_or_higher) == 6.0
    assert [(d.dyad, d.alerts, d.rises) for d in budget.top_dyads] == [("IRN-PAK", 4, 3), ("CHN-IND", 2, 1)]


def test_the_top_dyads_are_the_ten_that_raise_most_ties_by_name() -> None:
    alerts = [
        alert(f"AA{chr(65 + n)}-USA", day, "normal", "watch")
        for n in reversed(range(12))
        for day in range(n % 3 + 1)
    ]
    budget = alert_budget(alerts, T0, T0 + timedelta(days=30))

    assert len(budget.top_dyads) == TOP_DYADS == 10
    counts = [d.alerts for d in budget.top_dyads]
    assert counts == sorted(counts, reverse=True) and counts[0] == 3
    threes = [d.dyad for d in budget.top_dyads if d.alerts == 3]
    assert threes == sorted(threes) == ["AAC-USA", "AAF-USA", "AAI-USA", "AAL-USA"]
    assert budget.per_30_days(budget.alerts) == len(alerts)  # 30 days: rate is the count


def test_a_run_without_span_has_no_rate_and_says_so() -> None:
    budget = alert_budget(HAND_BUILT[:1], T0, T0)
    assert budget.span_days == 0 and budget.per_30_days(1) is None
    assert alert_budget([], None, None).per_30_days(0) is None
    lines = list(render_budget(budget))
    assert any(line.split()[:3] == ["all", "1", "—"] for line in lines)


def test_the_budget_text_and_json_carry_the_rates() -> None:
    budget = alert_budget(HAND_BUILT, T0, T0 + timedelta(days=15))
    text = "\n".join(render_budget(budget))
    assert "2024-01-01 00:00 → 2024-01-16 00:00 UTC: 15.0 days" in text
    rows = {line.split("  ")[0]: line.split()[-2:] for line in text.splitlines()}
    assert rows["all"] == ["6", "12.00"]
    assert rows["rises to warning or higher"] == ["3", "6.00"]
    assert rows["rises to critical"] == ["1", "2.00"]
    document = budget.as_json()
    assert document["alerts_per_30_days"] == 12.0
    assert document["rises_to"] == {
        "watch": {"count": 1, "per_30_days": 2.0},
        "warning": {"count": 2, "per_30_days": 4.0},
        "critical": {"count": 1, "per_30_days": 2.0},
    }
    assert document["top_dyads"][0] == {"dyad": "IRN-PAK", "alerts": 4, "rises": 3, "per_30_days": 8.0}


def write_events(path: Path, events: list[CrisisEvent]) -> Path:
    path.write_text("".join(e.model_dump_json() + "\n" for e in events), encoding="utf-8")
    return path


def test_a_runs_span_is_from_its_first_to_its_last_event_time(tmp_path: Path) -> None:
    events = [
        event("b-1", hours=0, cameo_code="042", source="CHN", target="USA"),  # first, quiet dyad
        event("b-2", hours=24 * 10, cameo_code="195"),  # a strike: IRN-PAK alerts
        event("b-3", hours=24 * 20, cameo_code="042", source="CHN", target="USA"),  # last
    ]
    result = run_backtest([write_events(tmp_path / "e.jsonl", events)], EngineConfig())
    budget = run_budget(result)

    assert (budget.first, budget.last, budget.span_days) == (events[0].event_time, events[2].event_time, 20.0)
    assert budget.alerts == len(result.alerts) >= 1
    assert {d.dyad for d in budget.top_dyads} == {"IRN-PAK"}
    assert budget.per_30_days(budget.alerts) == round(budget.alerts * 30 / 20, 3)


# The real quarter's labels.


def test_the_real_quarters_labels_load_and_name_the_file_beside_them() -> None:
    labelled = load_labelled([REAL])
    assert {crisis.dyad for _, crisis in labelled} >= {"RUS-UKR", "GBR-USA"}
    for path, crisis in labelled:
        assert events_path(path, crisis) == QUARTER.resolve() and QUARTER.is_file()
        assert (crisis.covers.start.isoformat(), crisis.covers.end.isoformat()) == (
            "2018-10-01",
            "2018-12-31",
        )
        assert crisis.notes.strip()
    kerch = next(c for _, c in labelled if c.dyad == "RUS-UKR")
    assert kerch.onset == date(2018, 11, 25) and kerch.resolution is None
    assert (kerch.expect.escalation, kerch.expect.warning, kerch.expect.de_escalation) == (True, True, False)
    assert kerch.calm and all(period.end < date(2018, 11, 25) for period in kerch.calm)
    calm = [c for _, c in labelled if c.onset is None]
    assert calm and all(not (c.expect.escalation or c.expect.warning or c.expect.de_escalation) for c in calm)
    assert all(c.calm_days == 92 for c in calm)  # the whole quarter
    assert unread_events(labelled, [QUARTER]) == []


def test_the_archive_is_the_one_its_sources_name() -> None:
    digest = hashlib.sha256(QUARTER.read_bytes()).hexdigest()
    assert digest in (REAL / "SOURCES.md").read_text(encoding="utf-8")


def test_a_labels_file_whose_events_are_not_given_is_noted(tmp_path: Path) -> None:
    labelled = load_labelled([REAL / "gbr-usa-calm-2018q4.labels.yaml"])
    (note,) = unread_events(labelled, [tmp_path / "other.jsonl"])
    assert "icews-daily-2018q4.zip is not among the inputs" in note and "GBR-USA" in note


def test_the_labels_fit_the_data() -> None:
    """Read (not played: the engine is not under test here): every labelled dyad has events in
    the quarter, and the Kerch onset stands out from the calm before it."""
    labelled = [crisis for _, crisis in load_labelled([REAL])]
    per_day: dict[str, dict[str, int]] = {crisis.dyad: {} for crisis in labelled}
    for item in read_in_play_order([QUARTER]):
        record = item.record
        if isinstance(record, CrisisEvent) and record.dyad in per_day:
            day = record.event_time.date().isoformat()
            per_day[record.dyad][day] = per_day[record.dyad].get(day, 0) + 1
    assert all(sum(days.values()) >= 50 for days in per_day.values()), per_day
    kerch = next(c for c in labelled if c.dyad == "RUS-UKR")
    (calm,) = kerch.calm
    days = per_day["RUS-UKR"]
    calm_counts = [n for day, n in days.items() if calm.start.isoformat() <= day <= calm.end.isoformat()]
    assert max(calm_counts) <= 10
    assert days["2018-11-26"] >= 3 * max(calm_counts)


# Sweeps over the newer settings.


def test_every_sweep_name_sets_an_engine_setting() -> None:
    assert set(SWEEP_NAMES.values()) <= set(EngineConfig.model_fields)
    assert {"non_state", "window", "lag", "sigmas", "min_events", "dwell", "memory"} <= set(SWEEP_NAMES)


def test_a_sweep_over_the_baseline_sets_what_it_names() -> None:
    axes = parse_sweep(["window=14d,28d lag=2d", "min_events=5", "non_state=0.5,2"])
    points = grid(EngineConfig(), axes)
    configs = [config for _, config in points if isinstance(config, EngineConfig)]
    refused = [(settings, reason) for settings, reason in points if isinstance(reason, str)]
    assert [c.baseline_window for c in configs] == [timedelta(days=14), timedelta(days=28)]
    assert {(c.baseline_lag, c.baseline_min_events, c.non_state_weight) for c in configs} == {
        (timedelta(days=2), 5, 0.5)
    }
    assert len(refused) == 2 and all("non_state_weight" in reason for _, reason in refused)


def test_a_sweep_row_carries_the_alert_budget(tmp_path: Path) -> None:
    events = [
        event("s-1", hours=0, cameo_code="042"),
        event("s-2", hours=24 * 5, cameo_code="195"),
        event("s-3", hours=24 * 6, cameo_code="195", source="PAK", target="IRN"),
        event("s-4", hours=24 * 30, cameo_code="042"),
    ]
    path = write_events(tmp_path / "e.jsonl", events)
    (labels,) = [
        c for _, c in load_labelled([ROOT / "replay" / "data" / "crises" / "pakistan-iran-2024.labels.yaml"])
    ]
    axes = [Axis("dwell", ("1d", "3d")), Axis("memory", ("30d",))]
    points = run_sweep([path], EngineConfig(), axes, [labels])

    assert [p.settings for p in points] == [
        {"dwell": "1d", "memory": "30d"},
        {"dwell": "3d", "memory": "30d"},
    ]
    for point in points:
        assert point.budget is not None and point.budget.span_days == 30.0
        assert point.budget.alerts == len(run_backtest([path], _config(point.settings)).alerts) >= 1
    lines = list(render_sweep(points))
    headers = lines[1].split()
    assert headers.index("alerts/30") == headers.index("calm") + 2  # beside the false alarms
    rows = [line.split() for line in lines[3:]]
    budgets = [p.budget for p in points if p.budget is not None]
    assert [row[-3] for row in rows] == [f"{b.per_30_days(b.alerts):.2f}" for b in budgets]
    document = json.loads(scores_json(evaluate(run_backtest([path], EngineConfig()), [labels]), points))
    assert document["sweep"][0]["budget"]["span_days"] == 30.0


def _config(settings: dict[str, str]) -> EngineConfig:
    return EngineConfig.model_validate({SWEEP_NAMES[name]: value for name, value in settings.items()})


@pytest.mark.parametrize("spec", ["sigmas=", "window=14d,", "memory"])
def test_a_bad_sweep_over_a_new_setting_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="expected NAME=V1,V2"):
        parse_sweep([spec])
