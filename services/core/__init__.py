"""The pure core: scoring, indices, levels and alerts. No I/O, no clock, no Kafka.

Both engines (the Faust worker and the offline backtest) call this package unchanged,
so what a backtest shows is what the live pipeline publishes. `make setup` and the image
compile its modules (all but config.py) with mypyc from this same source: the same results,
about a third faster (setup.py; tests/test_compiled_core.py holds the two to each other).
"""

from services.core.config import EngineConfig
from services.core.engine import Engine, Outcome

__all__ = ["Engine", "EngineConfig", "Outcome"]
