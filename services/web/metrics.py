"""The worker's Prometheus metrics, served at /metrics beside Faust's own sensor metrics (which
the Kafka side puts in the same registry).

Real event feeds have thousands of dyads; a label per dyad would swamp Prometheus. At most
`max_dyads` dyads carry labels at once: the most recently active. When a new dyad needs a
place, the least recently active one loses its series (its counters restart from zero if it
comes back, which `rate()` and `increase()` take in their stride).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.outputs import Alert, IndexUpdate
from services.core.engine import Fate

COUNTED_AS: dict[Fate | Literal["rejected"], str] = {
    "accepted": "accepted",
    "corroborated": "corroborated",
    "duplicate": "duplicate",
    "rejected": "rejected",
    "conflicting": "rejected",
    "retraction-applied": "retraction",
    "retraction-pending": "retraction",
    "retracted": "ignored",
    "expired": "ignored",
    "no-dyad": "ignored",
}
"""`crisismon_events_total{outcome}` by what became of a record: rejected ones went to the
dead-letter topic (conflicting copies of a held event too); corroborated ones add source rows
to an event already counted (GDELT's repeats); ignored ones are valid but change no index (no
dyad, later than the lateness, already retracted)."""

API_OUTCOMES = ("accepted", "rejected", "unacknowledged")
"""`crisismon_api_events_total{outcome}`: what became of the records POSTed to /api/events."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerMetrics:
    """One registry per worker (not the global one), so tests can run several in a process."""

    def __init__(self, max_dyads: int) -> None:
        self.registry = CollectorRegistry()
        self.max_dyads = max_dyads
        self._dyads: OrderedDict[str, _Labelled] = OrderedDict()
        self.escalation_index = Gauge(
            "crisismon_escalation_index",
            "Escalation index of the dyad at its latest event",
            ["dyad"],
            registry=self.registry,
        )
        self.de_escalation_index = Gauge(
            "crisismon_de_escalation_index",
            "De-escalation index of the dyad at its latest event",
            ["dyad"],
            registry=self.registry,
        )
        self.level = Gauge(
            "crisismon_level",
            "Alert level of the dyad: 0 normal, 1 watch, 2 warning, 3 critical",
            ["dyad"],
            registry=self.registry,
        )
        self.escalation_baseline = Gauge(
            "crisismon_escalation_baseline",
            "Top of the dyad's normal band for the escalation index, which its level was judged"
            " against at its latest event: levels follow the surge, the index minus this"
            " (0: no normal of its own)",
            ["dyad"],
            registry=self.registry,
        )
        self.de_escalation_baseline = Gauge(
            "crisismon_de_escalation_baseline",
            "Top of the dyad's normal band for the de-escalation index at its latest event"
            " (0: no normal of its own)",
            ["dyad"],
            registry=self.registry,
        )
        self.crisis_since = Gauge(
            "crisismon_crisis_since_timestamp_seconds",
            "Event time, in Unix seconds, when the dyad's open crisis reached warning (the dyad"
            " stays at watch or above until it is resolved or quiet). No series while no crisis is"
            " open, so count() counts open crises and no 0 reads as a crisis open since 1970",
            ["dyad"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "crisismon_alerts",
            "Alerts published",
            labelnames=["dyad", "kind", "level"],
            registry=self.registry,
        )
        self.events = Counter(
            "crisismon_events",
            "Records read from crisis.events, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self._counted = {fate: self.events.labels(outcome) for fate, outcome in COUNTED_AS.items()}
        """Each fate's child, bound once: `observe_record` runs for every record."""
        self.processing_seconds = Histogram(
            "crisismon_event_processing_seconds",
            "Wall-clock time to process one record, outputs included",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.event_time_lag = Gauge(
            "crisismon_event_time_lag_seconds",
            "Wall-clock time minus the event time of the latest record processed",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "crisismon_consumer_lag_records",
            "Records not yet processed, per partition this worker reads",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.dyads_labelled = Gauge(
            "crisismon_dyads_labelled", "Dyads that currently carry labels here", registry=self.registry
        )
        self.dyads_evicted = Counter(
            "crisismon_dyads_evicted",
            "Dyads whose series were dropped to keep at most max_dyads labelled",
            registry=self.registry,
        )
        self.api_events = api_events_counter(self.registry)
        self.stall_seconds = Gauge(
            "crisismon_worker_stall_seconds",
            "How long the worker has been stuck, by check (group: no partitions; partition: records"
            " wait, none processed; event-loop: blocked; kafka: the broker does not answer; topics:"
            " a topic it needs is missing), once past the check's limit; 0 while fine. Past twice"
            " the limit the worker exits for a restart (kafka and topics: at the limit)",
            ["check"],
            registry=self.registry,
        )

    def observe_stall(self, check: str, seconds: float) -> None:
        self.stall_seconds.labels(check).set(seconds)

    def observe_index(self, update: IndexUpdate, partition: int) -> None:
        labelled = self._admit(update.dyad, partition)
        escalation, de_escalation, level, escalation_baseline, de_escalation_baseline = labelled.series
        escalation.set(update.escalation_index)
        de_escalation.set(update.de_escalation_index)
        level.set(update.level.rank)
        escalation_baseline.set(update.escalation_baseline)
        de_escalation_baseline.set(update.de_escalation_baseline)
        if update.crisis_since is not None:
            self.crisis_since.labels(update.dyad).set(update.crisis_since.timestamp())
            labelled.crisis_open = True
        elif labelled.crisis_open:
            self.crisis_since.remove(update.dyad)
            labelled.crisis_open = False

    def observe_alert(self, alert: Alert, partition: int) -> None:
        self._admit(alert.dyad, partition).alert_labels.add((alert.kind, alert.level.value))
        self.alerts.labels(alert.dyad, alert.kind, alert.level.value).inc()

    def observe_record(
        self, fate: Fate | Literal["rejected"], seconds: float, event_time: datetime | None, now: datetime
    ) -> None:
        self._counted[fate].inc()
        self.processing_seconds.observe(seconds)
        if event_time is not None:
            self.event_time_lag.set((now - event_time).total_seconds())

    def observe_lag(self, topic: str, partition: int, records: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(records)

    def forget_partitions(self, topic: str, partitions: set[int]) -> None:
        """Drop the series of dyads and lags on partitions of `topic` this worker no longer
        reads: their new owner reports them now, and stale values here would contradict it."""
        for dyad in [dyad for dyad, labelled in self._dyads.items() if labelled.partition in partitions]:
            self._forget(dyad)
        self.dyads_labelled.set(len(self._dyads))
        for partition in partitions:
            with suppress(KeyError):
                self.consumer_lag.remove(topic, str(partition))

    def _admit(self, dyad: str, partition: int) -> _Labelled:
        """Mark the dyad as the most recently active; evict the least recent beyond the budget."""
        if dyad in self._dyads:
            self._dyads.move_to_end(dyad)
            return self._dyads[dyad]
        series = tuple(gauge.labels(dyad) for gauge in self._bound_gauges())
        labelled = self._dyads[dyad] = _Labelled(partition, series)
        while len(self._dyads) > self.max_dyads:
            self._forget(next(iter(self._dyads)))
            self.dyads_evicted.inc()
        self.dyads_labelled.set(len(self._dyads))
        return labelled

    def _bound_gauges(self) -> tuple[Gauge, ...]:
        """The gauges whose series each labelled dyad has from the start (`_Labelled.series`)."""
        return (
            self.escalation_index,
            self.de_escalation_index,
            self.level,
            self.escalation_baseline,
            self.de_escalation_baseline,
        )

    def _dyad_gauges(self) -> tuple[Gauge, ...]:
        """The gauges with one series per labelled dyad, all fed by `observe_index`: those bound,
        and `crisis_since`, whose series is there only while the dyad's crisis is open."""
        return (*self._bound_gauges(), self.crisis_since)

    def _forget(self, dyad: str) -> None:
        labelled = self._dyads.pop(dyad)
        for gauge in self._dyad_gauges():
            with suppress(KeyError):
                gauge.remove(dyad)
        for kind, level in labelled.alert_labels:
            self.alerts.remove(dyad, kind, level)


def api_events_counter(registry: CollectorRegistry | None) -> Counter:
    """Records POSTed to /api/events by outcome; with no registry, a counter nobody exports
    (for a web app built without the worker's metrics)."""
    counter = Counter(
        "crisismon_api_events",
        "Records POSTed to /api/events, by outcome: accepted (Kafka acknowledged them), rejected"
        " (invalid, or too far ahead of the clock), unacknowledged (valid, but Kafka did not confirm"
        " them)",
        ["outcome"],
        registry=registry,
    )
    for outcome in API_OUTCOMES:
        counter.labels(outcome)
    return counter


@dataclass
class _Labelled:
    partition: int
    series: tuple[Gauge, ...]
    """Its series of the index, level and band gauges, bound once: a dyad's gauges are set at
    every batch that changed it, and `labels()` looks its series up under a lock each time."""
    alert_labels: set[tuple[str, str]] = field(default_factory=set)
    """The (kind, level) pairs the dyad's alert counter has."""
    crisis_open: bool = False
    """Whether it has a `crisis_since` series."""
