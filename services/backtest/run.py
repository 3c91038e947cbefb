"""Run event files through the core in play order and keep what happened."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from replay.ordering import read_in_play_order
from replay.readers import BadRow, Located
from schemas.outputs import Alert
from services.core import Engine, EngineConfig, Outcome


@dataclass(frozen=True)
class Step:
    item: Located
    outcome: Outcome


@dataclass
class BacktestResult:
    config: EngineConfig
    steps: list[Step] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def alerts(self) -> list[Alert]:
        return [alert for step in self.steps for alert in step.outcome.alerts]

    @property
    def counts(self) -> Counter[str]:
        return Counter(step.outcome.status for step in self.steps)

    def dyads(self) -> list[str]:
        """Dyads in order of their first event."""
        seen = dict.fromkeys(s.outcome.dyad for s in self.steps if s.outcome.dyad is not None)
        return list(seen)

    def steps_of(self, dyad: str) -> list[Step]:
        return [step for step in self.steps if step.outcome.dyad == dyad]


def run_backtest(paths: Iterable[Path], config: EngineConfig, file_format: str = "auto") -> BacktestResult:
    """Read every file (InputError if one can't be read), then play its records in order."""
    located, bad_rows = read_in_play_order(paths, file_format)
    engine = Engine(config)
    steps = [Step(item, engine.process(item.record)) for item in located]
    return BacktestResult(config, steps, bad_rows)
