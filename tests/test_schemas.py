import json
from datetime import datetime, timedelta

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from schemas.actors import ActorRole
from schemas.events import Actor, parse_record
from schemas.events import _log_record as LogRecordAdapter
from schemas.export import MODELS, SCHEMAS_DIR, rendered_files, stale_files
from schemas.outputs import Alert, IndexUpdate, Level
from tests.builders import event

EXAMPLE = json.loads((SCHEMAS_DIR / "examples" / "CrisisEvent.json").read_text())


def test_committed_schema_files_are_current() -> None:
    assert stale_files() == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_example_validates_against_its_schema_and_model(model: type[BaseModel]) -> None:
    schema = json.loads((SCHEMAS_DIR / "json" / f"{model.__name__}.schema.json").read_text())
    example = json.loads((SCHEMAS_DIR / "examples" / f"{model.__name__}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(example, schema)
    model.model_validate_json(json.dumps(example))


def test_export_renders_one_schema_and_one_example_per_model(tmp_path) -> None:
    files = rendered_files(tmp_path)
    assert len(files) == 2 * len(MODELS)


def _with(**changes: object) -> str:
    return json.dumps({**EXAMPLE, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_time": "2024-01-16T16:00:00"}, "timezone"),
        ({"cameo_code": "999"}, "unknown CAMEO code"),
        ({"goldstein": -11}, "greater than or equal to -10"),
        ({"weight": -1}, "greater than or equal to 0"),
        ({"summary": "x" * 1001}, "at most 1000"),
        ({"surprise": 1}, "Extra inputs"),
        ({"event_id": ""}, "at least 1"),
        ({"source": {"name": "Iran", "country": "Iran"}}, "pattern"),
    ],
)
def test_bad_events_are_refused_with_a_clear_reason(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_record(_with(**changes))


def test_event_time_is_stored_as_utc() -> None:
    parsed = parse_record(_with(event_time="2024-01-16T21:00:00+05:00"))
    assert parsed.event_time == datetime.fromisoformat("2024-01-16T16:00:00+00:00")
    assert parsed.event_time.utcoffset() == timedelta(0)


def test_a_record_with_retracts_is_a_retraction() -> None:
    example = json.loads((SCHEMAS_DIR / "examples" / "Retraction.json").read_text())
    assert type(parse_record(json.dumps(example))).__name__ == "Retraction"


def test_parse_record_reads_every_record_as_the_tagged_union_does() -> None:
    """Events are read in one pass, the rest by the union: the same records, the same errors."""
    retraction = json.loads((SCHEMAS_DIR / "examples" / "Retraction.json").read_text())
    for raw in (
        _with(),
        json.dumps(retraction),
        _with(cameo_code="999"),
        _with(retracts="pkir24-005"),
        json.dumps({**retraction, "reason": ""}),
        "[]",
        "{",
    ):
        try:
            expected: object = LogRecordAdapter.validate_json(raw)
        except ValidationError as error:
            with pytest.raises(ValidationError) as refused:
                parse_record(raw)
            assert str(refused.value) == str(error)
        else:
            assert parse_record(raw) == expected and type(parse_record(raw)) is type(expected)


@pytest.mark.parametrize(
    ("source", "target", "dyad"),
    [("PAK", "IRN", "IRN-PAK"), ("IRN", "PAK", "IRN-PAK"), ("IRN", "IRN", None)],
)
def test_dyad_is_the_sorted_country_pair(source: str, target: str, dyad: str | None) -> None:
    assert event("e", source=source, target=target).dyad == dyad


def test_an_actor_without_country_gives_no_dyad() -> None:
    un = parse_record(_with(source={"code": "IGOUNO", "name": "United Nations", "country": None}))
    assert un.dyad is None


def test_an_index_update_published_before_triggered_at_still_reads() -> None:
    example = json.loads((SCHEMAS_DIR / "examples" / "IndexUpdate.json").read_text())
    del example["triggered_at"]
    jsonschema.validate(example, json.loads((SCHEMAS_DIR / "json" / "IndexUpdate.schema.json").read_text()))
    assert IndexUpdate.model_validate_json(json.dumps(example)).triggered_at is None


def test_an_alert_touches_the_levels_it_rises_to_or_falls_from_and_those_below() -> None:
    rise = Alert.model_validate_json((SCHEMAS_DIR / "examples" / "Alert.json").read_text())
    fall = rise.model_copy(update={"previous_level": Level.WARNING, "level": Level.WATCH})
    assert (rise.previous_level, rise.level) == (Level.NORMAL, Level.WATCH)
    assert [level for level in Level if rise.touches(level)] == [Level.NORMAL, Level.WATCH]
    assert [level for level in Level if fall.touches(level)] == [Level.NORMAL, Level.WATCH, Level.WARNING]


def test_a_copy_of_an_actor_reads_its_role_from_its_own_code() -> None:
    """An actor caches the role it reads from its CAMEO code; a copy with another code reads
    its own (pydantic's copy would carry the cached role over), and is validated."""
    government = Actor(code="IRNGOV", name="Iran", country="IRN")
    assert government.acting_role is ActorRole.STATE  # now cached
    rebels = government.model_copy(update={"code": "IRNREB"})
    assert (rebels.code, rebels.acting_role) == ("IRNREB", ActorRole.NON_STATE)
    with pytest.raises(ValidationError):
        government.model_copy(update={"country": "Iran"})
