"""The live pipeline on a real Apache Kafka broker: replay → Faust worker → topics.

Each test has its own namespace on the session's broker. The offline backtest is the oracle:
the live pipeline must give the same alerts, with the same ids, in the same order per dyad.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devtools.broker import Broker
from schemas.outputs import DeadLetter, IndexUpdate
from schemas.topics import PARTITIONS, Topics
from services.backtest.run import run_backtest
from services.core import EngineConfig
from services.kafka.health import EXIT_RESTART
from services.kafka.worker import JOIN_TIMEOUT_SECONDS, SESSION_TIMEOUT_SECONDS, STATE_STORE_OPTIONS
from services.web.projection import Projection
from tests.gdelt_samples import unseen_crisis_lines
from tests.live import (
    CRISISMON,
    WorkerProcess,
    by_dyad,
    clean_env,
    eventually,
    latest_index,
    metric_samples,
    partitions_by_key,
    read_alerts,
    read_topic,
    replay,
    until_mid_stream,
    wait_processed,
)
from tests.synthetic import write_events

KILL_AFTER_RECORDS = 300
KILL_TEST_PACE = 300_000
"""Event seconds per second: the synthetic events' 120 days take about 35 s to replay."""
ARTICLE = Path(__file__).parent.parent / "replay" / "data" / "pakistan-iran-2024.jsonl"
RUSSIA_TURKEY = ARTICLE.parent / "crises" / "russia-turkey-2015.jsonl"


def offline(*paths: Path) -> tuple[dict[str, list[str]], dict[str, tuple[float, float, str]]]:
    """The backtest's alert ids per dyad, and its final (E, D, level) per dyad."""
    result = run_backtest(list(paths), EngineConfig())
    final = {
        dyad: updates[-1]
        for dyad, trace in result.dyads.items()
        if (updates := [s.outcome.index_update for s in trace.steps if s.outcome.index_update])
    }
    indices = {d: (u.escalation_index, u.de_escalation_index, u.level.value) for d, u in final.items() if u}
    return by_dyad(result.alerts), indices


def rocksdb_options(data_dir: Path, name: str) -> list[str]:
    """An option's values in the OPTIONS files of the dyads' table's RocksDB stores (one store
    per partition; each keeps the options it was last opened with)."""
    found = []
    for store in sorted(data_dir.glob("v*/tables/dyads-*.db")):
        latest = max(store.glob("OPTIONS-*"), key=lambda path: int(path.name.split("-")[1]))
        found += re.findall(rf"^\s*{name}=(\d+)$", latest.read_text(), re.MULTILINE)
    return found


def live_indices(bootstrap: str, namespace: str) -> dict[str, tuple[float, float, str]]:
    return {
        d: (u.escalation_index, u.de_escalation_index, u.level.value)
        for d, u in latest_index(bootstrap, namespace).items()
    }


def test_the_article_live_gives_the_backtests_alerts(
    kafka_broker: Broker, kafka_namespace: str, worker
) -> None:
    bootstrap = kafka_broker.bootstrap
    running = worker()
    replay(ARTICLE, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace)
    live = read_alerts(bootstrap, kafka_namespace)
    expected_alerts, expected_index = offline(ARTICLE)
    assert by_dyad(live) == expected_alerts, running.log_text()
    assert len(live) == sum(len(ids) for ids in expected_alerts.values())  # no repeats without a crash
    assert live_indices(bootstrap, kafka_namespace) == expected_index
    assert all(alert.emitted_at is not None for alert in live)
    logged = re.findall(r" INFO services\.kafka\.worker: alert ([0-9a-f]{12}) ", running.log_text())
    assert sorted(logged) == sorted(alert.alert_id[:12] for alert in live), "a line per alert, CLI format"
    # The dyads' table has RocksDB's write buffers bounded as configured (with Faust's defaults
    # the worker's memory grows by every state saved): as RocksDB opened each partition's store.
    for name in ("write_buffer_size", "max_write_buffer_number"):
        opened = rocksdb_options(running.data_dir, name)
        assert opened == [str(STATE_STORE_OPTIONS[name])] * PARTITIONS, (name, opened)


