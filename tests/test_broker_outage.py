"""A broker that goes away, comes late, or loses a topic, with a real broker of the test's own
(stopped and started again on the same data, so the session's broker is never touched).

The offline backtest is the oracle: after the outage the alerts equal its alerts, none lost,
none unknown, and every part (worker, replay, a follower, `alerts tail`, the web feed) got
there by itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devtools.broker import Broker, start, stop
from schemas.topics import Topics
from services.kafka.health import EXIT_RESTART
from tests.kafka_fixtures import start_test_broker
from tests.live import (
    CRISISMON,
    WorkerProcess,
    by_dyad,
    clean_env,
    eventually,
    read_alerts,
    until_mid_stream,
    wait_processed,
)
from tests.synthetic import write_events
from tests.test_pipeline import ARTICLE, KILL_AFTER_RECORDS, KILL_TEST_PACE, offline

OUTAGE_SECONDS = 30
TOPICS_TIMEOUT_SECONDS = 5
"""The deleted-topic test's `worker_topics_timeout`: the default's 30 s only makes it wait."""
CHINA_INDIA = ARTICLE.parent / "crises" / "china-india-2020.jsonl"
QUIET_LOG_LINES = 3_000
"""A worker's log over the whole test, outage included (once: 120,000 lines for 30 s)."""


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    broker = start_test_broker(tmp_path / "kafka")
    try:
        yield broker
    finally:
        stop(broker)


def background(command: list[str], log: Path, **settings: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean_env(**settings))


def test_a_broker_stopped_mid_replay_for_30_s_loses_nothing_and_everything_recovers(
    own_broker: Broker, tmp_path: Path
) -> None:
    bootstrap, namespace = own_broker.bootstrap, "outage"
    events = write_events(tmp_path / "many.jsonl", 3000, seed=13)
    worker = WorkerProcess(bootstrap, namespace, tmp_path / "worker").start().wait_for_web()
    target = ["--bootstrap", bootstrap, "--namespace", namespace]
    tail_log = tmp_path / "tail.jsonl"
    tail = background([CRISISMON, "alerts", "tail", "--json", *target], tail_log)
    replay_log = tmp_path / "replay.log"
    producing = background(
        [CRISISMON, "replay", str(events), *target, "--speed", str(KILL_TEST_PACE)], replay_log
    )
    inbox, follow_log = tmp_path / "inbox", tmp_path / "follow.log"
    inbox.mkdir()
    # China-India 2020 moved to BRA-ZAF, dyads the synthetic events never touch: its alerts do not
    # depend on where in the replay the follower's file lands.
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(CHINA_INDIA.read_text().replace('"CHN', '"BRA').replace('"IND', '"ZAF'))
    quick = {
        "CRISISMON_FOLLOW_POLL": "1s",
        "CRISISMON_FOLLOW_SETTLE": "1s",
        "CRISISMON_FOLLOW_METRICS_PORT": "0",
    }
    following = background([CRISISMON, "follow", "dir", str(inbox), *target], follow_log, **quick)
    try:
        until_mid_stream(worker, producing, KILL_AFTER_RECORDS)
        stop(own_broker)
        shutil.copy(elsewhere, inbox)  # a file published while the broker is away
        time.sleep(OUTAGE_SECONDS)
        assert producing.poll() is None, replay_log.read_text()  # it waits for the broker
        start(own_broker)
        assert producing.wait(timeout=300) == 0, replay_log.read_text()
        eventually(lambda: elsewhere.name in follow_log.read_text(), 120, "the follower to take its file")
        wait_processed(bootstrap, namespace, 180, worker)
        expected_alerts = offline(events, elsewhere)[0]
        assert "BRA-ZAF" in expected_alerts
        expected_ids = {alert_id for ids in expected_alerts.values() for alert_id in ids}
        assert by_dyad(read_alerts(bootstrap, namespace)) == expected_alerts, worker.log_text()

        def tailed() -> set[str]:
            return {json.loads(line)["alert_id"] for line in tail_log.read_text().splitlines()}

        eventually(lambda: tailed() >= expected_ids, 60, "alerts tail to print every alert")
        assert tailed() == expected_ids
        eventually(
            lambda: (
                len(worker.get_json(f"/api/alerts?limit={len(expected_ids) + 10}")["alerts"])
                == len(expected_ids)
            ),
            60,
            "the web feed to show every alert",
        )
        assert worker.process is not None and worker.process.poll() is None, worker.log_text()
        assert tail.poll() is None and following.poll() is None, follow_log.read_text()
        assert worker.get_json("/health") == {"healthy": True, "stalls": []}
        lines = sum(len(log.read_text(errors="replace").splitlines()) for log in worker.logs)
        assert lines < QUIET_LOG_LINES, worker.log_text()
    finally:
        for process in (producing, tail, following):
            process.kill()
            process.wait()
        worker.stop()


def test_a_worker_started_before_its_broker_waits_for_it_with_one_line(tmp_path: Path) -> None:
    broker = start_test_broker(tmp_path / "kafka")  # for its free ports and data dir
    stop(broker)
    worker = WorkerProcess(broker.bootstrap, "late", tmp_path / "worker").start()
    try:
        eventually(lambda: "waiting for Kafka" in worker.log_text(), 60, "the worker to say it waits")
        time.sleep(5)
        assert worker.process is not None and worker.process.poll() is None, worker.log_text()
        assert worker.log_text().count("waiting for Kafka") == 1, worker.log_text()
        start(broker)
        worker.wait_for_web(120)
        subprocess.run(
            [CRISISMON, "replay", str(ARTICLE), "--bootstrap", broker.bootstrap, "--namespace", "late"],
            check=True,
            capture_output=True,
            env=clean_env(),
            timeout=120,
        )
        wait_processed(broker.bootstrap, "late", 120, worker)
        assert by_dyad(read_alerts(broker.bootstrap, "late")) == offline(ARTICLE)[0]
    finally:
        worker.stop()
        stop(broker)


def test_a_topic_deleted_under_a_running_worker_ends_it_with_a_clear_line_and_a_restart_recreates_it(
    kafka_broker: Broker, kafka_namespace: str, worker
) -> None:
    running = worker(CRISISMON_WORKER_TOPICS_TIMEOUT=f"{TOPICS_TIMEOUT_SECONDS}s").wait_for_web()
    topics = Topics(kafka_namespace)

    async def delete_events_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topics.events])
        finally:
            await admin.close()

    asyncio.run(delete_events_topic())
    assert running.process is not None
    assert running.process.wait(timeout=60 + 2 * TOPICS_TIMEOUT_SECONDS) == EXIT_RESTART, running.log_text()
    log = running.log_text()
    assert f"topics: {topics.events} missing from the broker" in log and "exiting for a restart" in log
    running.start().wait_for_web()  # what a supervisor does: the topic is created again, empty
    subprocess.run(
        [
            CRISISMON,
            "replay",
            str(ARTICLE),
            "--bootstrap",
            kafka_broker.bootstrap,
            "--namespace",
            kafka_namespace,
        ],
        check=True,
        capture_output=True,
        env=clean_env(),
        timeout=120,
    )
    wait_processed(kafka_broker.bootstrap, kafka_namespace, 120, running)
