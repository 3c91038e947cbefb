"""What a follower says on its own /metrics port (the worker's are on its web port)."""

from __future__ import annotations

import math
import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class MetricsPortTaken(Exception):
    """The follower's /metrics port cannot be served (taken, or not ours to take)."""


class FollowMetrics:
    """One registry per follower (not the global one), so tests can run several in a process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._newest: float | None = None
        self.files = Counter(
            "crisismon_follow_files_total",
            "Files finished with: produced, or failed after every try (reported and skipped)",
            ["outcome"],
            registry=self.registry,
        )
        self.failed_tries = Counter(
            "crisismon_follow_failed_tries_total",
            "Tries to fetch or read a file that failed (each is tried again, up to follow_attempts)",
            registry=self.registry,
        )
        self.rows = Counter(
            "crisismon_follow_rows_total",
            "Rows read from followed files, by what became of them: events (produced, repeats"
            " merged into one record), bad (reported, skipped) or no dyad (counted, not kept)",
            ["outcome"],
            registry=self.registry,
        )
        self.records = Counter(
            "crisismon_follow_records_produced_total",
            "Records produced to crisis.events and acknowledged by Kafka",
            registry=self.registry,
        )
        self.newest_file = Gauge(
            "crisismon_follow_newest_file_timestamp_seconds",
            "When the newest file produced was published (GDELT: the time in its name)",
            registry=self.registry,
        )
        self.last_listing = Gauge(
            "crisismon_follow_last_listing_timestamp_seconds",
            "When the follower last listed its source successfully",
            registry=self.registry,
        )
        lag = Gauge(
            "crisismon_follow_lag_seconds",
            "How far behind the feed the follower is: now minus the newest produced file's"
            " publication time (NaN before the first file)",
            registry=self.registry,
        )
        lag.set_function(self._lag)
        for outcome in ("produced", "failed"):
            self.files.labels(outcome)
        for outcome in ("events", "bad", "no-dyad"):
            self.rows.labels(outcome)

    def _lag(self) -> float:
        return time.time() - self._newest if self._newest is not None else math.nan

    def produced(self, published_at: datetime | None) -> None:
        self.files.labels("produced").inc()
        if published_at is not None:
            self._newest = max(self._newest or 0.0, published_at.timestamp())
            self.newest_file.set(self._newest)

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on host:port in a thread of its own (a daemon: it ends with the process)."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise MetricsPortTaken(
                f"cannot serve /metrics on {host}:{port}: {error.strerror or error}"
            ) from None
