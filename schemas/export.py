"""The topic contracts as files: one JSON Schema and one example per model.

`schemas/json/<Model>.schema.json` and `schemas/examples/<Model>.json` are generated from
the pydantic models; CI checks they are not stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.events import CrisisEvent, Retraction
from schemas.outputs import Alert, DeadLetter, IndexUpdate
from schemas.progress import FollowedFile

MODELS: tuple[type[BaseModel], ...] = (CrisisEvent, Retraction, IndexUpdate, Alert, DeadLetter, FollowedFile)
SCHEMAS_DIR = Path(__file__).parent


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def rendered_files(root: Path = SCHEMAS_DIR) -> dict[Path, str]:
    """Every generated file's path and the text it should have."""
    files = {}
    for model in MODELS:
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"crisismon/{model.__name__}.schema.json"
        files[root / "json" / f"{model.__name__}.schema.json"] = _dump(schema)
        example = model.model_config.get("json_schema_extra", {})["examples"][0]  # type: ignore[index]
        files[root / "examples" / f"{model.__name__}.json"] = _dump(example)
    return files


def stale_files(root: Path = SCHEMAS_DIR) -> list[Path]:
    return [
        path
        for path, text in rendered_files(root).items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def export(root: Path = SCHEMAS_DIR) -> list[Path]:
    written = []
    for path, text in rendered_files(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