def test_a_library_crisis_and_a_gdelt_export_live_give_the_backtests_alerts(
    kafka_broker: Broker, kafka_namespace: str, worker, tmp_path: Path
) -> None:
    """The same readers feed `crisismon replay`: GDELT rows merged into events on the way to
    Kafka must give the worker exactly the events (and so the alerts) the backtest plays."""
    bootstrap = kafka_broker.bootstrap
    gdelt = tmp_path / "20201231.export.CSV"
    gdelt.write_text("\n".join(unseen_crisis_lines()) + "\n", encoding="utf-8")
    running = worker()
    replay(RUSSIA_TURKEY, bootstrap, kafka_namespace)
    replay(gdelt, bootstrap, kafka_namespace, "--format", "gdelt")
    wait_processed(bootstrap, kafka_namespace)
    expected_alerts, expected_index = offline(RUSSIA_TURKEY, gdelt)
    assert {"RUS-TUR", "ARM-AZE"} <= set(expected_alerts)
    assert by_dyad(read_alerts(bootstrap, kafka_namespace)) == expected_alerts, running.log_text()
    assert live_indices(bootstrap, kafka_namespace) == expected_index


def test_a_non_python_subscriber_reads_the_alerts(kafka_broker: Broker, kafka_namespace: str, worker) -> None:
    bootstrap = kafka_broker.bootstrap
    worker()
    replay(ARTICLE, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace)
    expected, _ = offline(ARTICLE)
    read = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            bootstrap,
            "-t",
            Topics(kafka_namespace).alerts,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k\t%s\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("\t", 1) for line in read.stdout.splitlines() if line]
    alerts = [(key, json.loads(value)) for key, value in rows]
    assert all(key == alert["dyad"] for key, alert in alerts)
    assert sorted(alert["alert_id"] for _, alert in alerts) == sorted(
        i for ids in expected.values() for i in ids
    )


def test_two_workers_split_the_partitions_and_agree_with_one(
    kafka_broker: Broker, kafka_namespace: str, worker, tmp_path: Path
) -> None:
    """The second without the API's view (`api_view` off), as the workers past the first of a
    deployment may run: it processes its partitions all the same and serves /metrics and
    /health, and the first's view has every dyad, the second's partitions' too."""
    bootstrap = kafka_broker.bootstrap
    events = write_events(tmp_path / "many.jsonl", 600)
    first, second = worker("first"), worker("second", CRISISMON_API_VIEW="false")
    topic = Topics(kafka_namespace).events

    def split() -> bool:  # each holds partitions, together all: the events will go to both
        held = [held_partitions(each, topic) for each in (first, second)]
        return all(held) and not held[0] & held[1] and len(held[0] | held[1]) == PARTITIONS

    eventually(split, 90, "the two workers sharing the partitions")
    replay(events, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace, 180, first, second)
    processed = sum(sample.value for sample in metric_samples(second.url, "crisismon_events_total"))
    assert 0 < processed < 600, second.log_text()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{second.url}/api/dyads", timeout=5)
    assert refused.value.code == 404 and b"api_view is off" in refused.value.read()
    with urllib.request.urlopen(f"{first.url}/api/dyads", timeout=5) as answer:
        listed = {summary["dyad"] for summary in json.load(answer)["dyads"]}
    assert listed == set(offline(events)[1]), first.log_text()
    expected_alerts, expected_index = offline(events)
    assert by_dyad(read_alerts(bootstrap, kafka_namespace)) == expected_alerts
    assert live_indices(bootstrap, kafka_namespace) == expected_index
    # Batches mix partitions: each dyad's state (its key, and its alerts' "<dyad>/published")
    # must still be kept in its records' partition, or the worker that takes the partition
    # over would not find it.
    topics = Topics(kafka_namespace)
    sources = partitions_by_key(bootstrap, topics.events)
    saved = partitions_by_key(bootstrap, f"{topics.app_id}-dyads-changelog")
    assert any(key.endswith(b"/published") for key in saved)
    assert len(set().union(*saved.values())) > 1
    assert saved == {key: sources[key.split(b"/")[0]] for key in saved}
    logs = first.log_text() + second.log_text()
    assert (
        first.process and second.process and first.process.poll() is None and second.process.poll() is None
    ), logs


def held_partitions(worker: WorkerProcess, topic: str) -> set[str]:
    """The partitions of `topic` the worker reports its lag on: those it holds."""
    samples = metric_samples(worker.url, "crisismon_consumer_lag_records")
    return {sample.labels["partition"] for sample in samples if sample.labels["topic"] == topic}


