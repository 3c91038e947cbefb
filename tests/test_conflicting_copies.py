"""One event_id is one event: the first copy the engine holds stands, and a later copy that
tells other facts (time, dyad's roles, CAMEO code, Goldstein score) is refused with both
fingerprints: a dead letter live, a bad row in a backtest. A copy that tells the same facts in
other words (another source, quote or summary) is a duplicate, as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.actors import ActorRole
from schemas.events import CrisisEvent, Provenance
from services.backtest.run import run_backtest
from services.core import Engine, EngineConfig
from services.core.dyad import DyadState
from services.core.scoring import fingerprint
from tests.builders import event, fifth_version
from tests.fakes import a_worker

HELD = event("strike", 0, cameo_code="195")


@pytest.mark.parametrize(
    "copy",
    [
        event("strike", 5, cameo_code="195"),
        event("strike", 0, cameo_code="190"),
        event("strike", 0, cameo_code="195", goldstein=-5.0),
        event("strike", 0, cameo_code="195", roles=(ActorRole.NON_STATE, None)),
    ],
    ids=["another time", "another code", "another Goldstein score", "another role"],
)
def test_a_copy_with_other_facts_is_refused_and_the_first_stands(copy: CrisisEvent) -> None:
    engine = Engine()
    engine.process(HELD)
    before = engine.states["IRN-PAK"].snapshot()
    outcome = engine.process(copy)
    assert outcome.fate == "conflicting"
    assert outcome.index_update is None and outcome.alerts == () and outcome.repeats == ()
    assert outcome.refusal is not None
    assert fingerprint(HELD) in outcome.refusal and fingerprint(copy) in outcome.refusal
    assert engine.states["IRN-PAK"].snapshot() == before


def test_a_copy_in_other_words_is_a_duplicate() -> None:
    engine = Engine()
    engine.process(HELD)
    retold = HELD.model_copy(
        update={
            "summary": "told again",
            "provenance": Provenance(document="other", quote="another quote", coded_by="another"),
        }
    )
    assert fingerprint(retold) == fingerprint(HELD)
    assert engine.process(retold).fate == "duplicate"


def test_a_retold_time_in_another_zone_is_the_same_instant() -> None:
    moved = HELD.model_copy(update={"event_time": HELD.event_time.astimezone(tz=None)})
    assert fingerprint(moved) == fingerprint(HELD)


def test_fingerprints_survive_a_snapshot_and_older_snapshots_take_any_copy() -> None:
    """A version 4 snapshot knew no fingerprints: its events match any copy (as before)."""
    engine = Engine()
    engine.process(HELD)
    state = engine.states["IRN-PAK"]
    restored = DyadState.restore(state.snapshot(), engine.config)
    assert restored == state
    assert Engine(states={"IRN-PAK": restored}).process(event("strike", 0, "190")).fate == "conflicting"
    fifth = fifth_version(state)
    fourth_version = {**fifth, "entries": [row[:-1] for row in fifth["entries"]], "version": 4}
    older = DyadState.restore(fourth_version, engine.config)
    assert older.entries[0].fingerprint is None
    assert Engine(states={"IRN-PAK": older}).process(event("strike", 0, "190")).fate == "duplicate"


def test_the_worker_dead_letters_a_conflicting_copy_with_both_fingerprints() -> None:
    worker = a_worker()
    copy = event("strike", 0, cameo_code="190")
    assert worker.feed(HELD.model_dump_json().encode()) == "accepted"
    saved = dict(worker.store.saved)
    del worker.journal[:]
    assert worker.feed(copy.model_dump_json().encode()) == "rejected"
    assert worker.journal == ["dead letter"]
    assert worker.store.saved == saved
    (letter,) = worker.dead_letter_records()
    assert "conflicting copy of event 'strike'" in letter.reason
    assert fingerprint(HELD) in letter.reason and fingerprint(copy) in letter.reason
    assert json.loads(letter.raw)["cameo_code"] == "190"


def test_a_backtest_reports_a_conflicting_copy_as_a_bad_row_with_its_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    copy = event("strike", 0, cameo_code="190")
    events.write_text(
        f"{HELD.model_dump_json()}\n{event('other', 1).model_dump_json()}\n{copy.model_dump_json()}\n"
    )
    result = run_backtest([events], EngineConfig())
    assert result.counts["conflicting"] == 1
    (bad,) = result.read.bad_rows
    assert str(bad.where) == f"{events}:3"
    assert bad.category == "conflicting copy"
    assert fingerprint(copy) in bad.reason
