"""The services' own Kafka calls wait for a broker that went away, for as long as
`kafka_outage_timeout`, and no longer (`services.kafka.outage`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.errors import InvalidTopicError, KafkaConnectionError, KafkaTimeoutError

from schemas.kafka import KafkaConnection
from services.kafka.outage import BrokerOutage, OncePerWindow


def flaky(failures: list[BaseException]) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "answered"

    return calls, attempt


def test_a_call_waits_while_the_broker_is_unreachable() -> None:
    calls, attempt = flaky([KafkaConnectionError("down"), KafkaTimeoutError()])
    assert asyncio.run(BrokerOutage(30).call("test", attempt)) == "answered"
    assert len(calls) == 3


def test_a_call_gives_up_past_the_outage_timeout() -> None:
    calls, attempt = flaky([KafkaConnectionError("down")] * 100)
    with pytest.raises(KafkaConnectionError):
        asyncio.run(BrokerOutage(1.0).call("test", attempt))
    assert 1 < len(calls) < 100


def test_a_mistake_is_not_waited_for() -> None:
    calls, attempt = flaky([InvalidTopicError()])
    with pytest.raises(InvalidTopicError):
        asyncio.run(BrokerOutage(30).call("test", attempt))
    assert len(calls) == 1


def test_a_service_started_before_its_broker_waits_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    calls, attempt = flaky([KafkaConnectionError("down")] * 3)
    caplog.set_level("INFO", "services.kafka.outage")
    assert (
        asyncio.run(BrokerOutage(0.1).wait_for_broker(KafkaConnection("127.0.0.1:1"), attempt)) == "answered"
    )
    waits = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert waits == [
        "waiting for Kafka at 127.0.0.1:1 to answer (KafkaConnectionError: down); starting once it does"
    ]
    assert len(calls) == 4  # past the outage timeout too: a start waits as long as it takes


def test_a_message_repeated_thousands_of_times_goes_through_once_a_window_with_a_count() -> None:
    now = [0.0]
    quiet = OncePerWindow(window=60.0, clock=lambda: now[0])

    def passes(message: str) -> str | None:
        record = logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, message, None, None)
        return record.getMessage() if quiet.filter(record) else None

    assert passes("Unable connect to node with id 1") == "Unable connect to node with id 1"
    assert [passes("Unable connect to node with id 1") for _ in range(3999)] == [None] * 3999
    assert passes("another message") == "another message"
    now[0] = 61.0
    assert passes("Unable connect to node with id 1") == (
        "Unable connect to node with id 1 (3999 like it in the last 61 s not logged)"
    )
