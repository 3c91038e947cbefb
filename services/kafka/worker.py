"""The stream processor: `crisis.events` in, index updates, alerts and dead letters out.

One Faust agent with concurrency 1 per partition (stateful: see the faust notes in the
README). Each dyad's state lives in a Faust table (RocksDB in real runs) as a snapshot of
the core's `DyadState`; the core does all the computing, in event time.

Order of work for one record, chosen so that a crash can repeat an output but never lose
one: compute, publish the outputs, then save the state. If the worker dies after saving
but before its outputs left the process, the record comes again after the restart, is a
duplicate for the saved state, and its alerts are published again with the same ids.

Beside the agent: the web side (`services.web.app`: dashboard, API, /metrics) served from a
view of the topics, and two guards against faust-streaming's offset races (`watchdog.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
from pydantic import ValidationError

from schemas.events import MAX_RECORD_BYTES, parse_record
from schemas.outputs import DeadLetter
from schemas.validation import describe
from services.core import EngineConfig
from services.core.dyad import DyadState
from services.core.engine import Outcome, Status, apply
from services.core.timeutil import too_far_ahead
from services.kafka.feed import Feed
from services.kafka.topics import PARTITIONS, Topics, ensure_topics, reference_time
from services.kafka.watchdog import CommitWatchdog, OffsetGuard
from services.settings import Settings
from services.web.app import WebApp
from services.web.metrics import WorkerMetrics
from services.web.projection import Projection
from services.web.stream import Broadcaster

log = logging.getLogger(__name__)

OUTCOME_LABELS: dict[Status, str] = {
    "accepted": "accepted",
    "duplicate": "duplicate",
    "retraction-applied": "retraction",
    "retraction-pending": "retraction",
    "retracted": "ignored",
    "expired": "ignored",
    "no-dyad": "ignored",
}
LAG_INTERVAL_SECONDS = 5.0


@dataclass
class Processor:
    """Everything the agent does to one Kafka record, with its collaborators passed in."""

    config: EngineConfig
    table: Any
    topics: dict[str, Any]
    watchdog: CommitWatchdog
    guard: OffsetGuard
    metrics: WorkerMetrics
    max_future_skew: timedelta
    states: dict[str, DyadState] = field(default_factory=dict)
    """Dyad states already restored from the table; dropped when partitions move."""

    def state_of(self, dyad: str) -> DyadState:
        if dyad not in self.states:
            saved = self.table.get(dyad.encode())
            self.states[dyad] = (
                DyadState.restore(orjson.loads(zlib.decompress(saved))) if saved else DyadState(dyad)
            )
        return self.states[dyad]

    async def handle(self, event: faust.types.EventT[bytes]) -> None:
        started = time.perf_counter()
        message = event.message
        for skipped in await self.guard.skipped_before(message):
            produced_at = skipped.timestamp / 1000  # aiokafka's records carry milliseconds, Faust's seconds
            await self.process_timed(skipped.value or b"", skipped, produced_at, time.perf_counter())
        self.watchdog.record(message.tp, message.offset)
        await self.process_timed(event.value or b"", message, message.timestamp, started)

    async def process_timed(
        self, raw: bytes, message: Any, produced_at: float | None, started: float
    ) -> None:
        outcome, event_time = await self.process(raw, message, produced_at)
        self.metrics.observe_record(outcome, time.perf_counter() - started, event_time, datetime.now(UTC))

    async def process(
        self, raw: bytes, message: Any, produced_at: float | None
    ) -> tuple[str, datetime | None]:
        """Returns the record's `crisismon_events_total` outcome and its event time.

        Whatever a record holds, it costs at most itself: refused records go to the
        dead-letter topic with the reason, and an error of the engine's own is logged and
        dead-lettered too. Only Kafka failing to take the outputs stops the worker.
        """
        try:
            record = parse_record(raw)
        except (ValidationError, ValueError) as error:
            return await self.reject(raw, describe(error), message)
        if refusal := too_far_ahead(record.event_time, reference_time(produced_at), self.max_future_skew):
            return await self.reject(raw, refusal, message)
        dyad = record.dyad
        key = message.key.decode("utf-8", "replace") if message.key else None
        if dyad is None:
            return "ignored", record.event_time  # it stays in the log; there is no dyad index to update
        if key != dyad:
            return await self.reject(raw, f"record key {key!r} is not its dyad {dyad!r}", message)
        try:
            state = self.state_of(dyad)
            outcome = apply(state, record, self.config)
        except Exception as error:  # a bug of ours must cost one record, not the worker
            log.exception("the engine failed on %s[%s]@%s", message.topic, message.partition, message.offset)
            self.states.pop(dyad, None)  # it may be half-changed: the saved one is restored
            return await self.reject(raw, f"the engine failed on this record: {error!r}", message)
        await self.publish(state, outcome, message.partition)
        if outcome.index_update is not None:
            self.table[dyad.encode()] = zlib.compress(orjson.dumps(state.snapshot()), 1)
        return OUTCOME_LABELS[outcome.status], record.event_time

    async def publish(self, state: DyadState, outcome: Outcome, partition: int) -> None:
        key = state.dyad.encode()
        index = outcome.index_update or outcome.repeated_index
        if index is not None:
            await self.topics["index"].send(key=key, value=index.model_dump_json().encode())
            self.metrics.observe_index(index, partition)
        for alert in outcome.alerts:
            self.metrics.observe_alert(alert, partition)
        emitted_at = datetime.now(UTC)
        for alert in (*outcome.alerts, *outcome.repeats):
            stamped = alert.model_copy(update={"emitted_at": emitted_at})
            await self.topics["alerts"].send(key=key, value=stamped.model_dump_json().encode())
            log.info(
                "alert %s %s %s → %s (%s)",
                alert.alert_id[:12],
                alert.dyad,
                alert.previous_level,
                alert.level,
                alert.reason_code,
            )

    async def reject(self, raw: bytes, reason: str, message: Any) -> tuple[str, None]:
        await self.dead_letter(raw, reason, message)
        return "rejected", None

    async def dead_letter(self, raw: bytes, reason: str, message: Any) -> None:
        text = raw.decode("utf-8", errors="backslashreplace")
        letter = DeadLetter(
            reason=reason[:2000],
            raw=text[:MAX_RECORD_BYTES],
            raw_truncated=len(text) > MAX_RECORD_BYTES,
            origin=message.topic,
            partition=message.partition,
            offset=message.offset,
            received_at=datetime.now(UTC),
        )
        log.warning(
            "dead letter from %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason
        )
        await self.topics["dlq"].send(value=letter.model_dump_json().encode())


def create_app(settings: Settings) -> faust.App:
    """The Faust app for these settings; the caller runs it (see `run_worker`)."""
    topics = Topics(settings.namespace)
    engine_config = settings.engine_config()
    app = faust.App(
        topics.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=settings.store,
        datadir=str(settings.data_dir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # Faust waits 20 minutes by default for a produce response, and every offset commit
        # waits for the producer: one lost response would stall commits that long.
        producer_request_timeout=30.0,
        # Table writes are whole dyad snapshots (zlib-compressed JSON, a few KiB): let them
        # share batches, or Faust's producer buffer fills and stalls the stream.
        producer_max_batch_size=512 * 1024,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        web_enabled=False,  # the worker serves its own web app (services.web.app)
    )
    metrics = WorkerMetrics(settings.metrics_max_dyads)
    app.monitor = metrics.faust_monitor()
    events = app.topic(topics.events, partitions=PARTITIONS)
    table = app.Table("dyads", partitions=PARTITIONS, key_type=bytes, value_type=bytes)
    watchdog = CommitWatchdog(settings.kafka_bootstrap, topics.app_id)
    processor = Processor(
        watchdog=watchdog,
        guard=OffsetGuard(settings.kafka_bootstrap, watchdog.committed),
        metrics=metrics,
        config=engine_config,
        max_future_skew=settings.max_future_skew,
        table=table,
        topics={
            "index": app.topic(topics.index, partitions=PARTITIONS),
            "alerts": app.topic(topics.alerts, partitions=PARTITIONS),
            "dlq": app.topic(topics.dead_letters, partitions=1),
        },
    )

    @app.agent(events, concurrency=1)
    async def process(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await processor.handle(event)

    @app.timer(interval=watchdog.idle_seconds)  # type: ignore[untyped-decorator]
    async def unstick_commits() -> None:
        await watchdog.check(app.consumer)

    @app.timer(interval=LAG_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        partitions = [tp for tp in app.consumer.assignment() if tp.topic == topics.events]
        ends = await app.consumer.highwaters(*partitions) if partitions else {}
        for tp, end in ends.items():
            processed = watchdog.processed.get(tp)
            next_offset = processed[0] + 1 if processed else await app.consumer.position(tp)
            if next_offset is not None:
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, end - next_offset))

    def forget_states(*_: Any, **__: Any) -> None:
        processor.states.clear()
        processor.guard.forget()

    def forget_revoked(*args: Any, **_: Any) -> None:
        _sender, revoked = args  # faust sends (app, revoked topic-partitions)
        forget_states()
        metrics.forget_partitions({tp.partition for tp in revoked if tp.topic == topics.events})
        for tp in revoked:
            with suppress(KeyError):
                metrics.consumer_lag.remove(tp.topic, str(tp.partition))

    app.on_partitions_revoked.connect(forget_revoked)
    app.on_partitions_assigned.connect(forget_states)

    token = settings.api_token.get_secret_value() if settings.api_token else None
    feed = Feed(
        settings.kafka_bootstrap,
        topics,
        Projection(settings.api_max_events, settings.api_history_per_dyad, engine_config.scale),
        Broadcaster(),
        settings.max_future_skew,
    )
    web = WebApp(feed, metrics, engine_config, settings.web_host, settings.web_port, token)

    @app.task  # type: ignore[untyped-decorator]
    async def serve_web() -> None:
        await web.serve()

    app.crisismon_processor = processor  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings) -> None:
    """Create the topics if missing, then run the worker until stopped (SIGINT/SIGTERM)."""
    from faust.worker import Worker

    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics(settings.namespace)))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    Worker(app, loglevel=settings.log_level.lower()).execute_from_commandline()
