"""The core engine: scoring, levels with hysteresis, alerts, duplicates, retractions."""

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.outputs import Alert, Level
from services.core import Engine, EngineConfig
from services.core.dyad import SNAPSHOT_VERSION, DyadState, Notable
from services.core.levels import cleared, reached
from tests.builders import event, fifth_version, retraction

CONFIG = EngineConfig()


def test_one_strike_on_a_quiet_dyad_raises_watch() -> None:
    outcome = Engine().process(event("strike", cameo_code="195"))
    assert [(a.kind, a.previous_level, a.level) for a in outcome.alerts] == [
        ("escalation", Level.NORMAL, Level.WATCH)
    ]
    assert outcome.index_update is not None
    assert outcome.index_update.escalation_index == 10.0


def test_one_verbal_criticism_raises_nothing() -> None:
    outcome = Engine().process(event("critic", cameo_code="111"))
    assert outcome.alerts == ()
    assert outcome.index_update is not None and outcome.index_update.level is Level.NORMAL


def test_cooperation_feeds_de_escalation_and_conflict_escalation() -> None:
    engine = Engine()
    engine.process(event("visit", cameo_code="042"))
    update = engine.process(event("threat", hours=0, cameo_code="138")).index_update
    assert update is not None
    assert (update.escalation_index, update.de_escalation_index) == pytest.approx((7.0, 1.9))


def test_explicit_goldstein_and_weight_override_the_scale() -> None:
    update = Engine().process(event("e", cameo_code="111", goldstein=-4.0, weight=2.0)).index_update
    assert update is not None and update.escalation_index == 8.0


def test_index_halves_every_half_life_of_event_time() -> None:
    engine = Engine()
    engine.process(event("strike", hours=0))
    update = engine.process(event("visit", hours=72, cameo_code="042")).index_update
    assert update is not None and update.escalation_index == 5.0


def test_a_copy_of_a_configuration_is_a_new_configuration() -> None:
    """What a configuration caches (seconds, thresholds, its hash) is not carried into a copy
    with other values, and the values a copy is given are checked."""
    used = EngineConfig()
    assert (used.half_life_seconds, used.threshold(Level.WATCH)) == (3 * 86400, 6.0)  # now cached
    copy = used.model_copy(update={"half_life": "1d", "watch_threshold": 5.0})
    assert (copy.half_life_seconds, copy.threshold(Level.WATCH)) == (86400.0, 5.0)
    assert (
        copy.computed_with.config_hash
        == EngineConfig(half_life="1d", watch_threshold=5.0).computed_with.config_hash
    )
    assert copy.computed_with.config_hash != used.computed_with.config_hash
    with pytest.raises(ValidationError):
        used.model_copy(update={"watch_threshold": 20.0})  # above warning's


def test_hysteresis_leaves_a_level_only_below_its_clearing_threshold() -> None:
    watch = CONFIG.watch_threshold
    assert reached(watch, CONFIG) is Level.WATCH
    just_below = watch - 0.01
    assert cleared(Level.WATCH, just_below, CONFIG) is Level.WATCH
    assert cleared(Level.WATCH, watch * CONFIG.clearing_ratio - 0.01, CONFIG) is Level.NORMAL
    assert cleared(Level.CRITICAL, 0.0, CONFIG) is Level.NORMAL
    assert reached(CONFIG.critical_threshold, CONFIG) is Level.CRITICAL
    assert reached(-5.0, CONFIG) is Level.NORMAL


def _levels_raised_while_hovering(config: EngineConfig) -> list[Level]:
    """E after each event alternates 6.5, 5.5, 6.5, ... around the watch threshold (6)."""
    engine, alerts, previous = Engine(config), list[Alert](), 0.0
    for step in range(10):
        target = 6.5 if step % 2 == 0 else 5.5
        weight = (target - previous * 2 ** (-12 / 24)) / 10
        outcome = engine.process(event(f"e{step}", hours=step * 12, cameo_code="195", weight=weight))
        assert outcome.index_update is not None
        previous = outcome.index_update.escalation_index
        alerts += outcome.alerts
    return [alert.level for alert in alerts]


