"""Imports go one way: schemas ← core ← adapters ← entry points.

The adapters (files, Kafka, the web side, the backtest) know the core and the contracts, not
each other: `services/bootstrap.py` wires the worker's Kafka and web sides together. The one
allowed edge between adapters is the backtest reading files through the readers. Lazy imports
inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("schemas", "services", "replay", "devtools")

LAYERS = {
    "schemas": 0,
    "services.core": 1,
    "replay": 2,
    "services.kafka": 2,
    "services.web": 2,
    "services.backtest": 2,
    "services.settings": 3,
    "services.bootstrap": 3,
    "services.demo": 3,
    "services.cli": 3,
    "devtools": 3,
}
ADAPTER_EDGES = {("services.backtest", "replay")}
"""Adapter → adapter imports that are part of the design (and so are not a knot)."""


def component(module: str) -> str:
    """The longest LAYERS key that `module` is or lies under."""
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return max(matches, key=len)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found.update(name for name in names if name.split(".")[0] in PACKAGES and name != "services")
    return found


def sources() -> list[Path]:
    """Every module but `services/__init__.py`, the namespace the layers share."""
    every = (path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    return sorted(path for path in every if module_name(path) != "services")


def violations(module: str, imports: set[str]) -> list[str]:
    source = component(module)
    problems = []
    for imported in sorted(imports):
        try:
            target = component(imported)
        except AssertionError:
            continue  # `from services.web import app`-style names resolve through their module
        if target == source:
            continue
        if LAYERS[target] > LAYERS[source]:
            problems.append(f"{source} (layer {LAYERS[source]}) imports {imported} (layer {LAYERS[target]})")
        elif LAYERS[target] == LAYERS[source] == 2 and (source, target) not in ADAPTER_EDGES:
            problems.append(f"adapter {source} imports adapter {imported}: wire them in services.bootstrap")
    return problems


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_go_one_way(path: Path) -> None:
    assert violations(module_name(path), project_imports(path)) == []


def test_the_check_catches_a_wrong_import() -> None:
    """The rule is live: the core reaching up, or one adapter into another, is reported."""
    assert violations("services.core.engine", {"services.kafka.topics"})
    assert violations("schemas.events", {"services.core.config"})
    assert violations("services.web.app", {"services.kafka.feed"})
    assert violations("replay.producer", {"services.kafka.topics"})
    assert violations("services.kafka.worker", {"services.settings"})
    assert not violations("services.backtest.run", {"replay.ordering", "services.core.curve"})
    assert not violations("services.bootstrap", {"services.kafka.feed", "services.web.app"})
