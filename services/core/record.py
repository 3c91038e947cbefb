"""The base of the records the core builds at every event (a score, a standing, totals...).

They are dataclasses whose `__init__` is written out and whose fields are `Final`. Compiled
(see setup.py), a written `__init__` is native code, where the one a dataclass generates runs
interpreted, as a NamedTuple's `__new__` does: about 15 and 4 times the cost, which came to
a third of the core's instructions. `Final` keeps the fields read-only, as `frozen` did: for
mypy, and at run time once compiled.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class Record:
    """Pickled as its fields, passed back to its `__init__` in their order (a part of a split
    backtest hands back its steps and dyad states). Compiled, a class with a written `__init__`
    cannot be created empty and filled in, which is how pickle would rebuild it otherwise."""

    __slots__ = ()  # interpreted, a slotted record (`Entry`) stays without a __dict__

    def __reduce__(self) -> tuple[type[Record], tuple[Any, ...]]:
        return type(self), tuple(getattr(self, each.name) for each in fields(self))  # type: ignore[arg-type]