def test_a_dyad_hovering_near_a_threshold_does_not_flap() -> None:
    assert _levels_raised_while_hovering(EngineConfig(half_life="1d")) == [Level.WATCH]
    dwell_alone = EngineConfig(half_life="1d", clearing_ratio=0.99)
    assert len(_levels_raised_while_hovering(dwell_alone)) == 3
    neither = EngineConfig(half_life="1d", clearing_ratio=0.99, min_dwell="0s")
    assert len(_levels_raised_while_hovering(neither)) == 10


def test_de_escalation_when_cooperation_overtakes_conflict_above_normal() -> None:
    """Cooperation is judged on whole event times: at the dyad's next, later event."""
    engine = Engine()
    engine.process(event("strike", hours=0))
    assert (
        engine.process(event("truce", hours=12, cameo_code="0871", source="PAK", target="IRN")).alerts == ()
    )
    outcome = engine.process(event("talks", hours=13, cameo_code="040", source="PAK", target="IRN"))
    assert [(a.kind, a.reason_code, a.level) for a in outcome.alerts] == [
        ("de-escalation", "cooperation-overtakes", Level.WATCH)
    ]
    assert outcome.alerts[0].triggered_by == "talks"


def test_de_escalation_when_the_level_falls() -> None:
    engine = Engine()
    engine.process(event("strike", hours=0))
    outcome = engine.process(event("criticism", hours=24 * 10, cameo_code="111"))
    assert [(a.kind, a.reason_code, a.previous_level, a.level) for a in outcome.alerts] == [
        ("de-escalation", "level-fall", Level.WATCH, Level.NORMAL)
    ]


def test_a_repeated_event_counts_once() -> None:
    engine = Engine()
    engine.process(event("strike"))
    again = engine.process(event("strike"))
    assert again.fate == "duplicate" and again.alerts == () and again.index_update is None
    assert engine.states["IRN-PAK"].indices(CONFIG) == (10.0, 0.0)


def test_events_of_no_dyad_are_counted_not_errors() -> None:
    outcome = Engine().process(event("internal", source="IRN", target="IRN"))
    assert outcome.fate == "no-dyad" and outcome.dyad is None


def test_an_alert_names_the_events_that_weigh_most() -> None:
    engine = Engine()
    engine.process(event("visit", hours=0, cameo_code="042"))
    engine.process(event("threat", hours=1, cameo_code="138"))
    alert = engine.process(event("strike", hours=2, cameo_code="195")).alerts[0]
    assert alert.level is Level.WARNING
    assert [(c.event_id, c.index) for c in alert.contributors] == [
        ("strike", "escalation"),
        ("threat", "escalation"),
        ("visit", "de-escalation"),
    ]
    assert alert.contributors[0].contribution == 10.0


def test_alert_ids_are_deterministic_and_depend_on_the_configuration() -> None:
    first = Engine().process(event("strike")).alerts[0].alert_id
    second = Engine().process(event("strike")).alerts[0].alert_id
    other = Engine(EngineConfig(watch_threshold=5)).process(event("strike")).alerts[0].alert_id
    assert first == second != other


def test_every_result_says_how_it_was_computed() -> None:
    outcome = Engine().process(event("strike"))
    stamp = CONFIG.computed_with
    for result in (outcome.index_update, outcome.alerts[0]):
        assert result is not None
        assert (result.scale, result.scale_version, result.config_hash) == (
            stamp.scale,
            stamp.scale_version,
            stamp.config_hash,
        )


