"""Rows of one event that arrive in several records (GDELT's repeats, file by file) are merged
in the core: whatever the batches and their order, the dyad ends as if one record had named
every row, and an alert keeps its id whichever event of its time tips the level."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from replay.readers.base import ReaderOptions
from schemas.events import CrisisEvent, Witnesses, witnessed_weight
from schemas.outputs import Level
from services.backtest.run import run_backtest
from services.core import Engine, EngineConfig
from services.core.dyad import DyadState
from services.web.projection import Projection
from tests.builders import event, fifth_version
from tests.gdelt_samples import unseen_crisis_lines

CODES = ["195", "190", "111", "042", "057"]


def witnessed(
    event_id: str, witnesses: Witnesses, hours: float = 0.0, cameo_code: str = "195"
) -> CrisisEvent:
    """A machine-coded record standing for `witnesses` (ids: row ids, values: shares)."""
    record = event(event_id, hours, cameo_code, weight=witnessed_weight(witnesses))
    return CrisisEvent.model_validate({**record.model_dump(), "witnesses": witnesses})


def test_new_rows_add_their_shares_and_a_repeated_row_counts_once() -> None:
    engine = Engine()
    assert engine.process(witnessed("strike", {"1": 0.2})).fate == "accepted"
    assert engine.process(witnessed("strike", {"1": 0.2})).fate == "duplicate"
    corroborated = engine.process(witnessed("strike", {"1": 0.2, "2": 0.4}))
    assert corroborated.fate == "corroborated"
    assert corroborated.index_update is not None
    whole = Engine()
    whole.process(witnessed("strike", {"1": 0.2, "2": 0.4}))
    assert engine.states["IRN-PAK"].entries == whole.states["IRN-PAK"].entries
    assert engine.states["IRN-PAK"].entries[0].witnesses == {"1": 0.2, "2": 0.4}


def test_an_event_made_whole_forgets_its_rows_and_takes_no_more() -> None:
    engine = Engine()
    engine.process(witnessed("strike", {"1": 0.6}))
    assert engine.process(witnessed("strike", {"2": 0.6})).fate == "corroborated"
    entry = engine.states["IRN-PAK"].entries[0]
    assert entry.witnesses is None
    assert engine.process(witnessed("strike", {"3": 0.2})).fate == "duplicate"
    assert engine.states["IRN-PAK"].entries[0] == entry


def test_a_native_copy_names_no_rows_and_changes_nothing() -> None:
    """(A copy at another time is no copy but a conflict: tests/test_conflicting_copies.py.)"""
    engine = Engine()
    engine.process(witnessed("strike", {"1": 0.2}))
    before = engine.states["IRN-PAK"].snapshot()
    assert engine.process(event("strike", 0, weight=0.5)).fate == "duplicate"
    assert engine.states["IRN-PAK"].snapshot() == before


@st.composite
def rows_in_batches(draw: st.DrawFn) -> tuple[list[CrisisEvent], list[list[CrisisEvent]]]:
    """Events of one dyad, each reported by a few rows; the rows cut into batches (files) in
    any way and played in any order: (one record per event naming all its rows, the batches)."""
    whole, pieces = [], []
    for index in range(draw(st.integers(1, 12))):
        shares = draw(st.lists(st.sampled_from([0.2, 0.4, 0.6, 1.0]), min_size=1, max_size=5))
        rows = {f"{index}.{n}": share for n, share in enumerate(shares)}
        hours = draw(st.integers(0, 20)) * 12.0  # many events share a time, as GDELT's days do
        code = draw(st.sampled_from(CODES))
        whole.append(witnessed(f"e{index:02d}", rows, hours, code))
        files = draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
        for file in sorted(set(files)):
            part = {row: share for (row, share), at in zip(rows.items(), files, strict=True) if at == file}
            pieces.append(witnessed(f"e{index:02d}", part, hours, code))
        if draw(st.booleans()):
            pieces.append(pieces[-1])  # a file produced twice
    shuffled = draw(st.permutations(pieces))
    cuts = sorted(draw(st.lists(st.integers(0, len(shuffled)), max_size=6)))
    batches = [shuffled[start:end] for start, end in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    return whole, batches


@settings(max_examples=150, deadline=None)
@given(case=rows_in_batches())
def test_rows_in_any_batches_end_as_one_record_per_event(case: tuple) -> None:
    whole, batches = case
    config = EngineConfig(lateness="11d")  # rows come up to 10 days apart: all count exactly
    at_once, in_pieces = Engine(config), Engine(config)
    for record in sorted(whole, key=lambda r: (r.event_time, r.event_id)):
        at_once.process(record)
    told = {a.alert_id for batch in batches for record in batch for a in in_pieces.process(record).alerts}
    state, pieced = at_once.states["IRN-PAK"], in_pieces.states["IRN-PAK"]
    assert [(e.order, e.conflict, e.cooperation) for e in pieced.entries] == [
        (e.order, e.conflict, e.cooperation) for e in state.entries
    ]
    assert pieced.indices(at_once.config) == state.indices(at_once.config)
    story = [a.alert_id for a in state.recompute_from(0, at_once.config)]
    assert [a.alert_id for a in pieced.recompute_from(0, in_pieces.config)] == story
    assert set(story) <= told  # no alert of the whole story is lost on the way


def test_an_alert_keeps_its_id_whichever_event_of_its_time_tips_the_level() -> None:
    """Two strikes on one day: whichever arrives first raises the alert; the move (normal to
    watch, that day) is the same news, so it has the same id either way."""
    first, second = event("a-strike", 0), event("b-strike", 0)
    one, other = Engine(), Engine()
    ids_one = [a.alert_id for record in (first, second) for a in one.process(record).alerts]
    ids_other = [a.alert_id for record in (second, first) for a in other.process(record).alerts]
    assert ids_one and ids_one == ids_other


def test_witnesses_survive_a_snapshot_and_an_older_snapshot_reads_as_whole_events() -> None:
    engine = Engine()
    engine.process(witnessed("strike", {"1": 0.2}))
    state = engine.states["IRN-PAK"]
    assert DyadState.restore(state.snapshot(), engine.config) == state
    fifth = fifth_version(state)
    third_version = {
        **fifth,
        "entries": [row[:-2] for row in fifth["entries"]],  # no witnesses, no fingerprint
        "version": 3,
    }
    restored = DyadState.restore(third_version, engine.config)
    assert restored.entries[0].witnesses is None
    assert Engine(states={"IRN-PAK": restored}).process(witnessed("strike", {"2": 0.2})).fate == "duplicate"


@pytest.mark.parametrize(
    ("witnesses", "weight"),
    [({"1": 0.2, "2": 0.2}, 1.0), ({}, 0.0), ({"1": 1.5}, 1.0)],
    ids=["weight not their sum", "none named", "a share over one"],
)
def test_a_record_whose_weight_is_not_its_witnesses_is_refused(witnesses: dict, weight: float) -> None:
    record = event("strike", weight=weight).model_dump()
    with pytest.raises(ValidationError):
        CrisisEvent.model_validate({**record, "witnesses": witnesses})


def test_the_api_shows_an_event_at_the_weight_its_rows_add_up_to() -> None:
    projection = Projection(100, 100, scale=EngineConfig().scale)
    projection.add_record(witnessed("strike", {"1": 0.2}))
    kept = projection.add_record(witnessed("strike", {"2": 0.4}))
    assert kept is not None
    detail = projection.detail(kept)
    assert (detail.event.weight, detail.event.witnesses) == (
        witnessed_weight({"1": 0.2, "2": 0.4}),
        {"1": 0.2, "2": 0.4},
    )
    assert projection.add_record(witnessed("strike", {"2": 0.4})) is None


def test_a_war_cut_into_15_minute_files_played_as_published_alerts_as_the_whole_file(tmp_path: Path) -> None:
    """GDELT's rows of one event spread over files (four a day here, by row id): played file by
    file, as `follow` plays them, the events and alerts are those of the whole file at once."""
    lines = list(unseen_crisis_lines())
    whole = tmp_path / "whole.export.CSV"
    whole.write_text("\n".join(lines) + "\n")
    files: dict[str, list[str]] = {}
    for line in lines:
        row_id, day = line.split("\t")[:2]
        files.setdefault(f"{day}{zlib.crc32(row_id.encode()) % 4 * 15:04d}00.export.CSV", []).append(line)
    for name, rows in files.items():
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    published = ReaderOptions(order="published")
    cut = run_backtest(
        sorted(tmp_path.glob("2*.export.CSV"), reverse=True), EngineConfig(), options=published
    )
    at_once = run_backtest([whole], EngineConfig())
    assert cut.counts["corroborated"] > 0
    assert [a.alert_id for a in cut.alerts] == [a.alert_id for a in at_once.alerts]
    assert {a.level for a in at_once.alerts} >= {Level.WARNING, Level.CRITICAL}
