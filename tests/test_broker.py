"""The local Kafka broker (devtools/broker.py) against a real JVM broker."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

from devtools import broker as kafka
from devtools.broker import Broker, BrokerError
from tests.kafka_fixtures import kafka_version, start_test_broker
from tests.ports import free_port


async def roundtrip(bootstrap: str, topic: str, value: bytes) -> tuple[bytes | None, bytes]:
    """Create `topic`, produce one message to it, consume it back: (key, value)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        # The answer to CreateTopics comes once the controller has the topic; the broker's own
        # metadata learns of it a moment later, so a list right away may not name it yet.
        deadline = time.monotonic() + 30
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} not listed 30 s after it was created"
            await asyncio.sleep(0.1)
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"IRN-PAK")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{topic}-reader", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    return message.key, message.value


def test_lifecycle_start_produce_consume_stop(tmp_path: Path) -> None:
    broker = start_test_broker(tmp_path)
    try:
        state = kafka.status(broker)
        assert state.running and state.answering
        assert state.bootstrap == f"127.0.0.1:{broker.port}"
        assert state.pid == int(broker.pid_file.read_text())
        assert (broker.kraft_dir / "meta.properties").is_file()

        key, value = asyncio.run(roundtrip(broker.bootstrap, "lifecycle", b'{"hello": "kafka"}'))
        assert (key, value) == (b"IRN-PAK", b'{"hello": "kafka"}')
    finally:
        assert kafka.stop(broker) is True

    state = kafka.status(broker)
    assert not state.running and not state.answering and state.pid is None
    assert not broker.pid_file.exists()
    assert kafka.stop(broker) is False  # nothing left to stop


def test_session_broker_serves_and_start_is_idempotent(kafka_broker: Broker, kafka_namespace: str) -> None:
    before = kafka.status(kafka_broker)
    assert before.running and before.answering

    started = time.monotonic()
    kafka.start(kafka_broker)  # already running: returns without a second JVM
    assert time.monotonic() - started < 10
    assert kafka.status(kafka_broker).pid == before.pid

    topic = f"{kafka_namespace}.crisis.events"
    assert asyncio.run(roundtrip(kafka_broker.bootstrap, topic, b"one")) == (b"IRN-PAK", b"one")


def test_start_on_a_taken_port_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        broker = Broker(
            port=port, controller_port=free_port(), data_dir=tmp_path / "b", version=kafka_version()
        )

        started = time.monotonic()
        with pytest.raises(BrokerError, match=rf"port 127\.0\.0\.1:{port} is already in use"):
            kafka.start(broker, timeout=30)
        assert time.monotonic() - started < 5
    assert not kafka.status(broker).running


def test_a_broker_that_dies_is_reported_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the port check (as if the port were taken right after it): the JVM exits, start says why."""
    monkeypatch.setattr(kafka, "_check_ports_free", lambda broker: None)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        broker = Broker(
            port=port, controller_port=free_port(), data_dir=tmp_path / "b", version=kafka_version()
        )

        started = time.monotonic()
        with pytest.raises(BrokerError) as raised:
            kafka.start(broker, timeout=60)
        assert time.monotonic() - started < 60
    message = str(raised.value)
    assert "exited" in message and str(broker.log_file) in message
    assert "Address already in use" in message  # the log's last lines say what went wrong
    assert not kafka.status(broker).running
    assert not broker.pid_file.exists()


def test_jars_are_cached_and_an_unfinished_copy_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_maven(version: str, output_dir: Path) -> None:
        calls.append(output_dir)
        output_dir.mkdir(parents=True)
        (output_dir / f"kafka_2.13-{version}.jar").write_bytes(b"jar")

    monkeypatch.setattr(kafka, "_run_maven", fake_maven)
    libs = tmp_path / "kafka-9.9.9" / "libs"
    libs.mkdir(parents=True)
    (libs / "half-downloaded.jar").write_bytes(b"")  # no marker: an interrupted earlier copy

    assert kafka.resolve_jars("9.9.9", tmp_path) == libs
    assert len(calls) == 1
    assert sorted(p.name for p in libs.iterdir()) == ["kafka_2.13-9.9.9.jar"]
    assert kafka.resolve_jars("9.9.9", tmp_path) == libs
    assert len(calls) == 1  # the second call costs nothing


def test_real_jars_resolve_once() -> None:
    libs = kafka.resolve_jars(kafka_version())  # the shared cache; the session broker already filled it
    started = time.monotonic()
    assert kafka.resolve_jars(kafka_version()) == libs
    assert time.monotonic() - started < 1
    assert (libs / f"kafka_2.13-{kafka_version()}.jar").is_file()


def test_default_locations_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    broker = Broker.local(9092)
    assert broker.cache_dir == tmp_path / "crisismon"
    assert broker.data_dir == tmp_path / "crisismon" / "broker-9092"
    assert broker.controller_port == 9093
    assert Broker.local(9092, controller_port=19093).controller_port == 19093
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert kafka.default_cache_dir() == Path.home() / ".cache" / "crisismon"


def test_server_properties_are_single_node_loopback(tmp_path: Path) -> None:
    broker = Broker(
        port=1234,
        controller_port=1235,
        data_dir=tmp_path,
        properties={"num.partitions": "3"},
        version=kafka.KAFKA_VERSION_PREVIOUS,  # 3.x: no share groups
    )
    values = kafka.server_properties(broker)
    assert values["listeners"] == "PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235"
    assert values["auto.create.topics.enable"] == "false"
    assert values["offsets.topic.replication.factor"] == "1"
    assert values["num.partitions"] == "3"  # overrides win
    assert "share.coordinator.state.topic.replication.factor" not in values
    assert "share.coordinator.state.topic.replication.factor" in kafka.server_properties(
        Broker(port=1, controller_port=2, data_dir=tmp_path, version="4.1.1")
    )
