"""Which 3-letter codes are countries, and the code of a country's name.

Dyads are pairs of countries. CAMEO's actor country field also carries regions (EUR, AFR,
MEA, WST, ...); those are not countries, so an event between them belongs to no dyad.
CAMEO country codes are ISO 3166-1 alpha-3 (pycountry) plus a few of CAMEO's own.
"""

from __future__ import annotations

from functools import cache

import pycountry

CAMEO_ONLY_COUNTRIES = {"KSV": "Kosovo"}

NAME_OVERRIDES = {
    # Names used by ICEWS that ISO 3166 spells otherwise (or not at all).
    "turkey": "TUR",
    "democratic republic of congo": "COD",
    "occupied palestinian territory": "PSE",
    "holy see": "VAT",
    "cote d'ivoire": "CIV",
    "the former yugoslav republic of macedonia": "MKD",
    "macedonia": "MKD",
    "swaziland": "SWZ",
    "kosovo": "KSV",
    "east timor": "TLS",
    "cape verde": "CPV",
    "burma": "MMR",
    "vatican city": "VAT",
    "palestine": "PSE",
    "brunei": "BRN",
    "micronesia": "FSM",
    "cook island": "COK",
    "u.s. virgin islands": "VIR",
    "falkland islands": "FLK",
    "reunion": "REU",  # ISO spells it Réunion
    # Actor names ICEWS gives countries (Source Name "Russia", Source Country "Russian
    # Federation"): the ICEWS reader reads such an actor as its state.
    "russia": "RUS",
    "palestinian territory, occupied": "PSE",
    # Not a country: ICEWS's geocoder puts two events of the 2018 Q4 files in the Country
    # (event location) column as "Bavaria"; the location is in Germany.
    "bavaria": "DEU",
}


@cache
def country_codes() -> frozenset[str]:
    return frozenset(country.alpha_3 for country in pycountry.countries) | frozenset(CAMEO_ONLY_COUNTRIES)


@cache
def country_code(name: str) -> str | None:
    """The code of a country's name (ISO names, common names, ICEWS spellings); None if unknown.

    Not of a 2-letter or numeric code, which pycountry's lookup would also take: "NA" is
    ICEWS's null, not Namibia.
    """
    key = name.strip().lower()
    if key in NAME_OVERRIDES:
        return NAME_OVERRIDES[key]
    if len(key) < 3 or key.isdigit():
        return None
    try:
        return str(pycountry.countries.lookup(key).alpha_3)
    except LookupError:
        return None
