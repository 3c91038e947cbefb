"""Properties the engine promises, for any events: order-free, exact retraction, determinism."""

import itertools

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import CrisisEvent
from services.core import Engine, EngineConfig
from services.core.dyad import DyadState
from tests.builders import event, retraction

# Events come up to 40 days late here: all within the lateness, so all count exactly.
CONFIG = EngineConfig(lateness="41d")
# A short half-life puts 40 days across several decay frames (64 half-lives each).
SHORT = EngineConfig(half_life="6h", retention_half_lives=400, lateness="41d")
CODES = ["195", "190", "138", "111", "0256", "042", "0356", "087", "057", "010"]


@st.composite
def event_sets(draw: st.DrawFn, min_size: int = 1, max_size: int = 25, days: int = 20) -> list[CrisisEvent]:
    """Events of one dyad within `days` (inside the lateness of CONFIG and SHORT), with unique ids."""
    size = draw(st.integers(min_size, max_size))
    return [
        event(
            f"e{index:02d}",
            hours=draw(st.integers(0, days * 48)) / 2,
            cameo_code=draw(st.sampled_from(CODES)),
            weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
            source=(source := draw(st.sampled_from(["IRN", "PAK"]))),
            target="PAK" if source == "IRN" else "IRN",
        )
        for index in range(size)
    ]


def play(events: list, config: EngineConfig = CONFIG) -> tuple[DyadState, list]:
    engine = Engine(config)
    alerts = [alert for record in events for alert in engine.process(record).alerts]
    return engine.states["IRN-PAK"], alerts


def timeline_ids(state: DyadState, config: EngineConfig) -> list[str]:
    return [alert.alert_id for alert in state.recompute_from(0, config)]


@settings(max_examples=150, deadline=None)
@given(events=event_sets(), data=st.data(), config=st.sampled_from([CONFIG, SHORT]))
def test_arrival_order_changes_neither_indices_nor_alert_ids(
    events: list, data: st.DataObject, config: EngineConfig
) -> None:
    in_order = sorted(events, key=lambda e: (e.event_time, e.event_id))
    shuffled = data.draw(st.permutations(events))
    ordered_state, ordered_alerts = play(in_order, config)
    shuffled_state, shuffled_alerts = play(shuffled, config)
    assert shuffled_state.entries == ordered_state.entries
    assert shuffled_state.indices(config) == ordered_state.indices(config)
    assert timeline_ids(shuffled_state, config) == timeline_ids(ordered_state, config)
    assert [a.alert_id for a in ordered_alerts] == timeline_ids(ordered_state, config)
    assert set(timeline_ids(ordered_state, config)) <= {a.alert_id for a in shuffled_alerts}


@settings(max_examples=150, deadline=None)
@given(events=event_sets(min_size=2), data=st.data())
def test_a_retraction_restores_the_state_exactly(events: list, data: st.DataObject) -> None:
    withdrawn = data.draw(st.sampled_from(events))
    without, _ = play([e for e in events if e is not withdrawn])
    with_then_retracted, _ = play([*events, retraction(withdrawn.event_id, hours=24 * 41)])
    assert with_then_retracted.entries == without.entries
    assert with_then_retracted.indices(CONFIG) == without.indices(CONFIG)
    assert with_then_retracted.level is without.level


