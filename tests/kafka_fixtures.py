"""A real single-node Apache Kafka broker for the tests that need one.

Load with `pytest_plugins = ["tests.kafka_fixtures"]` in conftest.py (or `-p tests.kafka_fixtures`).

- `kafka_broker` (session): one broker on free loopback ports, its data in a tmp dir, its jars in the shared
  cache (`~/.cache/crisismon`, so a machine downloads them once); stopped at the end of the session, also
  when tests fail. Use `kafka_broker.bootstrap` ("127.0.0.1:<port>"). `CRISISMON_KAFKA_VERSION` picks the
  Kafka version (default: devtools.broker.KAFKA_VERSION_DEFAULT).
- `kafka_namespace` (function): a fresh topic prefix, so tests sharing the broker do not see each other's
  topics (`f"{kafka_namespace}.crisis.events"`); the broker has auto.create.topics.enable=false.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devtools.broker import KAFKA_VERSION_DEFAULT, Broker, BrokerError, SaslSslListener, start, stop
from tests.live import WorkerProcess
from tests.ports import free_ports

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0
START_ATTEMPTS = 3


def kafka_version() -> str:
    return os.environ.get("CRISISMON_KAFKA_VERSION") or KAFKA_VERSION_DEFAULT


def start_test_broker(
    base_dir: Path,
    version: str | None = None,
    timeout: float = START_TIMEOUT,
    *,
    keystore: Path | None = None,
    scram_users: Mapping[str, str] | None = None,
) -> Broker:
    """Start a broker on free ports under `base_dir`; retries with new ports if another process took them.
    With a `keystore` (see SaslSslListener), it has a SASL_SSL listener too, for `scram_users`."""
    for attempt in range(1, START_ATTEMPTS + 1):
        port, controller_port, sasl_ssl_port = free_ports(3)
        broker = Broker(
            port=port,
            controller_port=controller_port,
            data_dir=base_dir / f"broker-{port}",
            version=version or kafka_version(),
            sasl_ssl=SaslSslListener(sasl_ssl_port, keystore, scram_users or {}) if keystore else None,
        )
        try:
            start(broker, timeout=timeout)
        except BrokerError as error:
            # Only a lost race for the free ports is worth another try; anything else is reported at once.
            if "already in use" not in str(error) or attempt == START_ATTEMPTS:
                raise
            log.warning("Ports %d/%d were taken meanwhile; retrying on new ports", port, controller_port)
            continue
        return broker
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_test_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        stop(broker)


@pytest.fixture
def kafka_namespace(kafka_broker: Broker) -> Iterator[str]:
    """A fresh topic prefix; its topics are deleted afterwards, so the broker stays light."""
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    yield namespace
    asyncio.run(delete_topics(kafka_broker.bootstrap, f"{namespace}."))


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


@pytest.fixture
def worker(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts `crisismon worker` processes on the test's namespace; stops them all at the end."""
    started: list[WorkerProcess] = []

    def start(name: str = "worker", **environment: str) -> WorkerProcess:
        process = WorkerProcess(kafka_broker.bootstrap, kafka_namespace, tmp_path / name, environment).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
