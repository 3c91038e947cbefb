"""The worker's `Processor` behind its ports, with in-memory fakes (no Kafka): the order of its
work (publish, then save) and what a repeated record publishes again."""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.events import Retraction
from services.core import engine
from services.core.dyad import DyadState
from services.kafka import worker as worker_module
from tests.builders import event, retraction
from tests.fakes import FakeMessage, a_worker, dyad_key

ARTICLE = Path(__file__).parents[1] / "replay" / "data" / "pakistan-iran-2024.jsonl"
LINES = ARTICLE.read_bytes().splitlines()
STRIKE = LINES[4]  # pkir24-005: raises IRN-PAK to watch
THREAT = LINES[6]  # pkir24-007: to warning


def test_outputs_are_published_before_the_state_is_saved() -> None:
    """So a crash between the two repeats outputs (same ids) and never loses them."""
    worker = a_worker()
    assert worker.feed(STRIKE) == "accepted"
    assert worker.journal == ["index", "alert", "save published", "save"]
    assert worker.saved_dyads() == {"IRN-PAK"}


def test_a_repeat_of_the_last_change_publishes_its_outputs_again_and_saves_nothing() -> None:
    worker = a_worker()
    worker.feed(STRIKE)
    first_alert, first_index = worker.alert_records()[0], worker.index_updates()[0]
    del worker.journal[:]
    assert worker.feed(STRIKE) == "duplicate"
    assert worker.journal == ["index", "alert"]
    assert worker.index_updates()[-1] == first_index
    assert worker.alert_records()[-1].alert_id == first_alert.alert_id


def test_a_repeat_of_an_earlier_record_repeats_its_alerts_but_no_stale_index() -> None:
    worker = a_worker()
    worker.feed(STRIKE)
    worker.feed(THREAT)
    strike_alert = worker.alert_records()[0]
    del worker.journal[:]
    assert worker.feed(STRIKE) == "duplicate"
    assert worker.journal == ["alert"]
    assert worker.alert_records()[-1].alert_id == strike_alert.alert_id


def test_a_restarted_worker_takes_up_the_saved_state() -> None:
    """Crash after the save, before the outputs left: the record comes again after the restart
    and its alert is published again under the same id."""
    worker = a_worker()
    worker.feed(STRIKE)
    restarted = a_worker()
    restarted.store.saved.update(worker.store.saved)
    assert restarted.feed(STRIKE) == "duplicate"
    assert [a.alert_id for a in restarted.alert_records()] == [a.alert_id for a in worker.alert_records()]
    assert restarted.feed(THREAT) == "accepted"
    assert restarted.index_updates()[-1].events_in_window == 2


def test_a_state_saved_zlib_compressed_by_an_earlier_worker_is_taken_up() -> None:
    """Workers saved zlib-compressed snapshots before zstd: an upgraded one reads them."""
    worker = a_worker()
    worker.feed(STRIKE)
    saved = worker.store.saved[b"IRN-PAK"]
    snapshot = worker.saved_state("IRN-PAK").snapshot()
    assert saved.startswith(b"\x28\xb5\x2f\xfd"), "saved now as a zstd frame"
    upgraded = a_worker()
    upgraded.store.saved[b"IRN-PAK"] = zlib.compress(orjson.dumps(snapshot), 1)
    assert upgraded.feed(STRIKE) == "duplicate"
    assert upgraded.alert_records()[0].alert_id == worker.alert_records()[0].alert_id
    assert upgraded.feed(THREAT) == "accepted"
    assert upgraded.index_updates()[-1].events_in_window == 2
    assert upgraded.journal[-2:] == ["save published", "save"], "its alerts now saved apart"
    restarted = a_worker()
    restarted.store.saved.update(upgraded.store.saved)
    assert restarted.feed(STRIKE) == "duplicate"
    assert restarted.alert_records()[0].alert_id == worker.alert_records()[0].alert_id


def test_a_dyads_alerts_are_saved_apart_and_only_when_they_change() -> None:
    """Its alerts published are most of a snapshot's bytes and change far less often than the
    rest (`SavedDyads`)."""
    worker = a_worker()
    worker.feed_batch([(line, b"IRN-PAK", None) for line in LINES[1:5]])
    assert worker.journal[-2:] == ["save published", "save"], "the strike raised an alert"
    written = worker.store.saved[b"IRN-PAK/published"]
    assert worker.feed(LINES[5]) == "accepted"
    assert worker.journal[-2:] == ["index", "save"], "no alert raised: the alerts stay as written"
    assert worker.store.saved[b"IRN-PAK/published"] == written
    assert worker.saved_state("IRN-PAK").emitted == worker.processor.states["IRN-PAK"].emitted