def test_a_killed_worker_restarts_without_losing_or_renaming_an_alert(
    kafka_broker: Broker, kafka_namespace: str, worker, tmp_path: Path
) -> None:
    """Killed while the replay is still producing, so mid-stream however fast the worker is:
    the test decides when, not the machine's speed (a fast worker used to finish first)."""
    bootstrap = kafka_broker.bootstrap
    events = write_events(tmp_path / "many.jsonl", 3000, seed=11)
    victim = worker("victim").wait_for_web()
    target = ["--bootstrap", bootstrap, "--namespace", kafka_namespace, "--speed", str(KILL_TEST_PACE)]
    replay_log = tmp_path / "replay.log"
    with replay_log.open("wb") as out:
        producing = subprocess.Popen(
            [CRISISMON, "replay", str(events), *target], stdout=out, stderr=subprocess.STDOUT, env=clean_env()
        )
    try:
        until_mid_stream(victim, producing, KILL_AFTER_RECORDS)
        victim.kill()
        # Restarted while the broker still counts the dead member in the group, the worker's
        # group join hung for good in one run of about twelve (aiokafka 0.14): start it once
        # the dead member's session (10 s) has expired, as an orchestrator's back-off would.
        time.sleep(SESSION_TIMEOUT_SECONDS + 1)
        victim.start()
        assert producing.wait(timeout=180) == 0, replay_log.read_text()
    finally:
        producing.kill()
        producing.wait()
    wait_processed(bootstrap, kafka_namespace, 180, victim)
    expected_alerts, expected_index = offline(events)
    live = read_alerts(bootstrap, kafka_namespace)
    assert by_dyad(live) == expected_alerts, victim.log_text()
    assert live_indices(bootstrap, kafka_namespace) == expected_index


RESTARTS = int(os.environ.get("CRISISMON_RESTARTS", "2"))
"""SIGKILL and an immediate restart, this many times in a row (`make soak`: 10)."""
RESTART_BOUND_SECONDS = SESSION_TIMEOUT_SECONDS + 2 * JOIN_TIMEOUT_SECONDS + 30
"""The dead member's session, a stuck join's end (the worker exits for its supervisor), and a
margin for the restart it then gets: no restart may take longer to process again."""


def test_a_worker_restarted_at_once_after_sigkill_never_hangs(
    kafka_broker: Broker, kafka_namespace: str, worker, tmp_path: Path
) -> None:
    """Restarted while the broker still counts the dead member, a worker's join once hung for
    good (one restart in twelve). Now it processes again within the bound, or its `group`
    check ends it (exit 75) and the test, as a supervisor would, starts it again."""
    bootstrap = kafka_broker.bootstrap
    events = write_events(tmp_path / "few.jsonl", 100, seed=17)
    victim = worker("victim").wait_for_web()
    replay(events, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace, 120, victim)
    durations, supervised = [], 0
    for _ in range(RESTARTS):
        victim.kill()
        victim.start()
        started = time.monotonic()
        replay(events, bootstrap, kafka_namespace)  # duplicates: processed (and counted) again

        def processing() -> bool:
            nonlocal supervised
            assert victim.process is not None
            if victim.process.poll() is not None:  # a stuck join ended it: restart it
                assert victim.process.returncode == EXIT_RESTART, victim.log_text()
                supervised += 1
                victim.start()
                return False
            return bool(victim.records_processed() >= 100)

        eventually(processing, RESTART_BOUND_SECONDS, "the restarted worker to process again")
        durations.append(time.monotonic() - started)
    print(
        f"{RESTARTS} immediate restarts after SIGKILL: processing again after"
        f" {min(durations):.0f}-{max(durations):.0f} s, {supervised} ended by the group check"
    )
    wait_processed(bootstrap, kafka_namespace, 120, victim)
    assert by_dyad(read_alerts(bootstrap, kafka_namespace)) == offline(events)[0]


