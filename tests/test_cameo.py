import pytest

from schemas.cameo import REFERENCE_DIR, cameo_codes, goldstein_scale


def test_gdelt_scale_equals_gdelts_own_lookup_file() -> None:
    lines = (REFERENCE_DIR / "CAMEO.goldsteinscale.txt").read_text().splitlines()[1:]
    published = {code: float(score) for code, score in (line.split("\t") for line in lines)}
    assert goldstein_scale("gdelt").scores == published


def test_code_descriptions_cover_every_code() -> None:
    assert len(cameo_codes()) == 312
    assert cameo_codes()["195"].description == "Employ aerial weapons"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("0256", -0.3), ("195", -10.0), ("1213", -4.0)],  # 1213 is missing: falls back to 121
)
def test_lookup_falls_back_to_parent_then_root(code: str, expected: float) -> None:
    assert goldstein_scale("gdelt").score(code) == expected


def test_scales_are_named_and_versioned() -> None:
    gdelt, icews = goldstein_scale("gdelt"), goldstein_scale("icews")
    assert gdelt.score("016") == -2.0 and icews.score("016") == -5.0
    assert gdelt.version != icews.version
    assert gdelt.version.startswith("sha256:")


def test_unknown_scale_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown Goldstein scale"):
        goldstein_scale("nope")