def test_alerts_saved_after_their_state_are_not_taken_as_told() -> None:
    """A worker killed between the two writes of a dyad leaves its alerts newer than its state:
    the threat's alert, written, must not count as told when the threat comes again (its
    index update and alert may not have left the process)."""
    worker = a_worker()
    worker.feed(STRIKE)
    state_before_the_threat = worker.store.saved[b"IRN-PAK"]
    worker.feed(THREAT)
    killed = a_worker()
    killed.store.saved.update(worker.store.saved)
    killed.store.saved[b"IRN-PAK"] = state_before_the_threat
    assert killed.feed(THREAT) == "accepted"
    assert [alert.alert_id for alert in killed.alert_records()] == [worker.alert_records()[1].alert_id]
    assert killed.feed(STRIKE) == "duplicate", "the strike's alert, which the state names, is kept"
    assert killed.alert_records()[-1].alert_id == worker.alert_records()[0].alert_id


def test_a_refused_record_is_a_dead_letter_and_touches_nothing_else() -> None:
    worker = a_worker()
    assert worker.feed(b"{not json", key=b"IRN-PAK") == "rejected"
    assert worker.journal == ["dead letter"]
    assert worker.store.saved == {}


def test_a_batch_saves_each_dyad_it_changed_once_after_all_its_outputs() -> None:
    worker = a_worker()
    assert worker.feed_batch([(line, b"IRN-PAK", None) for line in (STRIKE, THREAT)]) == [
        "accepted",
        "accepted",
    ]
    assert worker.journal == ["index", "alert", "index", "alert", "save published", "save"]
    restarted = a_worker()
    restarted.store.saved.update(worker.store.saved)
    assert restarted.feed(THREAT) == "duplicate", "the saved state holds both records"


def test_a_pending_retraction_is_saved_so_the_event_stays_out_after_a_restart() -> None:
    retraction = Retraction(
        retraction_id="retract-007",
        retracts="pkir24-007",
        dyad="IRN-PAK",
        event_time=datetime(2024, 1, 17, tzinfo=UTC),
        reason="withdrawn",
        retracted_by="a test",
    )
    worker = a_worker()
    assert worker.feed(retraction.model_dump_json().encode(), key=b"IRN-PAK") == "retraction-pending"
    restarted = a_worker()
    restarted.store.saved.update(worker.store.saved)
    assert restarted.feed(THREAT) == "retracted"


@pytest.fixture
def engine_fails_on_the_threat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's engine fails on the threat (pkir24-007), half-way through changing its state."""
    real_apply = engine.apply

    def fails_on_the_threat(state: DyadState, record: Any, config: Any) -> Any:
        if getattr(record, "event_id", None) == "pkir24-007":
            state.entries.clear()  # half-done work that must not survive
            raise RuntimeError("a bug")
        return real_apply(state, record, config)

    monkeypatch.setattr(worker_module, "apply", fails_on_the_threat)


@pytest.mark.usefixtures("engine_fails_on_the_threat")
def test_an_engine_failure_in_a_batch_keeps_the_batchs_earlier_records_of_the_dyad() -> None:
    worker = a_worker()
    assert worker.feed_batch([(line, b"IRN-PAK", None) for line in (STRIKE, THREAT)]) == [
        "accepted",
        "rejected",
    ]
    assert worker.saved_state("IRN-PAK").holds("pkir24-005"), (
        "the strike, earlier in the batch, is in the state saved"
    )


