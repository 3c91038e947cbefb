"""`crisismon follow` on a real broker: GDELT 2.0 served from a folder of real rows on 127.0.0.1
(tests/gdelt_feed.py), and a folder files are dropped into.

The oracle is the backtest of the same files in the order they were published
(`--order published`): followed live, the same alerts, id for id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import Broker
from replay.ordering import read_in_play_order
from replay.readers.base import ReaderOptions
from schemas.events import parse_record
from schemas.kafka import KafkaConnection
from schemas.progress import FileOutcome, FollowedFile
from schemas.topics import PARTITIONS, Topics
from services.backtest.run import run_backtest
from services.core import Engine, EngineConfig
from services.kafka.topics import reader
from tests.gdelt_feed import (
    USA_CHN_CSV,
    Fault,
    GdeltServer,
    PublishedFile,
    build_gdelt_folder,
    gdelt_rows,
    publish,
    slot_rows,
)
from tests.gdelt_samples import as_gdelt2, georgia_rows
from tests.live import CRISISMON, by_dyad, clean_env, eventually, read_alerts, read_topic, wait_processed
from tests.ports import free_port

TRADE_WAR = (date(2018, 2, 20), date(2018, 4, 10))
"""USA-CHN rows added in these days: the March 2018 tariffs, watch to critical and back."""
TRADE_WAR_LATENESS = "30d"
"""The lateness the trade war's story needs as published: its second row is dated a month
before the first (2018-01-25, added in February). Accepted, it starts the dyad's history a
month before the tariffs; expired (under the default 7 days), the history starts with them,
and the dyad's first-weeks baseline, read from what it has seen, takes the escalation in
(watch, then normal). In event-time order the story is whole either way."""
ARTICLE = Path(__file__).parent.parent / "replay" / "data" / "pakistan-iran-2024.jsonl"
QUICK = {
    "CRISISMON_FOLLOW_BACKOFF": "0.1s",
    "CRISISMON_FOLLOW_ATTEMPTS": "3",
    "CRISISMON_FOLLOW_TIMEOUT": "2s",
}


@pytest.fixture
def gdelt(tmp_path: Path) -> Iterator[tuple[GdeltServer, Path]]:
    root = tmp_path / "gdelt"
    root.mkdir()
    with GdeltServer(root, hang_seconds=30) as server:
        yield server, root


def topic(namespace: str) -> str:
    return Topics(namespace).events


def exports(files: list[PublishedFile]) -> list[PublishedFile]:
    return [file for file in files if file.name.endswith(".export.CSV.zip")]


def follow(bootstrap: str, namespace: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRISISMON, "follow", *args, "--once", "--bootstrap", bootstrap, "--namespace", namespace],
        capture_output=True,
        text=True,
        env=clean_env(CRISISMON_FOLLOW_METRICS_PORT="0", **QUICK, **env),
        timeout=300,
    )


def following(bootstrap: str, namespace: str, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """A follower that polls until stopped, logging to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [CRISISMON, "follow", *args, "--poll", "0.3", "--bootstrap", bootstrap, "--namespace", namespace],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(**QUICK, **env),
            start_new_session=True,
        )


def progress(bootstrap: str, namespace: str) -> list[FollowedFile]:
    """Every record of the progress topic, in order."""
    values = read_topic(bootstrap, Topics(namespace).follow_progress, idle=1.0)
    return [FollowedFile.model_validate_json(value) for value in values]


def latest_by_file(records: list[FollowedFile]) -> dict[str, FollowedFile]:
    return {record.file: record for record in records}


def published_backtest(paths: list[Path], config: EngineConfig | None = None) -> dict[str, list[str]]:
    """The oracle: the backtest's alert ids per dyad, files played as they were published."""
    result = run_backtest(paths, config or EngineConfig(), options=ReaderOptions(order="published"))
    return by_dyad(result.alerts)


def engine_over_the_log(bootstrap: str, namespace: str) -> dict[str, list[str]]:
    """The core run over crisis.events as it stands (per dyad in log order, as a worker reads it)."""
    engine = Engine()
    alerts = [
        alert
        for value in read_topic(bootstrap, Topics(namespace).events)
        for alert in engine.process(parse_record(value)).alerts
    ]
    return by_dyad(alerts)