def test_a_retraction_removes_the_event_and_corrects_the_level() -> None:
    engine = Engine()
    engine.process(event("visit", hours=0, cameo_code="042"))
    engine.process(event("strike", hours=1))
    outcome = engine.process(retraction("strike", hours=5))
    assert outcome.fate == "retraction-applied"
    assert outcome.index_update is not None and outcome.index_update.escalation_index == 0.0
    assert [(a.kind, a.reason_code, a.previous_level, a.level, a.triggered_by) for a in outcome.alerts] == [
        ("de-escalation", "correction", Level.WATCH, Level.NORMAL, "retract-strike")
    ]


def test_a_retraction_before_its_event_keeps_the_event_out() -> None:
    engine = Engine()
    assert engine.process(retraction("strike")).fate == "retraction-pending"
    assert engine.process(event("strike")).fate == "retracted"
    assert engine.level("IRN-PAK") is Level.NORMAL


def test_a_late_event_rewrites_the_timeline_and_its_alerts_follow() -> None:
    engine = Engine()
    engine.process(event("visit", hours=48, cameo_code="042"))
    late = engine.process(event("strike", hours=0))
    assert late.fate == "accepted"
    assert [(a.triggered_by, a.level) for a in late.alerts] == [("strike", Level.WATCH)]
    assert engine.level("IRN-PAK") is Level.WATCH


def test_events_later_than_the_lateness_are_refused_as_expired() -> None:
    engine = Engine(EngineConfig(lateness="3d"))
    engine.process(event("recent", hours=100))
    assert engine.process(event("late", hours=100 - 72)).fate == "accepted"
    assert engine.process(event("too-late", hours=100 - 73)).fate == "expired"


def test_an_expired_repeat_offers_the_alerts_it_raised_again() -> None:
    """A record replayed after a crash may have been folded since: its alerts are not lost."""
    engine = Engine(EngineConfig(lateness="1d"))
    first = engine.process(event("strike", hours=0))
    engine.process(event("visit", hours=48, cameo_code="042"))
    again = engine.process(event("strike", hours=0))
    assert first.alerts and again.fate == "expired" and again.repeats == first.alerts


def test_entries_past_the_lateness_are_folded_so_state_stays_bounded() -> None:
    engine = Engine(EngineConfig(half_life="1h", retention_half_lives=200, lateness="8h"))
    for hour in range(200):
        engine.process(event(f"e{hour}", hours=hour, cameo_code="042"))
    state = engine.states["IRN-PAK"]
    assert len(state.entries) == 9 and state.prior is not None and state.prior.event_id == "e190"
    assert len(state.fingerprints) == 9 and len(state.notable) <= 2 * CONFIG.contributors
    days_reached = (CONFIG.baseline_lag + CONFIG.baseline_window).days + 5
    assert len(state.day_totals) <= days_reached


def test_the_folded_events_kept_to_name_are_the_heaviest_of_all_folded() -> None:
    """However many events were folded, the state keeps the 2 x contributors heaviest of them,
    heaviest first, as alerts may still name them (checked against the same events unfolded)."""
    config = EngineConfig(half_life="1h", retention_half_lives=200, lateness="8h")
    folding, whole = (
        Engine(config),
        Engine(EngineConfig(half_life="1h", retention_half_lives=200, lateness="200h")),
    )
    codes = ["042", "195", "190", "138", "057", "111", "0256"]
    for hour in range(200):
        record = event(f"e{hour}", hours=hour + (hour % 5) / 10, cameo_code=codes[hour * 3 % len(codes)])
        folding.process(record)
        whole.process(record)
    state, held = folding.states["IRN-PAK"], whole.states["IRN-PAK"].entries
    assert state.held_from is not None and len(held) == 200

    folded = [
        Notable(entry.time, entry.event_id, index, value)
        for entry in held
        if entry.time < state.held_from
        for index, value in (("escalation", entry.conflict), ("de-escalation", entry.cooperation))
        if value > 0
    ]
    heaviest = sorted(folded, key=lambda n: n.rank(3600.0))[: 2 * config.contributors]
    assert state.notable == heaviest


