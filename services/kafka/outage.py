"""Riding out a broker that goes away for a while.

A broker restarts, a leader moves, a network blips: for as long as `BrokerOutage.timeout`, the
Kafka calls of our own (the guards' offset lookups, the lag, the feed) wait and try again
instead of crashing the worker. Past it, they raise, and the worker exits non-zero for its
supervisor: an outage that long is a matter for a person, and a restart is the clean way back.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from schemas.kafka import OUTAGE_TIMEOUT_SECONDS, KafkaConnection

log = logging.getLogger(__name__)

T = TypeVar("T")

LONGEST_WAIT_SECONDS = 5.0
"""Between two tries: a broker that is back is noticed within this long."""
REFUSAL_PROBE_SECONDS = 10.0
BACKOFF = wait_exponential_jitter(multiplier=0.5, max=LONGEST_WAIT_SECONDS, jitter=0.5)


def broker_unreachable(error: BaseException) -> bool:
    """Whether `error` says the broker is away for now (worth waiting for), not that we asked
    for something wrong."""
    return isinstance(error, KafkaTimeoutError) or (isinstance(error, KafkaError) and error.retriable)


@dataclass(frozen=True)
class BrokerOutage:
    """How long the worker's own Kafka calls wait for a broker that went away."""

    timeout: float = OUTAGE_TIMEOUT_SECONDS

    async def call(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, tried again while the broker is unreachable, for up to `timeout` seconds;
        one log line per wait says what is waiting and why."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(broker_unreachable),
            wait=BACKOFF,
            stop=stop_after_delay(self.timeout),
            before_sleep=_waiting(what),
            reraise=True,
        )
        return await _tried(retrying, attempt)

    async def wait_for_broker(self, kafka: KafkaConnection, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` once the broker answers, however long that takes: a service started
        before its broker (a reboot, a compose stack) waits for it, with one line saying so.
        A broker that answers but refuses this client (a login, a certificate) raises
        BrokerRefused at once: waiting would not change its mind."""

        async def unless_refused() -> T:
            try:
                return await attempt()
            except KafkaConnectionError:
                if (why := await refusal(kafka)) is not None:
                    raise BrokerRefused(f"Kafka at {kafka} refuses this client: {why}") from None
                raise

        retrying = AsyncRetrying(
            retry=retry_if_exception(broker_unreachable),
            wait=BACKOFF,
            before_sleep=_first_wait(kafka),
            reraise=True,
        )
        result = await _tried(retrying, unless_refused)
        if retrying.statistics.get("attempt_number", 1) > 1:
            log.info("Kafka at %s answers: starting", kafka)
        return result


async def _tried(retrying: AsyncRetrying, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()` under `retrying` (called each time: a coroutine can be awaited only once)."""
    async for try_ in retrying:
        with try_:
            return await attempt()
    raise AssertionError("tenacity ends its loop by returning or raising")


class BrokerRefused(KafkaError):  # type: ignore[misc]
    """The broker answered and refused this client: a wrong login, an untrusted certificate."""

    retriable = False


async def refusal(kafka: KafkaConnection) -> str | None:
    """Why the broker refuses this client, from one direct connection (aiokafka's own errors
    only say "Unable to bootstrap"); None when it does not answer at all, or lets it in."""
    host, _, port = kafka.bootstrap.rpartition(":")
    options = {key: value for key, value in kafka.client_options().items() if key != "bootstrap_servers"}
    try:
        connection = await asyncio.wait_for(create_conn(host, int(port), **options), REFUSAL_PROBE_SECONDS)
    except (AuthenticationFailedError, SaslAuthenticationFailed, UnsupportedSaslMechanismError) as error:
        return f"login refused ({error})"
    except ssl.SSLError as error:
        return f"TLS failed ({error})"
    except (OSError, KafkaError, TimeoutError):
        return None  # not there, or not ready: worth waiting for
    connection.close()
    return None


def _first_wait(kafka: KafkaConnection) -> Callable[[RetryCallState], None]:
    def say(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            error = state.outcome.exception() if state.outcome else None
            log.warning("waiting for Kafka at %s to answer (%s); starting once it does", kafka, error)

    return say


def _waiting(what: str) -> Callable[[RetryCallState], None]:
    def say(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: Kafka unreachable (%s), trying again in %.1f s (waiting %.0f s so far)",
            what,
            error,
            state.upcoming_sleep,
            state.seconds_since_start or 0.0,
        )

    return say


@dataclass
class OncePerWindow(logging.Filter):
    """Lets a message through once per `window` seconds (by its logger and format string), the
    next one saying how many like it were held back. aiokafka logs every failed connection and
    metadata request, thousands a second while a broker is away: a 30 s outage once wrote
    186,000 lines, burying the few that matter."""

    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    seen: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """Per message: when it last went through, and how many were held back since."""

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.window:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} like it in the last {now - last[0]:.0f} s not logged)"
        self.seen[key] = (now, 0)
        return True


def quiet_kafka_client_logs(window: float = 60.0) -> None:
    """One OncePerWindow on every aiokafka logger (a logger's filter sees only its own records,
    so each gets it). Importing aiokafka creates the loggers of its clients; the admin's too."""
    importlib.import_module("aiokafka.admin")

    once = OncePerWindow(window)
    for name in list(logging.root.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logging.getLogger(name).addFilter(once)