def test_followed_gdelt_gives_the_backtests_alerts_id_for_id_and_a_second_run_plays_nothing_again(
    kafka_broker: Broker, kafka_namespace: str, worker, gdelt: tuple
) -> None:
    server, root = gdelt
    files = exports(build_gdelt_folder(root, slot_rows(gdelt_rows(), days=TRADE_WAR), server.base_url))
    bootstrap = kafka_broker.bootstrap
    running = worker(CRISISMON_LATENESS=TRADE_WAR_LATENESS).wait_for_web()
    since = files[0].stamp.isoformat()
    run = follow(bootstrap, kafka_namespace, "gdelt", "--base-url", server.base_url, "--since", since)
    assert run.returncode == 0, run.stderr
    assert f"{len(files)} files produced" in run.stderr
    wait_processed(bootstrap, kafka_namespace, 120, running)
    expected = published_backtest([file.path for file in files], EngineConfig(lateness=TRADE_WAR_LATENESS))
    assert sum(map(len, expected.values())) >= 5  # the tariffs: watch, warning, critical and back
    assert by_dyad(read_alerts(bootstrap, kafka_namespace)) == expected, running.log_text()
    sources = {
        dict(m.headers)["crisismon-source"].decode() for m in read_messages(bootstrap, topic(kafka_namespace))
    }
    assert sources and all(source.startswith(server.base_url) for source in sources)  # where, not a temp file
    assert {name: f.outcome for name, f in latest_by_file(progress(bootstrap, kafka_namespace)).items()} == {
        file.name: FileOutcome.PRODUCED for file in files
    }
    again = follow(bootstrap, kafka_namespace, "gdelt", "--base-url", server.base_url, "--since", since)
    assert again.returncode == 0, again.stderr
    assert f"0 files produced (0 records), 0 failed; {len(files)} done before" in again.stderr


def test_files_published_while_following_are_picked_up_and_its_metrics_say_so(
    kafka_broker: Broker, kafka_namespace: str, gdelt: tuple, tmp_path: Path
) -> None:
    server, root = gdelt
    slots = slot_rows(gdelt_rows(), days=(date(2018, 3, 1), date(2018, 3, 3)))
    stamps = list(slots)
    first = exports(build_gdelt_folder(root, {stamp: slots[stamp] for stamp in stamps[:-2]}, server.base_url))
    port = free_port()
    follower = following(
        kafka_broker.bootstrap,
        kafka_namespace,
        tmp_path / "follow.log",
        "gdelt",
        "--base-url",
        server.base_url,
        "--since",
        first[0].stamp.isoformat(),
        CRISISMON_FOLLOW_METRICS_PORT=str(port),
    )
    try:

        def produced() -> set[str]:
            return {
                r.file for r in progress(kafka_broker.bootstrap, kafka_namespace) if r.outcome == "produced"
            }

        eventually(lambda: produced() == {f.name for f in first}, 60, "the first files")
        later = [exports(publish(root, server.base_url, stamp, slots[stamp]))[0] for stamp in stamps[-2:]]
        eventually(lambda: produced() == {f.name for f in first + later}, 60, "the files published later")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            samples = {
                (sample.name, sample.labels.get("outcome", "")): sample.value
                for family in text_string_to_metric_families(answer.read().decode())
                for sample in family.samples
            }
        assert samples[("crisismon_follow_files_total", "produced")] == len(first) + 2
        assert samples[("crisismon_follow_files_total", "failed")] == 0
        assert samples[("crisismon_follow_newest_file_timestamp_seconds", "")] == later[-1].stamp.timestamp()
        lag = samples[("crisismon_follow_lag_seconds", "")]
        assert lag == pytest.approx(time.time() - later[-1].stamp.timestamp(), abs=60)
        rows = sum(f.row_count for f in first + later)
        events, bad, no_dyad = (
            samples[("crisismon_follow_rows_total", k)] for k in ("events", "bad", "no-dyad")
        )
        assert (events + bad + no_dyad, bad) == (rows, 0)
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        follower.wait(timeout=30)


