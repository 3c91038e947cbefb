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
}


@cache
def country_codes() -> frozenset[str]:
    return frozenset(country.alpha_3 for country in pycountry.countries) | frozenset(CAMEO_ONLY_COUNTRIES)


@cache
def country_code(name: str) -> str | None:
    """The code of a country's name (ISO names, common names, ICEWS spellings); None if unknown."""
    key = name.strip().lower()
    if key in NAME_OVERRIDES:
        return NAME_OVERRIDES[key]
    try:
        return str(pycountry.countries.lookup(key).alpha_3)
    except LookupError:
        return None
