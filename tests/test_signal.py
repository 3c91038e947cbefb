"""Alerts that mean something: actor roles, each dyad's own normal, crisis memory, no churn,
and the targets on a real quarter of ICEWS data (see the README's "Signal on real data")."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from schemas.actors import ActorRole
from schemas.events import Actor, CrisisEvent
from schemas.outputs import Alert, Level
from services.backtest.run import run_backtest
from services.core import Engine, EngineConfig
from tests.builders import event

CONFIG = EngineConfig()
STATE, NON_STATE = ActorRole.STATE, ActorRole.NON_STATE
REAL_QUARTER = Path(__file__).resolve().parents[1] / "replay" / "data" / "real" / "icews-daily-2018q4.zip"
DAY = 24.0


def play(events: list[CrisisEvent], config: EngineConfig = CONFIG) -> list[Alert]:
    engine = Engine(config)
    return [alert for record in events for alert in engine.process(record).alerts]


def test_a_non_state_side_weighs_less_and_two_weigh_its_square() -> None:
    engine = Engine()
    weights = {}
    for name, roles in {
        "states": (STATE, STATE),
        "one-side": (STATE, NON_STATE),
        "citizens": (NON_STATE, NON_STATE),
    }.items():
        update = engine.process(event(name, hours=0, source="IRN", target="PAK", roles=roles)).index_update
        assert update is not None
        weights[name] = update.escalation_index
        engine = Engine()
    w = CONFIG.non_state_weight
    assert weights == {"states": 10.0, "one-side": 10.0 * w, "citizens": 10.0 * w * w}


def test_private_people_of_two_countries_do_not_make_an_interstate_crisis() -> None:
    """The contract: crime and citizens' fights, however many in a day, stay below warning."""
    fights = [event(f"fight{n}", hours=1, roles=(NON_STATE, NON_STATE)) for n in range(20)]
    assert max((a.level.rank for a in play(fights)), default=0) < Level.WARNING.rank


def test_a_code_gives_the_role_when_none_is_given() -> None:
    assert Actor(name="Iran", code="IRNCVL", country="IRN").acting_role is NON_STATE
    assert Actor(name="Iran", code="IRNGOV", country="IRN").acting_role is STATE
    assert Actor(name="Iran", country="IRN").acting_role is STATE


def busy_dyad(days: int, per_day: int = 12, goldstein: float = -1.5) -> list[CrisisEvent]:
    """Days of steady, ordinary friction: `per_day` events of `goldstein` a day."""
    return [
        event(f"d{day:03}-{n}", hours=day * DAY + n, cameo_code="112", goldstein=goldstein)
        for day in range(days)
        for n in range(per_day)
    ]


def test_a_busy_dyad_is_judged_against_its_own_normal() -> None:
    ordinary = busy_dyad(60)
    after_warm_up = [a for a in play(ordinary) if a.event_time.date() > date(2024, 2, 10)]
    assert after_warm_up == []
    strike_day = 60 * DAY
    strikes = [event(f"strike{n}", hours=strike_day + n, cameo_code="195") for n in range(5)]
    rises = [
        a for a in play(ordinary + strikes) if a.kind == "escalation" and a.triggered_by.startswith("strike")
    ]
    assert rises and rises[-1].level.rank >= Level.WARNING.rank
    assert all(a.escalation_baseline > 0 for a in rises)  # judged above the dyad's band, not from zero


def test_a_quiet_dyads_first_strike_counts_in_full() -> None:
    (alert,) = play([event("strike", cameo_code="195")])
    assert alert.level is Level.WATCH and alert.escalation_baseline == 0.0


def war(days: int, start: float = 0.0) -> list[CrisisEvent]:
    return [
        event(f"war{day:03}-{n}", hours=start + day * DAY + n, cameo_code="195")
        for day in range(days)
        for n in range(4)
    ]


def test_a_long_war_never_becomes_its_own_normal() -> None:
    """Sixty days of the same fighting stay critical: the open crisis keeps the normal it had."""
    alerts = play(busy_dyad(40, per_day=1, goldstein=-1.0) + war(60, start=40 * DAY))
    levels = [a.level for a in alerts if a.event_time.date() >= date(2024, 2, 10)]
    assert levels[:3] == [Level.WATCH, Level.WARNING, Level.CRITICAL]
    assert len(levels) == 3


def test_a_crisis_that_goes_quiet_stays_open_until_resolved() -> None:
    """Russia-Turkey 2015-16 in small: a strike, months of silence, then a reconciliation."""
    crisis = [event(f"s{n}", hours=n, cameo_code="195") for n in range(2)]
    later = 150 * DAY
    talks = [
        event(f"t{n}", hours=later + n * DAY, cameo_code="057", source="PAK", target="IRN") for n in range(2)
    ]
    alerts = play(crisis + talks)
    assert [(a.reason_code, a.level) for a in alerts] == [
        ("level-rise", Level.WATCH),
        ("level-rise", Level.WARNING),
        ("level-fall", Level.WATCH),
        ("crisis-resolved", Level.NORMAL),
    ]
    assert alerts[2].crisis_since is not None and alerts[3].crisis_since is None


