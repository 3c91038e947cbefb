"""The worker's processing path with in-memory ports, for tests without Kafka (the way
cosmicpython tests its handlers with a FakeRepository): a dict-like store and topics that
keep what was sent, all writing to one journal so the order of work can be checked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from schemas.events import CrisisEvent, Retraction, parse_record, record_id
from schemas.outputs import Alert, DeadLetter, IndexUpdate
from services.core import EngineConfig
from services.core.dyad import DyadState
from services.kafka.worker import PUBLISHED_KEY_SUFFIX, Outputs, Processor, Received, SavedDyads
from services.web.metrics import WorkerMetrics

SKEW = timedelta(days=1)


@dataclass
class FakeTopic:
    name: str
    journal: list[str]
    sent: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    async def send(self, *, key: bytes | None = None, value: bytes) -> None:
        self.journal.append(self.name)
        self.sent.append((key, value))

    async def flush(self) -> None:
        """What is sent is recorded at once: nothing to hand over."""


@dataclass
class FakeStore:
    journal: list[str]
    saved: dict[bytes, bytes] = field(default_factory=dict)

    def get(self, key: bytes, message: object) -> bytes | None:
        return self.saved.get(key)

    def put(self, key: bytes, value: bytes, message: object) -> None:
        self.journal.append("save published" if key.endswith(PUBLISHED_KEY_SUFFIX) else "save")
        self.saved[key] = value


@dataclass
class FakeMessage:
    """What the processor reads of a Faust message."""

    key: bytes | None
    offset: int = 0
    topic: str = "crisis.events"
    partition: int = 0


@dataclass
class Worker:
    processor: Processor
    index: FakeTopic
    alerts: FakeTopic
    dead_letters: FakeTopic
    store: FakeStore
    journal: list[str]

    def feed(self, raw: bytes, key: bytes | None = None, produced_at: float | None = None) -> str:
        """One record through `Processor.process_batch`; its `crisismon_events_total` outcome."""
        if key is None:
            key = dyad_key(raw)
        return self.feed_batch([(raw, key, produced_at)])[0]

    def feed_batch(self, records: Sequence[tuple[bytes, bytes | None, float | None]]) -> list[str]:
        """Records (raw, key, produced_at) through `Processor.process_batch` as one batch, then
        its end (`Processor.end_batch`); their outcomes."""
        batch = [
            Received(raw, FakeMessage(key, offset), produced_at)
            for offset, (raw, key, produced_at) in enumerate(records, start=len(self.journal))
        ]

        async def run() -> list[str]:
            outcomes: list[str] = list(await self.processor.process_batch(batch))
            self.processor.end_batch()
            return outcomes

        return asyncio.run(run())

    def dead_letter_records(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(value) for _, value in self.dead_letters.sent]

    def index_updates(self) -> list[IndexUpdate]:
        return [IndexUpdate.model_validate_json(value) for _, value in self.index.sent]

    def alert_records(self) -> list[Alert]:
        return [Alert.model_validate_json(value) for _, value in self.alerts.sent]

    def saved_state(self, dyad: str) -> DyadState:
        """The dyad's state as a restarted worker takes it up from the store."""
        return SavedDyads(self.store, self.processor.config).restore(dyad, None)

    def saved_dyads(self) -> set[str]:
        return {key.decode() for key in self.store.saved if not key.endswith(PUBLISHED_KEY_SUFFIX)}


def dyad_key(raw: bytes) -> bytes | None:
    """The key a producer would give the record (its dyad); IRN-PAK for what is not one."""
    try:
        dyad = parse_record(raw).dyad
    except ValueError:
        return b"IRN-PAK"
    return dyad.encode() if dyad else None


def a_worker(config: EngineConfig | None = None) -> Worker:
    journal: list[str] = []
    index, alerts, dead_letters = (FakeTopic(name, journal) for name in ("index", "alert", "dead letter"))
    store = FakeStore(journal)
    config = config or EngineConfig()
    processor = Processor(
        config=config,
        saved=SavedDyads(store, config),
        outputs=Outputs(index, alerts, dead_letters),
        watchdog=None,  # type: ignore[arg-type]  # process() does not use the offset guards
        offset_guard=None,  # type: ignore[arg-type]
        metrics=WorkerMetrics(10),
        max_future_skew=SKEW,
    )
    return Worker(processor, index, alerts, dead_letters, store, journal)


@dataclass
class FakeEventSink:
    """The web side's `EventSink` in memory: it keeps what it acknowledged, with its source.
    `refuse` names ids it does not acknowledge (`everything`: none), giving `why`."""

    appended: list[tuple[CrisisEvent | Retraction, str]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    everything: bool = False
    why: str = "Kafka at 127.0.0.1:9 cannot be reached"
    calls: int = 0
    closed: bool = False

    async def append(self, records: Sequence[CrisisEvent | Retraction], source: str) -> list[str | None]:
        self.calls += 1
        outcomes: list[str | None] = []
        for record in records:
            if self.everything or record_id(record) in self.refuse:
                outcomes.append(self.why)
            else:
                self.appended.append((record, source))
                outcomes.append(None)
        return outcomes

    async def close(self) -> None:
        self.closed = True

    def ids(self) -> list[str]:
        return [record_id(record) for record, _ in self.appended]