def test_the_same_file_twice_changes_nothing(kafka_broker: Broker, kafka_namespace: str, worker) -> None:
    bootstrap = kafka_broker.bootstrap
    worker()
    replay(ARTICLE, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace)
    first_alerts = {a.alert_id for a in read_alerts(bootstrap, kafka_namespace)}
    first_index = live_indices(bootstrap, kafka_namespace)
    replay(ARTICLE, bootstrap, kafka_namespace)
    wait_processed(bootstrap, kafka_namespace)
    assert {a.alert_id for a in read_alerts(bootstrap, kafka_namespace)} == first_alerts
    assert live_indices(bootstrap, kafka_namespace) == first_index
    # The API's history (index updates by the record that triggered them) is the backtest's:
    # the repeats republish nothing that would overwrite an update with a later state.
    projection = Projection(1000, 1000)
    for value in read_topic(bootstrap, Topics(kafka_namespace).index):
        projection.add_index(IndexUpdate.model_validate_json(value))
    history = projection.history("IRN-PAK", None, None)
    expected = [
        s.outcome.index_update for s in run_backtest([ARTICLE], EngineConfig()).dyads["IRN-PAK"].steps
    ]
    assert history is not None and history[0] == [update for update in expected if update]


def between(record: dict[str, Any], first: str, second: str, **fields: str) -> bytes:
    source, target = record["source"], record["target"]
    moved = {**record, "source": {**source, "country": first}, "target": {**target, "country": second}}
    return json.dumps({**moved, **fields}).encode()


def test_garbage_goes_to_the_dead_letter_topic_and_valid_events_keep_flowing(
    kafka_broker: Broker, kafka_namespace: str, worker
) -> None:
    bootstrap = kafka_broker.bootstrap
    topics = Topics(kafka_namespace)
    running = worker()
    strike = json.loads(ARTICLE.read_text().splitlines()[4])
    today = datetime.now(UTC)
    in_a_week = (today + timedelta(days=7)).isoformat()
    garbage = [
        # Dates that overflowed into a crash loop, and one that silenced its dyad for good.
        (b"FRA-GBR", between(strike, "FRA", "GBR", event_id="end", event_time="9999-12-31T23:00:00-05:00")),
        (b"FRA-GBR", between(strike, "FRA", "GBR", event_id="start", event_time="0001-01-01T00:00:00+05:00")),
        (b"KEN-ZAF", between(strike, "KEN", "ZAF", event_id="next-week", event_time=in_a_week)),
        (b"IRN-PAK", b"\xff\xfe not json at all"),
        (b"IRN-PAK", json.dumps({**strike, "event_id": "bad-type", "weight": "heavy"}).encode()),
        (b"IRN-PAK", json.dumps({**strike, "event_id": "bad-code", "cameo_code": "999"}).encode()),
        (b"IRN-PAK", json.dumps({**strike, "event_id": "huge", "summary": "x" * 70_000}).encode()),
        (b"CHN-USA", json.dumps({**strike, "event_id": "wrong-key"}).encode()),
    ]
    later = {**strike, "event_id": "after-garbage", "event_time": "2024-01-16T18:00:00Z"}
    on_time = between(strike, "KEN", "ZAF", event_id="on-time", event_time=today.isoformat())

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1 << 20)
        await producer.start()
        try:
            await producer.send_and_wait(topics.events, json.dumps(strike).encode(), key=b"IRN-PAK")
            for key, value in garbage:
                await producer.send_and_wait(topics.events, value, key=key)
            await producer.send_and_wait(topics.events, json.dumps(later).encode(), key=b"IRN-PAK")
            await producer.send_and_wait(topics.events, on_time, key=b"KEN-ZAF")
        finally:
            await producer.stop()

    asyncio.run(produce())
    wait_processed(bootstrap, kafka_namespace)
    letters = [DeadLetter.model_validate_json(v) for v in read_topic(bootstrap, topics.dead_letters)]
    reasons = sorted(letter.reason for letter in letters)  # one DLQ partition, sources from several
    assert len(letters) == 8, reasons
    expected = [
        "event_time: Input should be less than 2200",
        "event_time: Input should be greater than or equal to 1800",
        "is more than 1d ahead of",
        "Invalid JSON",
        "not its dyad",
        "over the 65536-byte limit",
        "unknown CAMEO code '999'",
        "weight",
    ]
    assert all(any(part in reason for reason in reasons) for part in expected), reasons
    assert all(letter.origin == topics.events and letter.offset is not None for letter in letters)
    assert any(letter.raw.startswith("\\xff\\xfe") for letter in letters)
    updates = latest_index(bootstrap, kafka_namespace)
    assert updates["IRN-PAK"].triggered_by == "after-garbage"
    assert updates["KEN-ZAF"].triggered_by == "on-time" and "FRA-GBR" not in updates
    assert running.process is not None and running.process.poll() is None, running.log_text()
