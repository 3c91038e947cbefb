"""The build: setuptools, and, with CRISISMON_COMPILE_CORE=1, the engine's core compiled by mypyc.

The core stays pure Python: mypyc compiles the same source, by its type hints, to C extension
modules that give the same results (the same alerts and index updates, bit for bit) about a
third faster, in the worker and the backtest alike (README, "Performance"). `make setup`
compiles it, in the venv, whose mypy and pydantic it needs: `pip install --no-build-isolation`.
Without the variable, a plain install runs the same modules interpreted.
"""

import os

from setuptools import setup

COMPILED = [
    "services/core/baseline.py",
    "services/core/curve.py",
    "services/core/decay.py",
    "services/core/dyad.py",
    "services/core/engine.py",
    "services/core/levels.py",
    "services/core/record.py",
    "services/core/scoring.py",
    "services/core/timeutil.py",
]
"""Every module of the core but config.py, whose pydantic models mypyc cannot compile."""

if os.environ.get("CRISISMON_COMPILE_CORE") == "1":
    from mypyc.build import mypycify

    # One shared library, inside the package (services/core/compiled__mypyc*.so), where an
    # editable install finds it.
    setup(ext_modules=mypycify(COMPILED, opt_level="3", group_name="services.core.compiled"))
else:
    setup()
