"""The worker's `Processor` behind its ports, with in-memory fakes (no Kafka): the order of its
work (publish, then save) and what a repeated record publishes again."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import a_worker

ARTICLE = Path(__file__).parents[1] / "replay" / "data" / "pakistan-iran-2024.jsonl"
LINES = ARTICLE.read_bytes().splitlines()
STRIKE = LINES[4]  # pkir24-005: raises IRN-PAK to watch
THREAT = LINES[6]  # pkir24-007: to warning


def test_outputs_are_published_before_the_state_is_saved() -> None:
    """So a crash between the two repeats outputs (same ids) and never loses them."""
    worker = a_worker()
    assert worker.feed(STRIKE) == "accepted"
    assert worker.journal == ["index", "alert", "save"]
    assert set(worker.store.saved) == {b"IRN-PAK"}


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


def test_a_refused_record_is_a_dead_letter_and_touches_nothing_else() -> None:
    worker = a_worker()
    assert worker.feed(b"{not json", key=b"IRN-PAK") == "rejected"
    assert worker.journal == ["dead letter"]
    assert worker.store.saved == {}