@pytest.mark.usefixtures("engine_fails_on_the_threat")
def test_a_batch_does_for_each_record_what_the_record_alone_gets() -> None:
    """A batch goes through in phases (every record parsed, then the core on every one, then
    every output): each record, whatever its neighbours, must still get what it gets in a
    batch of its own, in the same order, down to the state saved."""
    ahead = event("ahead", hours=24 * 365 * 20).model_dump_json().encode()
    domestic = event("domestic", source="IRN", target="IRN").model_dump_json().encode()
    withdrawn = retraction("pkir24-025", hours=24 * 29).model_dump_json().encode()
    raws = [*LINES[:8], b"{not json", ahead, domestic, STRIKE, STRIKE, *LINES[8:], withdrawn, LINES[2]]
    records = [(raw, dyad_key(raw), None) for raw in raws]
    records[12] = (STRIKE, b"CHN-USA", None)  # keyed by another dyad
    one_by_one, batched = a_worker(), a_worker()
    fates = [one_by_one.feed(raw, key, produced_at) for raw, key, produced_at in records]

    assert batched.feed_batch(records) == fates
    assert {"accepted", "rejected", "no-dyad", "duplicate", "retraction-applied", "expired"} <= set(fates)
    assert batched.index_updates() == one_by_one.index_updates()
    assert [alert.model_copy(update={"emitted_at": None}) for alert in batched.alert_records()] == [
        alert.model_copy(update={"emitted_at": None}) for alert in one_by_one.alert_records()
    ]
    assert [(letter.reason, letter.raw) for letter in batched.dead_letter_records()] == [
        (letter.reason, letter.raw) for letter in one_by_one.dead_letter_records()
    ]
    assert len(batched.dead_letter_records()) == 4
    assert batched.store.saved.keys() == one_by_one.store.saved.keys()
    assert {dyad: batched.saved_state(dyad).snapshot() for dyad in batched.saved_dyads()} == {
        dyad: one_by_one.saved_state(dyad).snapshot() for dyad in one_by_one.saved_dyads()
    }


def test_a_dyad_whose_saved_state_cannot_be_read_costs_its_records_not_the_batch() -> None:
    """A snapshot from a newer engine (after a rollback): that dyad's record is refused with
    the reason, the batch's other records go on and are saved."""
    worker = a_worker()
    worker.store.saved[b"CHN-USA"] = zlib.compress(orjson.dumps({"version": 99, "dyad": "CHN-USA"}))
    other = event("x1", cameo_code="195", source="USA", target="CHN").model_dump_json().encode()
    outcomes = worker.feed_batch(
        [(STRIKE, b"IRN-PAK", None), (other, b"CHN-USA", None), (THREAT, b"IRN-PAK", None)]
    )
    assert outcomes == ["accepted", "rejected", "accepted"]
    assert "a version 99 snapshot" in worker.dead_letter_records()[0].reason
    saved = worker.saved_state("IRN-PAK")
    assert saved.holds("pkir24-005") and saved.holds("pkir24-007")


@dataclass
class StreamMessage(FakeMessage):
    """What `Processor.handle` reads of a Faust message besides."""

    tp: Any = None
    timestamp: float | None = None


@dataclass
class FakeEvent:
    value: bytes
    message: StreamMessage


class StopsAtTheSecondRecord:
    """The offset guard and watchdog of `Processor.handle`; the guard waits forever before the
    second record, where the test cancels the batch as a stopping worker does."""

    def __init__(self) -> None:
        self.reached_second = asyncio.Event()

    async def skipped_before(self, message: FakeMessage) -> list[Any]:
        if message.offset > 0:
            self.reached_second.set()
            await asyncio.Event().wait()
        return []

    def record(self, tp: Any, offset: int) -> None:
        pass


def test_a_batch_stopped_half_way_hands_the_outputs_of_its_processed_records_to_the_producer() -> None:
    """Faust acks a cancelled batch's events: what was processed must not stay behind."""
    worker = a_worker()
    flushed: list[list[str]] = []

    async def flush() -> None:
        flushed.append(list(worker.journal))

    worker.index.flush = flush  # type: ignore[method-assign]
    guard = StopsAtTheSecondRecord()
    worker.processor.offset_guard = guard  # type: ignore[assignment]
    worker.processor.watchdog = guard  # type: ignore[assignment]
    batch = [FakeEvent(STRIKE, StreamMessage(b"IRN-PAK", offset)) for offset in (0, 1)]

    async def cancel_half_way() -> None:
        handling = asyncio.ensure_future(worker.processor.handle(batch))  # type: ignore[arg-type]
        await guard.reached_second.wait()
        handling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handling

    asyncio.run(cancel_half_way())
    assert flushed == [["index", "alert"]]  # the first record's outputs, flushed
    assert "save" not in worker.journal  # its state is not saved: the batch did not end
