"""Who acts for a state: the mapping from what each source says of an actor to its role.

An interstate crisis is made by states: governments, leaders, ministries, armed forces and
other state organs. Machine coders also code crime stories, citizens, media and parties to
country pairs ("Police (United States) arrest Citizen (United Kingdom)"); those rows say
little about relations between the two states. Each source describes actors its own way:

- CAMEO actor codes (GDELT, hand-coded events): a country code followed by 3-letter type
  codes. The role types GOV (government), MIL (military), COP (police), JUD (judiciary),
  SPY (intelligence) and LEG (legislature) are state organs; OPP (opposition), REB, INS,
  SEP (rebels, insurgents, separatists), UAF (unaligned armed forces), CRM (criminals) mark a
  non-state actor even next to a state type; every other type (CVL civilians, BUS, MED,
  EDU, LAB, REL, NGO, ...) is non-state. A bare country code is the state itself.
  Source: CAMEO Conflict and Mediation Event Observations Codebook, v1.1b3 (Schrodt 2012),
  chapter 3 "Actor codes", and GDELT's Actor1Type1Code..Type3Code (GDELT Event Codebook 2.0).
- ICEWS names and sectors: an actor whose name is its country's name is the state; an actor
  whose sectors include a state sector (Government, Executive, Military, Police, Cabinet,
  Foreign Ministry, ...) is a state organ; anything else (citizens, media, business,
  dissidents, insurgents, criminals, parties out of government, named private people
  without sectors) is non-state. Source: ICEWS Coded Event Data codebook and its sector dictionary
  (Boschee et al., Harvard Dataverse doi:10.7910/DVN/28075), as the sectors appear in the
  2018 daily files.

ICEWS sectors describe an actor over its whole history (a politician keeps "Government"
after leaving office), so the mapping errs towards `state` for politicians. It also misses
some: in the 2018 files Narendra Modi carries only party and "Dissident" sectors, so his
statements count as non-state. The weight of non-state events (the engine's
`non_state_weight`) is what bounds the cost of either error.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache

from schemas.countries import country_code


class ActorRole(StrEnum):
    """Whether an actor speaks and acts for its state: what makes an event interstate."""

    STATE = "state"
    NON_STATE = "non-state"


CAMEO_STATE_TYPES = frozenset({"GOV", "MIL", "COP", "JUD", "SPY", "LEG"})
CAMEO_OUT_OF_STATE_TYPES = frozenset({"OPP", "REB", "INS", "SEP", "UAF", "CRM"})

ICEWS_STATE_SECTORS = frozenset(
    {
        "Government",
        "Executive",
        "Executive Office",
        "Cabinet",
        "Military",
        "Army",
        "Navy",
        "Air Force",
        "Marines",
        "Military Intelligence",
        "National / Border Divisions",
        "Police",
        "Judicial",
        "Legislative / Parliamentary",
        "Foreign Ministry",
        "Defense / Security Ministry",
        "Interior / Home Ministry",
        "Intelligence Ministry",
        "Finance / Economy / Commerce / Trade Ministry",
        "Justice / Law Ministry",
        "State Media",
    }
)


def role_from_cameo(code: str | None, country: str | None, types: Iterable[str] = ()) -> ActorRole:
    """An actor's role from its CAMEO code (`IRNGOV`) or its type codes (GDELT's Type1..3).

    Without a code or types the actor is taken as its state: a hand-coded event that names
    only a country means the state.
    """
    if types and (found := [t.upper() for t in types if t]):
        return _role_of_types(found)
    return _role_of_code(code, country)


@lru_cache(maxsize=4096)
def _role_of_code(code: str | None, country: str | None) -> ActorRole:
    """Cached: the engine asks for both actors' roles of every event (to score it and to
    fingerprint it), and a source's actor codes repeat (IRNGOV, USAMIL, ...)."""
    rest = (code or "").upper()
    if country and rest.startswith(country):
        rest = rest[len(country) :]
    return _role_of_types([rest[at : at + 3] for at in range(0, len(rest), 3)])


def _role_of_types(found: list[str]) -> ActorRole:
    if not found:
        return ActorRole.STATE
    if found[0] in CAMEO_STATE_TYPES and not CAMEO_OUT_OF_STATE_TYPES.intersection(found):
        return ActorRole.STATE
    return ActorRole.NON_STATE


def role_from_icews(name: str, sectors: str, country_name: str) -> ActorRole:
    """An ICEWS actor's role from its name, its comma-separated sectors and its country's name.

    An actor named after its country, in any spelling ("Russia" of the "Russian Federation"),
    is the state. A state sector wins over an out-of-state one: ICEWS gives each actor every
    sector it ever held, so a sitting prime minister also carries the opposition party he led.
    """
    if (code := country_code(name)) is not None and code == country_code(country_name):
        return ActorRole.STATE
    named = {sector.strip() for sector in sectors.split(",")}
    if named & ICEWS_STATE_SECTORS:
        return ActorRole.STATE
    return ActorRole.NON_STATE