def test_a_crisis_quiet_for_its_memory_is_closed() -> None:
    crisis = [event(f"s{n}", hours=n, cameo_code="195") for n in range(2)]
    late = event("criticism", hours=200 * DAY, cameo_code="111")
    reasons = [a.reason_code for a in play([*crisis, late])]
    assert reasons[-1] == "crisis-quiet"


def test_rows_of_one_day_decide_no_fall_by_their_order() -> None:
    """A day's cooperative rows that sort before its conflict rows raise no de-escalation."""
    day_one = [event(f"a-strike{n}", hours=0, cameo_code="195") for n in range(2)]
    day_two = [
        event("a-talks", hours=DAY, cameo_code="057", source="PAK", target="IRN"),
        event("b-strike", hours=DAY, cameo_code="195"),
    ]
    assert [a.kind for a in play(day_one + day_two)] == ["escalation", "escalation"]


@pytest.fixture(scope="module")
def real_quarter() -> list[Alert]:
    return run_backtest([REAL_QUARTER], CONFIG).alerts


QUARTER_DAYS = 92
"""October to December 2018: the days the files were uploaded on and the labels cover (the
backtest's own budget spreads alerts over every event time played, stragglers included)."""


def per_30_days(count: int) -> float:
    return count * 30 / QUARTER_DAYS


def test_real_quarter_alert_budget(real_quarter: list[Alert]) -> None:
    in_quarter = [a for a in real_quarter if date(2018, 10, 1) <= a.event_time.date() <= date(2018, 12, 31)]
    rises = [a for a in in_quarter if a.kind == "escalation" and a.level.rank >= Level.WARNING.rank]
    assert per_30_days(len(rises)) <= 12
    assert per_30_days(len(in_quarter)) <= 50
    assert max(Counter(a.dyad for a in real_quarter).values()) <= 12  # no dyad churns


def test_real_quarter_catches_the_kerch_strait_incident(real_quarter: list[Alert]) -> None:
    warnings = [
        a.event_time.date()
        for a in real_quarter
        if a.dyad == "RUS-UKR" and a.kind == "escalation" and a.level.rank >= Level.WARNING.rank
    ]
    assert warnings and warnings[0] in (date(2018, 11, 25), date(2018, 11, 26))


def test_real_quarter_allies_stay_below_warning(real_quarter: list[Alert]) -> None:
    assert all(a.level.rank < Level.WARNING.rank for a in real_quarter if a.dyad == "GBR-USA")


def test_a_level_that_comes_back_the_same_day_was_never_left() -> None:
    """Reported by day: the day opens below the clearing threshold, its own rows bring the
    surge back. No fall and re-rise: a level falls once its surge stayed below for min_dwell."""
    crisis = [event(f"a{n}", hours=0, cameo_code="195") for n in range(2)]  # 20: warning
    # 4.5 days on, 20 has decayed to 7.1, below warning's clearing (9) for a day; the day's
    # rows: a statement, then a strike that brings the index back to 17.1
    next_day = [
        event("b-statement", hours=4.5 * DAY, cameo_code="010"),
        event("c-strike", hours=4.5 * DAY, cameo_code="195"),
    ]
    levels = [a.level for a in play(crisis + next_day)]
    assert levels == [Level.WATCH, Level.WARNING]
    without_dwell = [a.level for a in play(crisis + next_day, EngineConfig(min_dwell="0s"))]
    assert without_dwell == [Level.WATCH, Level.WARNING, Level.WATCH, Level.WARNING]


def test_a_level_falls_once_its_surge_stayed_below_clearing_for_the_dwell() -> None:
    """The index decays between events: the moment it crossed the clearing threshold is known,
    so a quiet dyad's fall comes at its next event once that is min_dwell past."""
    crisis = [event(f"a{n}", hours=0, cameo_code="195") for n in range(2)]  # 20 at t0
    # 20 -> below warning's clearing (9) after 3.5 days; the dwell ends 6.5 days in.
    too_soon = event("b", hours=6 * DAY, cameo_code="010", source="PAK", target="IRN")
    late_enough = event("c", hours=7 * DAY, cameo_code="010", source="PAK", target="IRN")
    assert [a.reason_code for a in play([*crisis, too_soon])] == ["level-rise", "level-rise"]
    falls = [a for a in play([*crisis, late_enough]) if a.kind == "de-escalation"]
    assert [(a.previous_level, a.level) for a in falls] == [(Level.WARNING, Level.WATCH)]


def test_a_resolved_crisis_is_not_the_normal_of_the_weeks_after_it() -> None:
    """A flare-up two weeks after a reconciliation is judged against the dyad's normal from
    before the crisis, not against the crisis still in its baseline window."""
    calm = [
        event(f"a{day:02}", hours=day * DAY, cameo_code="040", source="PAK", target="IRN")
        for day in range(40)
    ]
    crisis = [event(f"c{n:02}", hours=40 * DAY + n * 6, cameo_code="195") for n in range(12)]
    talks = [
        event(f"t{n}", hours=58 * DAY + n * DAY, cameo_code="057", source="PAK", target="IRN")
        for n in range(3)
    ]
    flare_up = [event("z-strike", hours=72 * DAY, cameo_code="195")]
    alerts = play(calm + crisis + talks + flare_up)
    assert "crisis-resolved" in [a.reason_code for a in alerts]
    (again,) = [a for a in alerts if a.triggered_by == "z-strike"]
    assert again.kind == "escalation" and again.escalation_baseline == 0.0
