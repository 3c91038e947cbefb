"""The core as `make setup` installs it: compiled by mypyc (setup.py), from the source as it is
now, and giving what the same source gives interpreted.

The compiled modules are what the worker and the backtest run, so the suite tests them: a core
left interpreted, or compiled from an older source, fails here rather than pass unnoticed.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
COMPILED: list[str] = next(
    ast.literal_eval(node.value)
    for node in ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")).body
    if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "COMPILED"
)
DATA = ROOT / "replay" / "data"
LIBRARY = [*sorted((DATA / "crises").glob("*.jsonl")), DATA / "pakistan-iran-2024.jsonl"]


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_setup_compiles_every_module_of_the_core_but_its_configuration() -> None:
    core = {f"services/core/{path.name}" for path in (ROOT / "services" / "core").glob("*.py")}
    assert set(COMPILED) == core - {"services/core/__init__.py", "services/core/config.py"}


@pytest.mark.parametrize("path", COMPILED)
def test_the_core_runs_compiled_from_its_current_source(path: str) -> None:
    module = importlib.import_module(module_of(path))
    built = Path(module.__file__ or "")
    assert built.name.endswith(tuple(EXTENSION_SUFFIXES)), f"{path} runs interpreted: run `make setup`"
    extension = next((ROOT / path).parent.glob(f"{built.name.split('.')[0]}.*.so"))
    assert extension.stat().st_mtime >= (ROOT / path).stat().st_mtime, (
        f"{path} changed after it was compiled: run `make setup`"
    )


def alerts(tree: Path, tmp_path: Path) -> list[dict[str, object]]:
    """The library's alerts from the packages under `tree` (`emitted_at` aside: a clock's)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", "from services.cli import main; main()", "backtest", "--json"]
    run = subprocess.run(
        [*command, *map(str, LIBRARY)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return [{k: v for k, v in line.items() if k != "emitted_at"} for line in lines]


def test_the_compiled_core_gives_what_the_interpreted_one_gives(tmp_path: Path) -> None:
    """The crisis library through the installed (compiled) core, and through a copy of the
    packages without the compiled modules: the same alerts, field for field."""
    interpreted = tmp_path / "interpreted"
    for package in ("schemas", "services", "replay"):
        ignored = shutil.ignore_patterns("*.so", "__pycache__", "data")
        shutil.copytree(ROOT / package, interpreted / package, ignore=ignored)
    probe = [sys.executable, "-c", "import services.core.dyad as m; print(m.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(interpreted)}
    where = subprocess.run(probe, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().endswith("dyad.py"), where
    compiled = alerts(ROOT, tmp_path)
    assert compiled, "the library raises alerts"
    assert compiled == alerts(interpreted, tmp_path)
