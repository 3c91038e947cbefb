"""What a backtest holds stays bounded: alerts past what is held in memory go to disk and come
back the same (the archive itself, and the timeline, scores and report of a run whose alerts
were spilled), a large run lets go of the records it will not list, builds no index-update
model it does not print, and --json writes alerts as they come."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replay.ordering import read_in_play_order
from replay.readers import Located
from schemas.outputs import Alert, IndexUpdate
from services.backtest import archive, run
from services.backtest.archive import AlertArchive
from services.backtest.labels import load_labels
from services.backtest.report import scores_json, write_report
from services.backtest.run import BacktestResult, run_backtest
from services.backtest.scoring import evaluate
from services.backtest.timeline import render_timeline
from services.core import EngineConfig, engine
from services.core.timeutil import to_seconds
from tests.test_backtest_cli import ARTICLE_LOG, crisismon
from tests.test_crisis_library import LABELS, library_files


def library_run() -> BacktestResult:
    return run_backtest([*library_files(), ARTICLE_LOG], EngineConfig(), watched=library_dyads())


def library_dyads() -> set[str]:
    return {crisis.dyad for crisis in load_labels(LABELS)}


@pytest.fixture(scope="module")
def alerts() -> list[Alert]:
    every = library_run().alerts
    assert len({alert.dyad for alert in every}) >= 3
    return every


def test_spilled_alerts_come_back_in_order_and_by_dyad(
    alerts: list[Alert], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "IN_MEMORY", 3)
    kept = AlertArchive()
    for count, alert in enumerate(alerts, start=1):
        kept.add(alert)
        assert kept.of(alert.dyad) == [
            a for a in alerts[:count] if a.dyad == alert.dyad
        ]  # reads between writes
    assert list(kept) == alerts and len(kept) == len(alerts)
    assert not {id(alert) for alert in kept} & {id(alert) for alert in alerts}  # read back from the file
    for dyad in {alert.dyad for alert in alerts}:
        assert kept.count(dyad) == len(kept.of(dyad)) == sum(alert.dyad == dyad for alert in alerts)
    assert kept.of("ARG-BRA") == [] and kept.count("ARG-BRA") == 0


def test_a_run_whose_alerts_were_spilled_reads_and_reports_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crises = load_labels(LABELS)

    def outputs(name: str) -> tuple[list[str], str, str]:
        result = library_run()
        evaluation = evaluate(result, crises)
        page = write_report(result, tmp_path / name, crises, evaluation).read_text(encoding="utf-8")
        return list(render_timeline(result)), scores_json(evaluation, None), page

    held = outputs("held")
    monkeypatch.setattr(archive, "IN_MEMORY", 1)
    assert outputs("spilled") == held
    spilled = library_run().alert_archive
    assert next(iter(spilled)) is not next(iter(spilled))  # read back from the file each time


def test_a_large_run_lets_go_of_the_records_it_will_not_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "LISTED_RECORDS", 3)
    result = library_run()
    assert not result.complete_listing and result.listed == 3
    assert not [trace.steps for trace in result.dyads.values() if trace.steps]
    text = "\n".join(render_timeline(result))
    assert all(alert.alert_id[:12] in text for alert in result.alerts)


def test_a_run_draws_its_curves_from_the_cores_figures_without_building_index_updates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[IndexUpdate] = []

    def counted(**fields: Any) -> IndexUpdate:
        built.append(IndexUpdate(**fields))
        return built[-1]

    monkeypatch.setattr(engine, "IndexUpdate", counted)  # what `IndexReading.update` builds
    result = library_run()
    assert built == [], "the run built index-update models it never prints"
    steps = [step for trace in result.dyads.values() for step in trace.steps if step.outcome.index]
    assert steps, "the library's records are listed"
    for step in steps:  # what a timeline or the worker asks for is the same figures, as the model
        reading, update = step.outcome.index, step.outcome.index_update
        assert reading is not None and update is not None
        assert (to_seconds(update.as_of), update.escalation_index, update.level) == (
            reading.as_of,
            reading.escalation_index,
            reading.level,
        )
    assert len(built) == len(steps)


def test_json_alerts_are_written_as_they_come_and_are_the_runs(tmp_path: Path) -> None:
    run = crisismon("backtest", str(ARTICLE_LOG), "--json")
    assert run.returncode == 0, run.stderr
    written = [json.loads(line) for line in run.stdout.splitlines()]
    assert all(alert.pop("emitted_at") for alert in written)
    expected = [
        alert.model_dump(mode="json", exclude={"emitted_at"})
        for alert in run_backtest([ARTICLE_LOG], EngineConfig()).alerts
    ]
    assert written == expected


def test_full_collections_are_rarer_while_a_run_plays_and_as_before_after_it() -> None:
    """The run's long-lived heap is not walked every ~70,000 allocations, and the process's
    own setting is back once the run ends (a test run, a sweep: many runs in one process)."""
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    def records() -> Iterator[Located]:
        for record in library_records():
            seen.append(gc.get_threshold())
            yield record

    played = list(run.frozen_as_played(records()))
    assert played and len(seen) == len(played)
    young, middle, full = before
    assert set(seen) == {(young, middle, full * run.FULL_COLLECTIONS_RARER)}
    assert run.FULL_COLLECTIONS_RARER >= 100
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def library_records() -> Iterator[Located]:
    return read_in_play_order(library_files())
