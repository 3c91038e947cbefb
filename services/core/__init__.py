"""The pure core: scoring, indices, levels and alerts. No I/O, no clock, no Kafka.

Both engines (the Faust worker and the offline backtest) call this package unchanged,
so what a backtest shows is what the live pipeline publishes.
"""

from services.core.config import EngineConfig
from services.core.engine import Engine, Outcome

__all__ = ["Engine", "EngineConfig", "Outcome"]
