"""CAMEO event codes and the Goldstein conflict-cooperation scales, as versioned data.

The tables live in `schemas/reference/` (see SOURCES.md there). A scale is named
configuration: every index and alert says which scale (and which version of it) it used.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

REFERENCE_DIR = Path(__file__).parent / "reference"
MERGED_TABLE = REFERENCE_DIR / "cameo_goldstein_quadclass_merged.csv"

ScaleName = Literal["gdelt", "icews", "phoenix"]
SCALE_COLUMNS: dict[str, str] = {
    "gdelt": "goldstein_gdelt",
    "icews": "goldstein_icews_parus",
    "phoenix": "goldstein_phoenix",
}


@dataclass(frozen=True)
class CameoCode:
    code: str
    description: str
    root: str


@dataclass(frozen=True)
class GoldsteinScale:
    """One named Goldstein table. `version` is a digest of its values, so any edit shows."""

    name: str
    version: str
    scores: dict[str, float]

    def score(self, cameo_code: str) -> float:
        """The code's score, else its 3-digit parent's, else its 2-digit root's."""
        for prefix in (cameo_code, cameo_code[:3], cameo_code[:2]):
            if prefix in self.scores:
                return self.scores[prefix]
        raise KeyError(f"CAMEO code {cameo_code!r} has no score in the {self.name} scale")


@cache
def _table_rows() -> tuple[dict[str, str], ...]:
    with MERGED_TABLE.open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle))


@cache
def cameo_codes() -> dict[str, CameoCode]:
    """Every valid CAMEO event code (2, 3 and 4 digits), by code."""
    return {
        row["cameo_code"]: CameoCode(
            code=row["cameo_code"],
            description=row["description_gdelt"],
            root=row["root_code"],
        )
        for row in _table_rows()
    }


@cache
def goldstein_scale(name: str = "gdelt") -> GoldsteinScale:
    if name not in SCALE_COLUMNS:
        raise KeyError(f"unknown Goldstein scale {name!r}; known: {', '.join(SCALE_COLUMNS)}")
    column = SCALE_COLUMNS[name]
    scores = {row["cameo_code"]: float(row[column]) for row in _table_rows() if row[column] != ""}
    digest = hashlib.sha256(
        "\n".join(f"{code}\t{score!r}" for code, score in sorted(scores.items())).encode()
    ).hexdigest()
    return GoldsteinScale(name=name, version=f"sha256:{digest[:12]}", scores=scores)