def big_file_lines(copies: int) -> list[str]:
    """The real Georgia rows, `copies` times a month apart with fresh ids: a file of thousands
    of records, long enough to produce that a kill lands inside it."""
    header, rows = georgia_rows()
    return [
        as_gdelt2(header, row, timedelta(days=31 * copy), id_offset=copy * 10_000_000)
        for copy in range(copies)
        for row in rows
    ]


def records_in(path: Path) -> int:
    return sum(1 for _ in read_in_play_order([path]))


def kill_inside(follower: subprocess.Popen[bytes], bootstrap: str, topic: str, first: int, last: int) -> int:
    """SIGKILL the follower once crisis.events holds more than `first` records and fewer than
    `last`: inside a file, by the test's count, not the machine's speed. Returns the count."""

    async def watch() -> int:
        consumer = reader(KafkaConnection(bootstrap), topic)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and follower.poll() is None:
                held: int = sum((await consumer.end_offsets(partitions)).values())
                if first < held < last:
                    os.killpg(follower.pid, signal.SIGKILL)
                    return held
                await asyncio.sleep(0.01)
        finally:
            await consumer.stop()
        raise AssertionError(f"the follower never held between {first} and {last} records")

    try:
        return asyncio.run(watch())
    finally:
        os.killpg(follower.pid, signal.SIGKILL)
        follower.wait(timeout=30)