def test_indices_at_any_time_decay_from_the_last_event() -> None:
    state = DyadState("IRN-PAK")
    engine = Engine(states={"IRN-PAK": state})
    engine.process(event("strike", hours=0))
    start = state.entries[0].time
    assert state.indices_at(start - 1, CONFIG) == (0.0, 0.0)
    assert state.indices_at(start + 3 * 86400, CONFIG) == (5.0, 0.0)


def test_a_repeated_event_offers_its_alerts_again_with_the_same_ids() -> None:
    engine = Engine()
    first = engine.process(event("strike"))
    again = engine.process(event("strike"))
    assert again.alerts == () and again.repeats == first.alerts


def test_a_snapshot_of_an_earlier_version_is_migrated() -> None:
    """Version 1 had no `last_change`, version 2 no running totals or standings on entries: both
    restore, their timeline recomputed from the entries' inputs (the crisis open again)."""
    engine = Engine()
    for record in (event("a", 0), event("b", 10, cameo_code="138")):
        engine.process(record)
    state = engine.states["IRN-PAK"]
    current = fifth_version(state)
    second_version = {
        **{k: v for k, v in current.items() if k not in ("let_go_since", "prior_totals", "prior_standing")},
        "entries": [[*row[:7], row[8][0], row[8][2]] for row in current["entries"]],  # level, leads
        "version": 2,
    }
    first_version = {k: v for k, v in second_version.items() if k not in ("version", "last_change")}
    for older in (second_version, first_version):
        restored = DyadState.restore(older, CONFIG)
        assert [(e.order, e.totals, e.level) for e in restored.entries] == [
            (e.order, e.totals, e.level) for e in state.entries
        ]
        assert restored.first_time == state.first_time
        assert restored.entries[-1].standing == state.entries[-1].standing
    assert DyadState.restore(first_version, CONFIG).last_change is None
    assert DyadState.restore(current, CONFIG) == state
    assert DyadState.restore(state.snapshot(), CONFIG) == state


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {**s, "version": SNAPSHOT_VERSION + 1}, "this engine reads up to"),
        (lambda s: {**s, "entries": [row[:-1] for row in s["entries"]]}, "migrate the snapshot"),
    ],
    ids=["newer", "a field short"],
)
def test_a_snapshot_this_engine_cannot_read_is_refused_not_misread(change: Any, message: str) -> None:
    engine = Engine()
    engine.process(event("a", 0))
    with pytest.raises(ValueError, match=message):
        DyadState.restore(change(engine.states["IRN-PAK"].snapshot()), CONFIG)


def test_a_move_told_then_corrected_is_told_again_when_it_comes_back() -> None:
    """A strike raises watch; its retraction corrects it to normal; another strike of the same
    time brings watch back. The alert that move has (same time, same move) was told already,
    before the correction: subscribers must hear of watch again all the same."""
    engine = Engine()
    first = engine.process(event("a-strike", 0)).alerts
    corrected = engine.process(retraction("a-strike", hours=1)).alerts
    again = engine.process(event("b-strike", 0)).alerts
    assert [a.level for a in first] == [Level.WATCH]
    assert [(a.reason_code, a.level) for a in corrected] == [("correction", Level.NORMAL)]
    assert again and again[-1].level is Level.WATCH
    assert engine.states["IRN-PAK"].reported_level is Level.WATCH


def test_two_records_of_one_time_that_each_change_history_make_two_corrections() -> None:
    """Two strikes of one time, each retracted an hour later: two corrections of the same move
    at the same time, each a record's own news, so each its own id."""
    engine = Engine()
    told = [
        alert
        for record in (
            event("a-strike", 0),
            retraction("a-strike", hours=1),
            event("b-strike", 0),
            retraction("b-strike", hours=1),
        )
        for alert in engine.process(record).alerts
    ]
    falls = [a for a in told if a.reason_code == "correction" and a.level is Level.NORMAL]
    assert len(falls) == 2 and falls[0].alert_id != falls[1].alert_id
    assert falls[0].event_time == falls[1].event_time


