"""Faust's own metrics (faust_*: messages, commits, rebalances, sends), without the per-record cost.

faust-streaming's `PrometheusMonitor` updates eight series for every record and event, three of
them through a `labels()` lookup (one labelled by partition, one by a formatted stream name) and
one a histogram: measured side by side, three runs each on a backlog of 20,000 events, the
worker did 2,100-2,350 events/s with it and 2,260-2,500 with this one. Per record, this one
counts only the messages received, in total and by topic (a child bound once per topic); the
series it would update per record besides are left out of the registry rather than shown frozen
at 0. What they told is told per record by the worker's own metrics (crisismon_events_total by
outcome, crisismon_event_processing_seconds). A partition's end offset, which Faust reports per
record, is set when it moves. Everything Faust reports per commit, rebalance or table operation
is as in `PrometheusMonitor`; its per-send series count what Faust sends itself
(the table's changelog), since the worker's outputs go on the producer directly (`BatchedTopic`).
"""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry

PER_RECORD_SERIES = (
    "active_messages",
    "messages_received_per_topics_partition",
    "events_runtime_latency",
    "total_events",
    "total_active_events",
    "total_events_per_stream",
)
"""`FaustMetrics` fields `PrometheusMonitor` updates per record that `FaustSensors` leaves out."""


class FaustSensors(PrometheusMonitor):
    """`PrometheusMonitor` with only the messages received counted per record. Faust's own
    bookkeeping (`Monitor`: what its livelock checks read) is kept whole."""

    def __init__(self, metrics: FaustMetrics) -> None:
        super().__init__(metrics=metrics)
        self._received_by_topic: dict[str, Any] = {}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        self._metrics.messages_received.inc()
        by_topic = self._received_by_topic.get(tp.topic)
        if by_topic is None:
            by_topic = self._metrics.messages_received_per_topics.labels(topic=tp.topic)
            self._received_by_topic[tp.topic] = by_topic
        by_topic.inc()

    def _clear_partition_related_metrics(self) -> None:
        """At each rebalance Faust removes the per-topic series; they are bound again as
        messages come (a child kept past its removal would count unexported)."""
        super()._clear_partition_related_metrics()
        self._received_by_topic.clear()

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        """Faust calls it for every record it reads, with the partition's end offset, which moves
        once per fetch: the gauge is set when it moves. (`tp_end_offsets`, the last value set,
        is cleared with the series at each rebalance.)"""
        if self.tp_end_offsets.get(tp) != offset:
            super().track_tp_end_offset(tp, offset)

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[Any, Any] | None:
        return Monitor.on_stream_event_in(self, tp, offset, stream, event)

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[Any, Any] | None = None
    ) -> None:
        Monitor.on_stream_event_out(self, tp, offset, stream, event, state)

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        Monitor.on_message_out(self, tp, offset, message)


def faust_sensors(registry: CollectorRegistry) -> FaustSensors:
    """Faust's sensor metrics in `registry`, as faust_*, less the `PER_RECORD_SERIES`."""
    metrics = FaustMetrics.create(registry, "faust")
    for name in PER_RECORD_SERIES:
        registry.unregister(getattr(metrics, name))
    return FaustSensors(metrics)