def test_a_follower_killed_mid_file_and_restarted_loses_and_doubles_nothing(
    kafka_broker: Broker, kafka_namespace: str, gdelt: tuple, tmp_path: Path
) -> None:
    """Killed once some records of a file are on the log but the file is not yet recorded as
    done: the restart plays that file again, and the engine counts its records once."""
    server, root = gdelt
    slots = slot_rows(gdelt_rows(), days=(date(2018, 3, 1), date(2018, 3, 6)))
    stamps = list(slots)
    big = stamps[len(stamps) // 2]
    slots[big] = slots[big] + big_file_lines(40)
    files = exports(build_gdelt_folder(root, slots, server.base_url))
    at = next(index for index, file in enumerate(files) if file.stamp == big)
    before, big_records = sum(records_in(f.path) for f in files[:at]), records_in(files[at].path)
    bootstrap, topics = kafka_broker.bootstrap, Topics(kafka_namespace)
    args = ("gdelt", "--base-url", server.base_url, "--since", files[0].stamp.isoformat())
    follower = following(
        bootstrap, kafka_namespace, tmp_path / "follow.log", *args, CRISISMON_FOLLOW_METRICS_PORT="0"
    )
    held = kill_inside(follower, bootstrap, topics.events, before + 100, before + big_records - 100)
    assert files[at].name not in latest_by_file(progress(bootstrap, kafka_namespace)), held
    run = follow(bootstrap, kafka_namespace, *args)
    assert run.returncode == 0, run.stderr
    records = progress(bootstrap, kafka_namespace)
    assert sorted(record.file for record in records) == sorted(file.name for file in files)  # each once
    assert engine_over_the_log(bootstrap, kafka_namespace) == published_backtest([f.path for f in files])
    total, produced = sum(records_in(f.path) for f in files), len(read_topic(bootstrap, topics.events))
    assert total < produced < total + big_records  # the part of the big file played twice, no more


def test_broken_downloads_are_retried_then_reported_and_skipped_while_later_files_flow(
    kafka_broker: Broker, kafka_namespace: str, gdelt: tuple
) -> None:
    server, root = gdelt
    files = exports(
        build_gdelt_folder(
            root, slot_rows(gdelt_rows(), days=(date(2018, 3, 1), date(2018, 3, 2))), server.base_url
        )
    )
    corrupt, truncated, flaky, hanging = files[1], files[2], files[3], files[4]
    server.faults[corrupt.name] = Fault("corrupt")  # the listed MD5 never matches
    server.faults[truncated.name] = Fault("truncate")
    server.faults[flaky.name] = Fault("http-500", times=2)
    server.faults[hanging.name] = Fault("hang", times=1)
    run = follow(
        kafka_broker.bootstrap,
        kafka_namespace,
        "gdelt",
        "--base-url",
        server.base_url,
        "--since",
        "2018-03-01",
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert f"{len(files) - 2} files produced" in run.stderr and "2 failed" in run.stderr
    outcomes = latest_by_file(progress(kafka_broker.bootstrap, kafka_namespace))
    assert outcomes[corrupt.name].outcome == "failed" and "MD5" in (outcomes[corrupt.name].reason or "")
    assert outcomes[truncated.name].outcome == "failed"
    assert {name for name, f in outcomes.items() if f.outcome == "produced"} == {
        f.name for f in files if f not in (corrupt, truncated)
    }
    assert server.requests[f"/gdeltv2/{corrupt.name}"] == 3  # CRISISMON_FOLLOW_ATTEMPTS
    assert f"{corrupt.name}: skipped after 3 tries: MD5" in run.stderr


def test_follow_dir_reads_a_slowly_written_file_once_it_is_complete(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    lines = [line for file in slot_rows(gdelt_rows(), days=TRADE_WAR).values() for line in file]
    whole = tmp_path / "whole.csv"
    whole.write_text("\n".join(lines) + "\n")
    follower = following(
        kafka_broker.bootstrap,
        kafka_namespace,
        tmp_path / "follow.log",
        "dir",
        str(drop),
        CRISISMON_FOLLOW_SETTLE="2s",
        CRISISMON_FOLLOW_METRICS_PORT="0",
    )
    try:
        slow = drop / "20180410.export.CSV"
        with slow.open("w") as out:
            for start in range(0, len(lines), len(lines) // 6):
                out.write("".join(f"{line}\n" for line in lines[start : start + len(lines) // 6]))
                out.flush()
                time.sleep(0.5)  # well within follow_settle: still being written
        renamed = drop / ".incoming.jsonl"
        renamed.write_text(
            (Path(__file__).parent.parent / "replay/data/pakistan-iran-2024.jsonl").read_text()
        )
        time.sleep(3)
        os.utime(renamed, (time.time() - 10, time.time() - 10))
        renamed.rename(drop / "article.jsonl")

        def done() -> dict[str, FollowedFile]:
            return latest_by_file(progress(kafka_broker.bootstrap, kafka_namespace))

        eventually(lambda: set(done()) == {slow.name, "article.jsonl"}, 60, "both files")
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        follower.wait(timeout=30)
    expected = run_backtest([whole], EngineConfig())
    assert done()[slow.name].rows == len(lines) and done()[slow.name].bad_rows == 0
    assert done()[slow.name].records == expected.counts["accepted"]
    assert len(progress(kafka_broker.bootstrap, kafka_namespace)) == 2  # each file once
    log_alerts = engine_over_the_log(kafka_broker.bootstrap, kafka_namespace)
    assert log_alerts["CHN-USA"] == by_dyad(expected.alerts)["CHN-USA"]


def test_the_demo_follows_a_gdelt_feed_and_shows_its_alerts(
    kafka_broker: Broker, kafka_namespace: str, gdelt: tuple, tmp_path: Path
) -> None:
    server, root = gdelt
    files = exports(build_gdelt_folder(root, slot_rows(gdelt_rows(), days=TRADE_WAR), server.base_url))
    run = subprocess.run(
        [
            *(CRISISMON, "demo", "--follow", server.base_url, "--since", "2018-02-01", "--once"),
            *("--bootstrap", kafka_broker.bootstrap, "--namespace", kafka_namespace),
            *("--web-port", str(free_port())),
        ],
        capture_output=True,
        text=True,
        env=clean_env(
            CRISISMON_DATA_DIR=str(tmp_path / "demo"),
            CRISISMON_FOLLOW_METRICS_PORT="0",
            CRISISMON_LATENESS=TRADE_WAR_LATENESS,
        ),
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"followed {len(files)} files" in run.stdout
    assert "CHN-USA escalation normal → watch" in run.stdout
    assert run.stdout.splitlines()[-1].split()[:2] == ["CHN-USA", "critical"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gdelt", "--base-url", "ftp://x/"], "give an http:// or https:// URL"),
        (["gdelt", "--since", "yesterday"], "give a time such as"),
        (["gdelt", "--poll", "0"], "above 0"),
        (["dir", "/no/such/folder"], "does not exist"),
    ],
)
def test_a_follow_mistake_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    run = subprocess.run(
        [CRISISMON, "follow", *args], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr


def test_a_feed_that_cannot_be_listed_is_one_line_and_exit_1(
    kafka_broker: Broker, kafka_namespace: str
) -> None:
    run = follow(
        kafka_broker.bootstrap, kafka_namespace, "gdelt", "--base-url", f"http://127.0.0.1:{free_port()}/"
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "cannot list gdelt http://127.0.0.1:" in run.stderr.splitlines()[-1]


def test_a_broken_zip_is_tried_reported_and_skipped_and_the_next_files_flow(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.export.CSV.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 200)  # a zip's magic, then nothing
    (drop / "b.jsonl").write_text(ARTICLE.read_text())
    (drop / "c.csv").write_bytes(USA_CHN_CSV.read_bytes())  # a BigQuery export: no header, quoted
    for path in drop.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60))
    run = follow(kafka_broker.bootstrap, kafka_namespace, "dir", str(drop), CRISISMON_FOLLOW_SETTLE="1s")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    done = latest_by_file(progress(kafka_broker.bootstrap, kafka_namespace))
    assert done["a.export.CSV.zip"].outcome == "failed"
    assert "unreadable zip archive" in (done["a.export.CSV.zip"].reason or "")
    assert (done["b.jsonl"].outcome, done["b.jsonl"].records) == ("produced", 26)
    assert (done["c.csv"].outcome, done["c.csv"].rows, done["c.csv"].bad_rows) == ("produced", 3340, 0)
    assert done["c.csv"].records == run_backtest([USA_CHN_CSV], EngineConfig()).counts["accepted"]


def test_an_event_dated_hours_ahead_goes_onto_a_topic_that_refuses_timestamps_an_hour_ahead(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> None:
    """Kafka 4 refuses by default a timestamp more than an hour ahead of its clock, and refuses
    the record's whole batch with it; max_future_skew lets in a day. The record's timestamp is
    its event time, but never later than when it was produced."""
    topic = Topics(kafka_namespace).events
    asyncio.run(create_topic(kafka_broker.bootstrap, topic, {"message.timestamp.after.max.ms": "3600000"}))
    drop = tmp_path / "drop"
    drop.mkdir()
    ahead = datetime.now(UTC) + timedelta(hours=12)
    records = ARTICLE.read_text().splitlines()
    tomorrow = json.loads(records[5]) | {"event_id": "ahead-12h", "event_time": ahead.isoformat()}
    (drop / "events.jsonl").write_text("\n".join([*records, json.dumps(tomorrow)]) + "\n")
    os.utime(drop / "events.jsonl", (time.time() - 60, time.time() - 60))
    run = follow(kafka_broker.bootstrap, kafka_namespace, "dir", str(drop), CRISISMON_FOLLOW_SETTLE="1s")
    assert run.returncode == 0, run.stderr
    done = latest_by_file(progress(kafka_broker.bootstrap, kafka_namespace))["events.jsonl"]
    assert (done.outcome, done.records) == ("produced", len(records) + 1)
    stamps = {
        parse_record(message.value).event_time: message.timestamp
        for message in read_messages(kafka_broker.bootstrap, topic)
    }
    assert stamps[datetime.fromisoformat(json.loads(records[0])["event_time"])] == 1000 * int(
        datetime.fromisoformat(json.loads(records[0])["event_time"]).timestamp()
    )
    assert stamps[ahead] <= time.time() * 1000


def read_messages(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    async def read() -> list[ConsumerRecord]:
        consumer = reader(KafkaConnection(bootstrap), topic)
        await consumer.start()
        try:
            found: list[ConsumerRecord] = []
            while batch := await consumer.getmany(timeout_ms=1000):
                found += [message for messages in batch.values() for message in messages]
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def create_topic(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs=config)])
    finally:
        await admin.close()