def test_a_version_3_snapshot_keeps_the_alerts_it_told_under_their_new_ids() -> None:
    """Version 3 named alerts by their trigger: restored, a timeline redone by a late event
    tells subscribers nothing they were told before."""
    engine = Engine()
    for record in (event("a", 0), event("b", 30, cameo_code="190"), event("c", 60, cameo_code="195")):
        engine.process(record)
    current = fifth_version(engine.states["IRN-PAK"])
    third_version = {
        **{k: v for k, v in current.items() if k != "last_correction"},
        "entries": [row[:-2] for row in current["entries"]],  # no witnesses, no fingerprint
        "emitted": {f"old-id-{n}": row for n, row in enumerate(current["emitted"].values())},
        "version": 3,
    }
    restored = DyadState.restore(third_version, CONFIG)
    assert list(restored.emitted) == list(current["emitted"])
    late = Engine(states={"IRN-PAK": restored}).process(event("late", 20, cameo_code="042"))
    assert all(alert.alert_id not in current["emitted"] for alert in late.alerts)


def test_retracting_the_latest_event_lets_nothing_in_among_what_was_folded() -> None:
    """Folding cut at the latest event minus the lateness; a retraction of that event moves the
    latest back, but an event before the cut would land among folded ones: still expired."""
    engine = Engine(EngineConfig(lateness="1d"))
    for name, hours in (("old", 0), ("older-neighbour", 30), ("newest", 60)):
        engine.process(event(name, hours=hours, cameo_code="042"))
    state = engine.states["IRN-PAK"]
    assert state.prior is not None and state.prior.event_id == "older-neighbour"
    applied = engine.process(retraction("newest", hours=61))
    assert applied.fate == "retraction-applied" and state.entries == [] and state.level is state.prior.level
    assert applied.index_update is not None and applied.index_update.as_of == event("t", hours=30).event_time
    assert engine.process(event("among-the-folded", hours=20)).fate == "expired"
    assert engine.process(event("after-the-cut", hours=40)).fate == "accepted"


def test_a_correction_with_no_event_held_names_the_folded_ones() -> None:
    """A retraction that takes the only held event: the correction weighs what was folded, as
    it would had everything been held."""
    named = []
    for lateness in ("1d", "30d"):
        engine = Engine(EngineConfig(lateness=lateness))
        for record in (
            event("a", 0, cameo_code="195"),
            event("b", 48, cameo_code="195"),
            retraction("b", 50),
        ):
            outcome = engine.process(record)
        named.append([(a.reason_code, [c.event_id for c in a.contributors]) for a in outcome.alerts])
    assert named[0] == named[1] == [("correction", ["a"])]


def test_a_version_5_snapshot_of_a_long_history_restores_as_a_fresh_replay() -> None:
    """Version 5 held 90 days one by one and had let older ones go: restored, what is past the
    lateness is folded with the sums and totals it was saved with, and the dyad stands where a
    replay of its events puts it (no false crisis from a baseline window left empty)."""
    events = [
        event(f"e{n:04d}", hours=n * 2.4, cameo_code=("195", "042", "111", "057")[n % 4]) for n in range(1500)
    ]
    holding, fresh = Engine(EngineConfig(lateness="90d")), Engine(CONFIG)
    for record in events:
        holding.process(record)
        fresh.process(record)
    old, replayed = holding.states["IRN-PAK"], fresh.states["IRN-PAK"]
    assert old.let_go_since is not None and len(old.entries) > 800
    restored = DyadState.restore(fifth_version(old), CONFIG)
    assert restored.entries == replayed.entries
    assert restored.indices(CONFIG) == replayed.indices(CONFIG) and restored.level is replayed.level
    assert restored.prior is not None and replayed.prior is not None
    assert restored.prior.totals == replayed.prior.totals
