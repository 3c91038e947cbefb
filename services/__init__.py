"""CrisisMon's services: the pure core, the backtest, the CLI (and, later, the stream processors)."""
