"""Small builders for records in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.actors import ActorRole
from schemas.events import Actor, CrisisEvent, Provenance, Retraction
from services.core.dyad import DyadState, Entry

START = datetime(2024, 1, 1, tzinfo=UTC)
ACTORS = {code: Actor(code=code, name=code, country=code) for code in ("IRN", "PAK", "CHN", "USA")}


def event(
    event_id: str,
    hours: float = 0.0,
    cameo_code: str = "195",
    source: str = "IRN",
    target: str = "PAK",
    goldstein: float | None = None,
    weight: float = 1.0,
    roles: tuple[ActorRole | None, ActorRole | None] = (None, None),
) -> CrisisEvent:
    return CrisisEvent(
        event_id=event_id,
        event_time=START + timedelta(hours=hours),
        source=ACTORS[source].model_copy(update={"role": roles[0]}),
        target=ACTORS[target].model_copy(update={"role": roles[1]}),
        cameo_code=cameo_code,
        goldstein=goldstein,
        weight=weight,
        summary=f"test event {event_id}",
        provenance=Provenance(document="tests", quote="quote", coded_by="tests"),
    )


def retraction(retracts: str, hours: float = 0.0, dyad: str = "IRN-PAK") -> Retraction:
    return Retraction(
        retraction_id=f"retract-{retracts}",
        retracts=retracts,
        dyad=dyad,
        event_time=START + timedelta(hours=hours),
        reason="withdrawn",
        retracted_by="tests",
    )


def fifth_version(state: DyadState) -> dict[str, Any]:
    """`state` as a version 5 snapshot had it (whole entry rows, the totals and standing of
    what was let go): what tests of older versions start from."""
    current = {k: v for k, v in state.snapshot().items() if k not in ("prior", "day_totals", "notable")}
    prior = state.prior or Entry(0.0, "", 0.0, 0.0)
    return {
        **current,
        "entries": [entry.as_row() for entry in state.entries],
        "prior_totals": prior.totals.as_row(),
        "prior_standing": prior.standing.as_row(),
        "version": 5,
    }