@settings(max_examples=100, deadline=None)
@given(events=event_sets(min_size=2), fractions=st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_indices_only_decay_between_events(events: list, fractions: list[float]) -> None:
    state, _ = play(events)
    for before, after in itertools.pairwise(state.entries):
        times = sorted(before.time + f * (after.time - before.time) for f in fractions)
        values = [state.indices_at(t, CONFIG) for t in times if t < after.time]
        for earlier, later in itertools.pairwise(values):
            assert later[0] <= earlier[0] and later[1] <= earlier[1]


@settings(max_examples=50, deadline=None)
@given(events=event_sets())
def test_same_input_same_alerts(events: list) -> None:
    _, first = play(events)
    _, second = play(events)
    assert [a.model_dump() for a in first] == [a.model_dump() for a in second]


@settings(max_examples=50, deadline=None)
@given(events=event_sets(), more=event_sets())
def test_a_state_saved_and_restored_goes_on_exactly_as_before(events: list, more: list) -> None:
    """What the worker's table does: the snapshot round-trips through JSON without a bit lost."""
    state, _ = play(events)
    restored = DyadState.restore(orjson.loads(orjson.dumps(state.snapshot())), CONFIG)
    assert restored == state
    later = [e.model_copy(update={"event_id": f"later-{e.event_id}"}) for e in more]
    kept, restarted = Engine(states={"IRN-PAK": state}), Engine(states={"IRN-PAK": restored})
    assert [kept.process(e) for e in later] == [restarted.process(e) for e in later]


# As SHORT, but holding only a day of events one by one (the rest is folded), or all of 60 days.
FOLDING = EngineConfig(half_life="6h", retention_half_lives=400, lateness="1d")
HOLDING = EngineConfig(half_life="6h", retention_half_lives=400, lateness="61d")


def story(alerts: list) -> list[tuple]:
    """What alerts say, whatever configuration hash names them (contributions to 12 digits)."""
    return [
        (
            a.event_time,
            a.kind,
            a.previous_level,
            a.level,
            a.reason_code,
            a.triggered_by,
            a.escalation_index,
            a.escalation_baseline,
            [(c.event_id, c.index, round(c.contribution, 12)) for c in a.contributors],
        )
        for a in alerts
    ]


@settings(max_examples=150, deadline=None)
@given(events=st.one_of(event_sets(min_size=2), event_sets(min_size=60, max_size=150, days=60)))
def test_folding_the_past_changes_no_result(events: list) -> None:
    """Events in order, with a day held one by one and the rest folded, give what holding them
    all gives: the same alerts, contributors, indices and latest entries, to the bit (60 days
    of 60 or more events fill baseline windows that reach into folded days)."""
    in_order = sorted(events, key=lambda e: (e.event_time, e.event_id))
    folded_state, folded_alerts = play(in_order, FOLDING)
    whole_state, whole_alerts = play(in_order, HOLDING)
    assert story(folded_alerts) == story(whole_alerts)
    assert folded_state.indices(FOLDING) == whole_state.indices(HOLDING)
    assert folded_state.entries == whole_state.entries[-len(folded_state.entries) :]


@settings(max_examples=150, deadline=None)
@given(events=event_sets(min_size=2), data=st.data())
def test_events_late_within_the_lateness_count_as_if_in_order(events: list, data: st.DataObject) -> None:
    """Each event arrives up to half a day after later ones (within FOLDING's one day): the
    state and the alerts are those of the events in order, folding or not."""
    jitter = data.draw(st.lists(st.integers(0, 12 * 60), min_size=len(events), max_size=len(events)))
    arrival = sorted(zip(jitter, events, strict=True), key=lambda p: p[1].event_time.timestamp() + p[0] * 60)
    late = [e for _, e in arrival]
    in_order = sorted(events, key=lambda e: (e.event_time, e.event_id))
    late_state, late_alerts = play(late, FOLDING)
    ordered_state, _ = play(in_order, FOLDING)
    assert late_state.entries == ordered_state.entries
    assert late_state.indices(FOLDING) == ordered_state.indices(FOLDING)
    assert set(timeline_ids(ordered_state, FOLDING)) <= {a.alert_id for a in late_alerts}


@settings(max_examples=50, deadline=None)
@given(events=event_sets(min_size=2), data=st.data())
def test_a_folded_state_saved_and_restored_goes_on_exactly_as_before(
    events: list, data: st.DataObject
) -> None:
    in_order = sorted(events, key=lambda e: (e.event_time, e.event_id))
    cut = data.draw(st.integers(1, len(in_order)))
    state, _ = play(in_order[:cut], FOLDING)
    restored = DyadState.restore(orjson.loads(orjson.dumps(state.snapshot())), FOLDING)
    assert restored == state
    kept, restarted = Engine(FOLDING, {"IRN-PAK": state}), Engine(FOLDING, {"IRN-PAK": restored})
    assert [kept.process(e) for e in in_order[cut:]] == [restarted.process(e) for e in in_order[cut:]]
