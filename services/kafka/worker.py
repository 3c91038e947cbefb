"""The stream processor: `crisis.events` in, index updates, alerts and dead letters out.

One Faust agent with concurrency 1 per partition (stateful: see the faust notes in the
README). Each dyad's state lives in a Faust table (RocksDB in real runs) as a snapshot of
the core's `DyadState`, the alerts it published apart (`SavedDyads`); the core does all the
computing, in event time.

The agent takes the stream in batches (`BATCH_MAX_RECORDS`, or what came within
`BATCH_WITHIN_SECONDS`), each in phases (`Processor.process_batch`): every record parsed,
the core run on each in order, their outputs appended in order to a batch per output
partition (`BatchedTopic`), handed to the producer at the end, then each dyad the batch
changed is saved once, and the dyads' gauges set once. Order of work, chosen
so that a crash can repeat an output but never lose one: compute, publish the outputs, then
save the state; offsets are committed only after the whole batch, once the producer has
flushed. If the worker dies after saving but before its outputs left the process, the records
come again after the restart, are duplicates for the saved state, and their alerts are
published again with the same ids.

`Processor` does the work behind small ports (a store for dyad snapshots, the output topics,
the metrics), so it is tested with in-memory fakes; `create_app` puts it in a Faust app with
two guards against faust-streaming's offset races (`watchdog.py`). The whole worker, web
side included, is wired in `services/bootstrap.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, cast

import faust
import orjson
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faust.exceptions import ProducerSendError
from faust.sensors import Sensor
from faust.streams import _current_event as faust_current_event
from faust.types import ProducerT, TableT
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from zstandard import ZstdCompressor, ZstdDecompressor

from schemas.events import MAX_RECORD_BYTES, CrisisEvent, Retraction, parse_record
from schemas.kafka import KafkaConnection
from schemas.outputs import Alert, DeadLetter, IndexUpdate
from schemas.topics import PARTITIONS, Topics
from schemas.validation import describe
from services.core import EngineConfig
from services.core.dyad import DyadState, Published
from services.core.engine import Fate, Outcome, apply
from services.core.timeutil import reference_time, too_far_ahead
from services.kafka.connection import faust_credentials
from services.kafka.health import EXIT_RESTART, WorkerHealth
from services.kafka.outage import BrokerOutage
from services.kafka.sensors import faust_sensors
from services.kafka.topics import BrokerProbe
from services.kafka.transport import faust_app
from services.kafka.watchdog import CommitWatchdog, GapNotRead, OffsetGuard

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0
BATCH_MAX_RECORDS = 1000
BATCH_WITHIN_SECONDS = 0.1
"""A batch is this many records, or those that came within this long: under load, a dyad's
state is written once per batch rather than once per record; when quiet, a record waits at
most this long for company. Each dyad a batch changed costs its save (~0.5 ms live: the
snapshot, the table's write), whatever the batch holds, so a wait too short costs more than
it saves: with 50 ms the worker fell behind 500 events/s (p99 1.7 s to the index update) where
with 100 ms it kept up (p99 0.4-0.5 s) and ran 15% more events a second (README, "what a batch
costs")."""
OUTPUT_LINGER_SECONDS = 0.005
"""Outputs wait this long for others to the same partition, so the producer sends a few
requests per batch rather than one per record."""
CHANGES_STATE: frozenset[Fate] = frozenset(
    {"accepted", "corroborated", "retraction-applied", "retraction-pending"}
)
"""The fates after which a dyad's state differs from the one saved (a pending retraction
keeps a tombstone, so the event stays out when it comes)."""
STATE_STORE_OPTIONS = {
    "write_buffer_size": 4 << 20,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 << 20,
}
"""RocksDB's memory for the dyads' table, per partition: Faust's defaults (a 64 MiB write
buffer, up to three, and a 2 GiB block cache) let memtables take up to 512 MiB over eight
partitions before their first flush, and the worker's memory grew with every state it saved
(~3 KiB an event in a soak; README, "The worker's memory on long runs"). The worker holds its
dyads' states in memory (`Processor.states`) and reads the table only to restore them, so a
small cache costs no reads that matter."""
Rejected = Literal["rejected"]
"""A record the worker refused (sent to the dead-letter topic) before the engine saw it."""


class SnapshotStore(Protocol):
    """Each dyad's saved state by dyad key (`TableSnapshots` in the worker; `tests/fakes.py`).
    A value put is what `get` returns after a restart: the table's changelog keeps it. Both
    name the message the dyad's record came in: the state is kept in its partition."""

    def get(self, key: bytes, message: Any) -> bytes | None: ...

    def put(self, key: bytes, value: bytes, message: Any) -> None: ...


@dataclass
class TableSnapshots:
    """A `SnapshotStore` over a Faust table. Faust files a key under the partition of the
    event its stream is on (in RocksDB and in the changelog); a batch is handled after the
    stream has moved past its records, so each access says which record it is for."""

    table: TableT[bytes, bytes]

    def get(self, key: bytes, message: Any) -> bytes | None:
        with _for_record(message):
            value: bytes | None = self.table.get(key)
            return value

    def put(self, key: bytes, value: bytes, message: Any) -> None:
        with _for_record(message):
            self.table[key] = value


ZSTD_LEVEL = 1
"""The bench's dyads (~26 KiB of JSON each) in ~30 µs, to ~4.4 KiB; zlib's fastest level took
~110 µs, to ~5.4 KiB. Every dyad a batch changed is saved once per batch."""
_zstd = ZstdCompressor(level=ZSTD_LEVEL)
_unzstd = ZstdDecompressor()
_ZLIB_HEADER = 0x78
"""What the snapshots of workers before zstd begin with (a zstd frame begins with 0x28)."""


PUBLISHED_KEY_SUFFIX = b"/published"
"""A dyad's key with this names its alerts published (dyad codes have no slash)."""
PUBLISHED_IDS = "published_ids"
"""What a saved snapshot holds in place of its alerts published: their ids."""


def _packed(value: Any) -> bytes:
    return _zstd.compress(orjson.dumps(value))


def _unpacked(saved: bytes) -> Any:
    """A saved value back, whether zstd wrote it or, before, zlib."""
    return orjson.loads(zlib.decompress(saved) if saved[0] == _ZLIB_HEADER else _unzstd.decompress(saved))


@dataclass
class SavedDyads:
    """The dyads' states in a `SnapshotStore`, each under two keys: the dyad's own (its snapshot,
    naming the alerts it published by id) and the dyad's with PUBLISHED_KEY_SUFFIX (those
    alerts, as the state keeps them to tell them again after a crash).

    Why two: the alerts published are most of a snapshot's bytes (each alert's JSON, kept for
    the retention) and change only when an alert is raised or let go, where the rest changes
    with every event. A dyad is saved at the end of every batch that changed it, and a save was
    the larger part of a batch's fixed cost; its alerts are now written only when they changed.

    Order: a dyad's alerts are written before the state that names them, both in its record's
    partition, so whenever the table is read its alerts are at least as new as its state. Only
    those the state names are taken back: alerts newer than the state (a worker killed between
    the two writes) would otherwise count as told when their records come again. A state that
    names an alert its alerts no longer hold (let go past the retention by the newer write)
    takes it back as let go, as processing its records again does.

    Snapshots of earlier workers hold their alerts themselves (no PUBLISHED_IDS); their dyad's
    first save writes the alerts apart.
    """

    store: SnapshotStore
    config: EngineConfig
    written: dict[str, tuple[Published, ...] | None] = field(default_factory=dict)
    """Each dyad's alerts as its published key holds them (None: not known to be there)."""

    def restore(self, dyad: str, message: Any) -> DyadState:
        """The dyad's saved state, or a new one."""
        key = dyad.encode()
        saved = self.store.get(key, message)
        if saved is None:
            self.written[dyad] = ()
            return DyadState(dyad)
        snapshot = _unpacked(saved)
        if PUBLISHED_IDS not in snapshot:  # an earlier worker's, its alerts inside
            self.written[dyad] = None
            return DyadState.restore(snapshot, self.config)
        kept = self.store.get(key + PUBLISHED_KEY_SUFFIX, message)
        published = {} if kept is None else _unpacked(kept)  # none: the dyad never published one
        ids = snapshot.pop(PUBLISHED_IDS)
        snapshot["emitted"] = {alert_id: published[alert_id] for alert_id in ids if alert_id in published}
        state = DyadState.restore(snapshot, self.config)
        self.written[dyad] = tuple(state.emitted.values())
        return state

    def save(self, dyad: str, state: DyadState, message: Any) -> None:
        """Its alerts, if they changed since they were written, then the rest."""
        key, snapshot = dyad.encode(), state.snapshot()
        published = snapshot.pop("emitted")
        snapshot[PUBLISHED_IDS] = list(published)
        now = tuple(state.emitted.values())
        if self.written.get(dyad) != now:
            self.store.put(key + PUBLISHED_KEY_SUFFIX, _packed(published), message)
            self.written[dyad] = now
        self.store.put(key, _packed(snapshot), message)

    def forget(self) -> None:
        self.written.clear()


@dataclass
class _SourceEvent:
    """What Faust's tables read of the current event: its message's topic and partition."""

    message: Any


@contextlib.contextmanager
def _for_record(message: Any) -> Iterator[None]:
    """Faust's current event, for the tables, is the one `message` came in."""
    event = _SourceEvent(message)
    token = faust_current_event.set(weakref.ref(event))  # type: ignore[arg-type]  # what tables read of one
    try:
        yield
    finally:
        faust_current_event.reset(token)


class OutputTopic(Protocol):
    """A topic to publish to (`BatchedTopic`, `ProducerTopic` in the worker). `send` may keep
    what it is given until `flush`, which hands it all to the producer: the processor flushes
    at the end of each batch, before it saves a state; Faust's commit then flushes the producer
    before it commits the offsets (Faust's at-least-once)."""

    async def send(self, *, key: bytes | None = None, value: bytes) -> Any: ...

    async def flush(self) -> None: ...


@dataclass
class ProducerTopic:
    """An `OutputTopic` straight on the Faust app's producer, past Faust's per-message
    machinery (a future, callbacks and sensors per send: ~60 µs against aiokafka's ~8 µs, for
    one output per event). Same producer, so Faust's commit flushes these outputs before it
    commits the offsets; same default partitioner (murmur2 of the key) as a Faust topic's.
    An output Kafka did not take stops the worker, as `UndeliveredOutputs` does for Faust's."""

    producer: ProducerT
    """Faust's, unthreaded (`producer_threaded` is off): its `send` enqueues on this loop."""
    topic: str
    exit: Callable[[int], Any] = os._exit

    async def send(self, *, key: bytes | None = None, value: bytes) -> Any:
        # The producer returns aiokafka's delivery future (ensure_future hands it back as is).
        delivery = asyncio.ensure_future(await self.producer.send(self.topic, key, value, None, None, None))
        delivery.add_done_callback(lambda done: _check_delivered(done, self.exit))
        return delivery

    async def flush(self) -> None:
        """Nothing kept: each record went to the producer as it was sent."""


@lru_cache(maxsize=1 << 16)
def key_hash(key: bytes) -> int:
    """What Kafka's default partitioner (aiokafka's `DefaultPartitioner`) reads of a key, once
    per key: aiokafka computes murmur2 in pure Python, ~3 µs a call, and the worker's outputs
    are keyed by its dyads."""
    hashed: int = murmur2(key) & 0x7FFFFFFF
    return hashed


@dataclass
class BatchedTopic:
    """An `OutputTopic` that appends what is sent to one batch per partition, handed to the
    producer when it fills or at `flush`. Per record, an append; `ProducerTopic.send` costs
    ~3x that in the producer alone (measured on a local broker: 14 µs of CPU a record sent, 4
    appended and sent in batches), besides a future and a callback per record: the worker
    ran 15% more events a second than with `ProducerTopic`s (medians of four runs in turns).

    Same producer as `ProducerTopic` (Faust's; its commit flushes these batches too) and the
    same partitions as Kafka's default partitioner picks (`key_hash`), read from the topic's
    metadata on first use: a topic given more partitions later needs a restart. Keyed records
    only: the dead letters, unkeyed and rare, go through a `ProducerTopic`.
    """

    producer: ProducerT
    """Faust's, unthreaded: its aiokafka producer builds the batches on this loop."""
    topic: str
    exit: Callable[[int], Any] = os._exit
    partitions: list[int] = field(default_factory=list)
    filling: dict[int, Any] = field(default_factory=dict)
    """The batch being filled per partition (aiokafka's `BatchBuilder`), none empty."""

    async def send(self, *, key: bytes | None = None, value: bytes) -> None:
        if key is None:
            raise ValueError(f"{self.topic}: a batched topic takes keyed records only")
        kafka = self._kafka()
        if not self.partitions:
            self.partitions = sorted(await kafka.partitions_for(self.topic))
        partition = self.partitions[key_hash(key) % len(self.partitions)]
        batch = self.filling.get(partition)
        if batch is not None and batch.append(key=key, value=value, timestamp=None) is not None:
            return
        if batch is not None:  # full: sent, and the record starts the next one
            await self._hand_over(partition, batch)
        batch = self.filling[partition] = kafka.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            raise ValueError(f"{self.topic}: a record of {len(value)} bytes is larger than a batch")

    async def flush(self) -> None:
        """Every batch being filled to the producer, in the order they were started."""
        filled, self.filling = self.filling, {}
        for partition, batch in filled.items():
            await self._hand_over(partition, batch)

    async def _hand_over(self, partition: int, batch: Any) -> None:
        delivery = await self._kafka().send_batch(batch, self.topic, partition=partition)
        delivery.add_done_callback(lambda done: _check_delivered(done, self.exit))

    def _kafka(self) -> Any:
        """The aiokafka producer inside Faust's (Faust's own `send` takes one record at a time)."""
        return cast(Any, self.producer)._ensure_producer()


def _check_delivered(delivery: asyncio.Future[Any], exit: Callable[[int], Any]) -> None:
    if not delivery.cancelled() and (error := delivery.exception()) is not None:
        _undelivered(error, exit)


@dataclass(frozen=True)
class Outputs:
    index: OutputTopic
    alerts: OutputTopic
    dead_letters: OutputTopic

    async def flush(self) -> None:
        for topic in (self.index, self.alerts, self.dead_letters):
            await topic.flush()


class ProcessingMetrics(Protocol):
    """What the worker reports as it goes (Prometheus: `services.web.metrics`). Must not raise."""

    def observe_record(
        self, fate: Fate | Rejected, seconds: float, event_time: datetime | None, now: datetime
    ) -> None: ...

    def observe_index(self, update: IndexUpdate, partition: int) -> None: ...

    def observe_alert(self, alert: Alert, partition: int) -> None: ...

    def observe_lag(self, topic: str, partition: int, records: int) -> None: ...

    def forget_partitions(self, topic: str, partitions: set[int]) -> None: ...


class Received(NamedTuple):
    """A record as a batch holds it: its bytes, its message (Faust's, or aiokafka's for one the
    offset guard read), and when it was produced (seconds; None when not known)."""

    raw: bytes
    message: Any
    produced_at: float | None


@dataclass(slots=True)
class Step:
    """A record on its way through a batch's phases (`Processor.process_batch`)."""

    received: Received
    record: CrisisEvent | Retraction | None = None
    """Parsed, accepted by the worker's checks and of a dyad: for the core."""
    dyad: str = ""
    refusal: str | None = None
    """Why it goes to the dead letters, if it does."""
    outcome: Outcome | None = None
    fate: Fate | Rejected = "rejected"
    event_time: datetime | None = None
    """Of a record the worker did not refuse."""
    seconds: float = 0.0
    """Spent on it so far, over the phases (its `crisismon_event_processing_seconds`)."""


@dataclass
class Unsaved:
    """A dyad the batch changed: the last message of its records (its partition keeps the
    state) and the records that changed it, to redo them on the saved state if the engine
    fails on a later record of the dyad."""

    message: Any
    records: list[CrisisEvent | Retraction] = field(default_factory=list)


@dataclass
class Processor:
    """Everything the agent does to a batch of Kafka records, behind its ports."""

    config: EngineConfig
    saved: SavedDyads
    outputs: Outputs
    watchdog: CommitWatchdog
    offset_guard: OffsetGuard
    metrics: ProcessingMetrics
    max_future_skew: timedelta
    states: dict[str, DyadState] = field(default_factory=dict)
    """Dyad states already restored from the table; dropped when partitions move."""
    unsaved: dict[str, Unsaved] = field(default_factory=dict)
    """The dyads this batch changed."""
    latest_index: dict[str, tuple[IndexUpdate, int]] = field(default_factory=dict)
    """Each dyad's last index update of this batch, and its partition: what its gauges show."""

    def state_of(self, dyad: str, message: Any) -> DyadState:
        if dyad not in self.states:
            self.states[dyad] = self.saved.restore(dyad, message)
        return self.states[dyad]

    async def handle(self, events: Sequence[faust.types.EventT[bytes]]) -> None:
        """One batch of the stream: its records (after any the offset guard finds skipped
        before one) processed in order, their outputs to the producer, then what the batch
        changed saved once per dyad.

        The outputs go to the producer even when the batch stops half-way (the agent cancelled
        as the worker stops, while the guard reads skipped records): Faust acks a batch's
        events when its generator is closed, and its commit flushes only what the producer
        holds, so the records received by then are processed and handed over first."""
        received: list[Received] = []
        try:
            try:
                for event in events:
                    message = event.message
                    for skipped in await self.offset_guard.skipped_before(message):
                        # aiokafka's records carry ms, Faust's seconds
                        received.append(Received(skipped.value or b"", skipped, skipped.timestamp / 1000))
                    self.watchdog.record(message.tp, message.offset)
                    received.append(Received(event.value or b"", message, message.timestamp))
            finally:
                await self.process_batch(received)
        finally:
            await self.outputs.flush()
        self.end_batch()

    def end_batch(self) -> None:
        """Save each dyad the batch changed, after all its outputs went to the producer; set its
        gauges."""
        for dyad, unsaved in self.unsaved.items():
            self.saved.save(dyad, self.states[dyad], unsaved.message)
        self.unsaved.clear()
        for update, partition in self.latest_index.values():
            self.metrics.observe_index(update, partition)
        self.latest_index.clear()

    async def process_batch(self, batch: Sequence[Received]) -> list[Fate | Rejected]:
        """What became of each record, in order.

        The batch goes through in phases, each over all its records: parse them, run the core
        on them, hand their outputs and dead letters over, count them. Each record gets the
        same work as it would one by one, in the same order; done phase by phase, each phase's
        code and data stay in the CPU's caches (a call of the core took up to twice as long with
        other Python work between two calls), and the worker took ~10% less CPU for the same
        events (README, "The worker's batch in phases").

        Whatever a record holds, it costs at most itself: refused records go to the
        dead-letter topic with the reason, and an error of the engine's own is logged and
        dead-lettered too. Only Kafka failing to take the outputs stops the worker."""
        steps = [self.parse(received) for received in batch]
        for step in steps:
            if step.record is not None:
                self.compute(step)
        for step in steps:
            await self.hand_over(step)
        now = datetime.now(UTC)
        for step in steps:
            self.metrics.observe_record(step.fate, step.seconds, step.event_time, now)
        return [step.fate for step in steps]

    def parse(self, received: Received) -> Step:
        """The record, or why it is refused before the engine sees it."""
        started = time.perf_counter()
        step = Step(received)
        try:
            record = parse_record(received.raw)
        except (ValidationError, ValueError) as error:
            step.refusal = describe(error)
        else:
            step.refusal = self.refusal_of(record, received)
            if step.refusal is None and record.dyad is not None:
                step.record, step.dyad = record, record.dyad
            elif step.refusal is None:  # it stays in the log; there is no dyad index to update
                step.fate, step.event_time = "no-dyad", record.event_time
        step.seconds += time.perf_counter() - started
        return step

    def refusal_of(self, record: CrisisEvent | Retraction, received: Received) -> str | None:
        """Why the worker refuses a valid record: dated too far ahead, or keyed by another dyad."""
        moment = reference_time(received.produced_at, time.time())
        if refusal := too_far_ahead(record.event_time, moment, self.max_future_skew):
            return refusal
        message = received.message
        key = message.key.decode("utf-8", "replace") if message.key else None
        if record.dyad is not None and key != record.dyad:
            return f"record key {key!r} is not its dyad {record.dyad!r}"
        return None

    def compute(self, step: Step) -> None:
        """The core on a record of a dyad: its outcome, or the reason it is refused."""
        started = time.perf_counter()
        record, dyad, message = step.record, step.dyad, step.received.message
        assert record is not None, "only a parsed record of a dyad is computed"
        try:
            state = self.state_of(dyad, message)
            outcome = apply(state, record, self.config)
        except Exception as error:  # a bug of ours must cost one record, not the worker
            log.exception("the engine failed on %s[%s]@%s", message.topic, message.partition, message.offset)
            self.rebuild(dyad, message)
            step.refusal = f"the engine failed on this record: {error!r}"
        else:
            if outcome.refusal is not None:
                step.refusal = outcome.refusal
            else:
                step.outcome, step.fate, step.event_time = outcome, outcome.fate, record.event_time
                if outcome.fate in CHANGES_STATE:
                    unsaved = self.unsaved.setdefault(dyad, Unsaved(message))
                    unsaved.message = message
                    unsaved.records.append(record)
        step.seconds += time.perf_counter() - started

    async def hand_over(self, step: Step) -> None:
        """The record's outputs to their topics, or the record to the dead letters."""
        started = time.perf_counter()
        received = step.received
        if step.refusal is not None:
            await self.dead_letter(received.raw, step.refusal, received.message)
        elif step.outcome is not None:
            await self.publish(step.dyad, step.outcome, received.message.partition)
        step.seconds += time.perf_counter() - started

    def forget(self) -> None:
        """Drop the states held (partitions moved): a batch cut short by it is not saved, and
        its records, not committed, are processed again by whoever holds them now."""
        self.states.clear()
        self.saved.forget()
        self.unsaved.clear()
        self.latest_index.clear()

    def rebuild(self, dyad: str, message: Any) -> None:
        """The dyad's state as if the record the engine failed on never came (it may have
        left the state half-changed): the saved one, with this batch's earlier records of the
        dyad applied again (their outputs were sent already)."""
        self.states.pop(dyad, None)
        try:
            state = self.state_of(dyad, message)
            for record in self.unsaved[dyad].records if dyad in self.unsaved else []:
                apply(state, record, self.config)
        except Exception:  # the saved state itself cannot be read: each record of it is refused
            log.exception("the saved state of %s cannot be restored", dyad)
            self.states.pop(dyad, None)
            self.unsaved.pop(dyad, None)

    async def publish(self, dyad: str, outcome: Outcome, partition: int) -> None:
        key = dyad.encode()
        index = outcome.index_update or outcome.repeated_index
        if index is not None:
            await self.outputs.index.send(key=key, value=index.model_dump_json().encode())
            self.latest_index[dyad] = (index, partition)
        for alert in outcome.alerts:
            self.metrics.observe_alert(alert, partition)
        told = (*outcome.alerts, *outcome.repeats)
        emitted_at = datetime.now(UTC) if told else None
        for alert in told:
            stamped = alert.model_copy(update={"emitted_at": emitted_at})
            await self.outputs.alerts.send(key=key, value=stamped.model_dump_json().encode())
            log.info(
                "alert %s %s %s → %s (%s)",
                alert.alert_id[:12],
                alert.dyad,
                alert.previous_level,
                alert.level,
                alert.reason_code,
            )

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
        await self.outputs.dead_letters.send(value=letter.model_dump_json().encode())


class UndeliveredOutputs(Sensor):
    """Stops the worker when Kafka did not take what Faust sends itself (the table's changelog;
    the outputs go through `BatchedTopic` and `ProducerTopic`, which stop it themselves), after
    the producer's retries for as long as `kafka_outage_timeout`. Faust's commit flushes the
    producer but does not look at what failed: going on would commit the record's offset, and
    lose its outputs for good. Stopped before that, the restarted worker processes the record
    again (same ids)."""

    def __init__(self, exit: Callable[[int], Any] = os._exit) -> None:
        super().__init__()
        self.exit = exit

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        _undelivered(exc, self.exit)


def _undelivered(error: BaseException, exit: Callable[[int], Any]) -> None:
    log.critical("Kafka did not take an output (%r): exiting before its offset is committed", error)
    logging.shutdown()
    exit(EXIT_RESTART)


@dataclass(frozen=True)
class WorkerOptions:
    kafka: KafkaConnection
    topics: Topics
    store: str
    """Faust's table store: rocksdb:// (kept in data_dir) or memory://."""
    data_dir: Path
    max_future_skew: timedelta
    outage: BrokerOutage


SESSION_TIMEOUT_SECONDS = 10.0
REBALANCE_TIMEOUT_SECONDS = 20.0
JOIN_TIMEOUT_SECONDS = SESSION_TIMEOUT_SECONDS + REBALANCE_TIMEOUT_SECONDS
"""The longest a healthy group join takes: the broker drops a dead member after the session
timeout, and a rebalance ends within its timeout (`WorkerHealth`'s `group` check)."""


def stream_settings(kafka: KafkaConnection, outage_timeout: float) -> dict[str, Any]:
    """How the worker's Faust app reads and writes Kafka (its store and data aside): also
    what the benchmark's no-op agent runs with, so it measures Faust's cost for the same."""
    return dict(
        broker=f"kafka://{kafka.bootstrap}",
        broker_credentials=faust_credentials(kafka),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=PARTITIONS,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        # How long an output waits for the broker before it counts as lost (which stops the
        # worker: UndeliveredOutputs): a broker outage this long is ridden out. Every offset
        # commit waits for the producer, so a lost response stalls commits as long; the
        # `partition` health check notices that first.
        producer_request_timeout=outage_timeout,
        # Table writes are whole dyad snapshots (zstd-compressed JSON, a few KiB): let them
        # share batches, or Faust's producer buffer fills and stalls the stream.
        producer_max_batch_size=512 * 1024,
        # Without a bound, Faust's consumer thread fetches and decodes a whole backlog at once,
        # holding the GIL the agent needs: a no-op agent falls from ~12,000 to ~2,700 records/s.
        broker_max_poll_records=BATCH_MAX_RECORDS,
        producer_linger=OUTPUT_LINGER_SECONDS,
        broker_session_timeout=SESSION_TIMEOUT_SECONDS,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_SECONDS,
        web_enabled=False,  # the worker serves its own web app (services.web.app)
    )


def create_app(
    options: WorkerOptions,
    config: EngineConfig,
    metrics: ProcessingMetrics,
    registry: CollectorRegistry,
    health: WorkerHealth,
) -> faust.App:
    """The Faust app: the agent over `crisis.events`, the guards' timers and the health
    checks; Faust's own sensor metrics go to `registry` as faust_*. The caller adds its tasks
    and runs it."""
    topics = options.topics
    app = faust_app(
        topics.app_id,
        store=options.store,
        datadir=str(options.data_dir),
        **stream_settings(options.kafka, options.outage.timeout),
    )
    app.monitor = faust_sensors(registry)
    app.sensors.add(UndeliveredOutputs())
    events = app.topic(topics.events, partitions=PARTITIONS)
    watchdog = CommitWatchdog(options.kafka, topics.app_id, options.outage)
    processor = Processor(
        config=config,
        saved=SavedDyads(
            TableSnapshots(
                app.Table(
                    "dyads",
                    partitions=PARTITIONS,
                    key_type=bytes,
                    value_type=bytes,
                    options=dict(STATE_STORE_OPTIONS),  # a copy: Faust pops keys from it
                )
            ),
            config,
        ),
        outputs=Outputs(
            index=BatchedTopic(app.producer, topics.index),
            alerts=BatchedTopic(app.producer, topics.alerts),
            dead_letters=ProducerTopic(app.producer, topics.dead_letters),
        ),
        watchdog=watchdog,
        offset_guard=OffsetGuard(
            options.kafka, watchdog.committed, options.outage, assigned=lambda: app.consumer.assignment()
        ),
        metrics=metrics,
        max_future_skew=options.max_future_skew,
    )

    @app.agent(events, concurrency=1)
    async def process(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(BATCH_MAX_RECORDS, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            try:
                await processor.handle(batch)
            except (KafkaError, ProducerSendError, GapNotRead) as error:
                # Kafka failed us past kafka_outage_timeout. A crashed agent would have Faust
                # acknowledge this batch (its stream does, whatever happened) and commit past
                # it: stop now, and the restart processes it again.
                log.critical("Kafka failed the worker on a record (%r): exiting for a restart", error)
                logging.shutdown()
                os._exit(EXIT_RESTART)
            except Exception:
                # Not a record's fault (those cost the record: `Processor.process_batch`) but the
                # batch's, saving it: exiting, so Faust does not commit what was not saved.
                log.critical("the worker failed on a batch: exiting for a restart", exc_info=True)
                logging.shutdown()
                os._exit(EXIT_RESTART)

    @app.timer(interval=watchdog.idle_seconds)  # type: ignore[untyped-decorator]
    async def unstick_commits() -> None:
        await watchdog.check(app.consumer)

    probe = BrokerProbe(options.kafka, [topics.events, topics.index, topics.alerts, topics.dead_letters])

    async def survey() -> dict[str, tuple[int, int]]:
        """The topics missing, and per partition held: (records waiting, the next offset)."""
        health.observe_topics(await probe.missing_topics())
        partitions = [tp for tp in app.consumer.assignment() if tp.topic == topics.events]
        ends = await app.consumer.highwaters(*partitions) if partitions else {}
        positions: dict[str, tuple[int, int]] = {}
        for tp, end in ends.items():
            processed = watchdog.processed.get(tp)
            next_offset = processed[0] + 1 if processed else await app.consumer.position(tp)
            if next_offset is not None:
                lag = max(0, end - next_offset)
                metrics.observe_lag(tp.topic, tp.partition, lag)
                positions[f"{tp.topic}[{tp.partition}]"] = (lag, next_offset)
        return positions

    @app.timer(interval=LAG_INTERVAL_SECONDS)  # type: ignore[untyped-decorator]
    async def watch_health() -> None:
        """The lag, and whether the broker answers, the topics are there and nothing is stuck.
        (A deleted topic: the `topics` check; the restart creates it again, empty.)"""
        health.observe_recovery(bool(app.in_recovery))
        try:
            positions = await asyncio.wait_for(survey(), timeout=LAG_INTERVAL_SECONDS)
        except (KafkaError, TimeoutError) as error:
            health.broker_silent(error)
        else:
            health.broker_answered()
            health.observe_partitions(positions)
        health.check()

    @app.task  # type: ignore[untyped-decorator]
    async def beat() -> None:
        health.watch_event_loop()
        await health.keep_beating()

    def forget_states(*_: Any, **__: Any) -> None:
        processor.forget()
        processor.offset_guard.forget()

    def forget_revoked(*args: Any, **_: Any) -> None:
        _sender, revoked = args  # faust sends (app, revoked topic-partitions)
        forget_states()
        health.joining()
        metrics.forget_partitions(
            topics.events, {tp.partition for tp in revoked if tp.topic == topics.events}
        )

    def take_assigned(*_: Any, **__: Any) -> None:
        forget_states()
        health.joined()

    app.on_partitions_revoked.connect(forget_revoked)
    app.on_partitions_assigned.connect(take_assigned)
    return app
