"""The Kafka-facing commands as a user runs them: help, errors, tail filters, the demo."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from devtools.broker import Broker
from schemas.kafka import KafkaConnection
from schemas.outputs import Alert
from schemas.topics import Topics
from services.backtest.run import run_backtest
from services.core import EngineConfig
from services.kafka.tail import tail_alerts
from services.kafka.topics import ensure_topics
from tests.live import CRISISMON, answers, clean_env, eventually, replay, wait_processed
from tests.ports import free_port

ARTICLE = Path(__file__).parent.parent / "replay" / "data" / "pakistan-iran-2024.jsonl"


def crisismon(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRISISMON, *args], capture_output=True, text=True, env=clean_env(**env), timeout=300
    )


@pytest.mark.parametrize(
    "command",
    [
        ["backtest"],
        ["replay"],
        ["worker"],
        ["alerts", "tail"],
        ["broker", "start"],
        ["broker", "stop"],
        ["broker", "status"],
        ["demo"],
        ["follow", "gdelt"],
        ["follow", "dir"],
        ["schemas", "export"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    run = crisismon(*command, "--help")
    assert run.returncode == 0 and "Usage:" in run.stdout


def test_replay_of_a_missing_file_is_one_line_and_exit_2() -> None:
    run = crisismon("replay", "missing.jsonl", "--bootstrap", f"127.0.0.1:{free_port()}")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "missing.jsonl" in run.stderr


def test_replay_to_no_broker_is_one_line_and_exit_2() -> None:
    run = crisismon("replay", str(ARTICLE), "--bootstrap", f"127.0.0.1:{free_port()}")
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "cannot reach Kafka" in run.stderr


@pytest.mark.parametrize("speed", ["fast", "0", "-3"])
def test_a_bad_speed_is_one_line_and_exit_2(speed: str) -> None:
    run = crisismon("replay", str(ARTICLE), "--speed", speed)
    assert run.returncode == 2 and run.stderr.count("\n") == 1


def test_broker_status_says_not_running_and_exits_1(tmp_path: Path) -> None:
    run = crisismon("broker", "status", "--port", str(free_port()), XDG_CACHE_HOME=str(tmp_path))
    assert run.returncode == 1 and "not running" in run.stdout


@pytest.fixture
def article_tail(kafka_broker: Broker, kafka_namespace: str, worker) -> list[str]:
    """The article processed live; the `alerts tail` arguments that reach its alerts."""
    worker()
    replay(ARTICLE, kafka_broker.bootstrap, kafka_namespace)
    wait_processed(kafka_broker.bootstrap, kafka_namespace)
    return ["alerts", "tail", "--bootstrap", kafka_broker.bootstrap, "--namespace", kafka_namespace]


def test_alerts_tail_filters_and_prints_json(article_tail: list[str]) -> None:
    common = [*article_tail, "--from-beginning", "--idle-exit", "3"]
    everything = crisismon(*common, "--json")
    warning = crisismon(*common, "--json", "--min-level", "warning", "--dyad", "IRN-PAK")
    human = crisismon(*common, "--dyad", "CHN-PAK")
    alerts = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(alerts) == 3 and {a["dyad"] for a in alerts} == {"IRN-PAK"}
    touching_warning = [json.loads(line)["alert_id"] for line in warning.stdout.splitlines()]
    assert touching_warning == [
        a["alert_id"] for a in alerts if "warning" in (a["level"], a["previous_level"])
    ]
    assert human.returncode == 0 and human.stdout == ""


def test_alerts_tail_from_now_sees_nothing_old(article_tail: list[str]) -> None:
    run = crisismon(*article_tail, "--idle-exit", "2")
    assert run.returncode == 0 and run.stdout == ""


def test_alerts_tail_prints_an_alert_published_before_it_reached_the_broker(
    kafka_broker: Broker, kafka_namespace: str
) -> None:
    """ "New" alerts are those published since the command started, by their Kafka timestamps:
    one published while the consumer was still connecting is printed, where starting at the
    end ("latest", resolved at the first fetch) skipped it. Here the alerts are already there
    when the consumer starts: an alert stamped a minute before `since` is old, one stamped at
    `since` is new."""
    kafka, topics = KafkaConnection(kafka_broker.bootstrap), Topics(kafka_namespace)
    old, new = run_backtest([ARTICLE], EngineConfig()).alerts[:2]
    since = time.time()

    async def publish_then_tail() -> list[Alert]:
        await ensure_topics(kafka, topics)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            for alert, stamped in ((old, since - 60), (new, since)):
                value = alert.model_dump_json().encode()
                await producer.send_and_wait(topics.alerts, value, timestamp_ms=round(stamped * 1000))
        finally:
            await producer.stop()
        seen: list[Alert] = []
        await tail_alerts(kafka, topics.alerts, seen.append, idle_exit=2, since=since)
        return seen

    assert [alert.alert_id for alert in asyncio.run(publish_then_tail())] == [new.alert_id]


def demo_once(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`crisismon demo --once` at full speed on the session's broker; it must succeed."""
    run = crisismon(
        "demo",
        "--once",
        "--speed",
        "max",
        *extra,
        "--bootstrap",
        kafka_broker.bootstrap,
        "--namespace",
        kafka_namespace,
        "--web-port",
        str(free_port()),
        CRISISMON_DATA_DIR=str(tmp_path / "demo"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_demo_once_shows_the_crisis_reaching_warning(
    kafka_broker: Broker, kafka_namespace: str, tmp_path
) -> None:
    run = demo_once(kafka_broker, kafka_namespace, tmp_path)
    summary = run.stdout.splitlines()[-1]
    assert summary.split()[:2] in (["IRN-PAK", "warning"], ["IRN-PAK", "critical"]), run.stdout
    assert "2 escalation, 1 de-escalation" in summary


def test_the_demo_worker_runs_with_the_demo_settings_file(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "strict.yaml"
    config.write_text("watch_threshold: 12\nwarning_threshold: 20\n")
    run = demo_once(kafka_broker, kafka_namespace, tmp_path, "--config", str(config))
    lines = run.stdout.splitlines()
    assert (
        "replaying 26 events of pakistan-iran-2024.jsonl (2023-12-15 to 2024-01-29) as fast as they go"
        in lines
    )
    assert (
        "2024-01-16 16:00 IRN-PAK 195  Iran strikes two alleged Jaish al-Adl bases with drones" in run.stdout
    )
    alerts = [line for line in lines if " IRN-PAK escalation " in line or " IRN-PAK de-escalation " in line]
    # the strike alone (pkir24-005, 16 January) no longer reaches watch: Pakistan's warning does
    assert alerts[0] == (
        "2024-01-17 12:00 IRN-PAK escalation normal → watch: "
        "escalation index 16.96 reached the watch threshold 12"
    ), run.stdout
    assert "reached the warning threshold 20" in alerts[1]


def test_a_terminated_demo_takes_its_worker_with_it(
    kafka_broker: Broker, kafka_namespace: str, tmp_path: Path
) -> None:
    web_port = free_port()
    demo = subprocess.Popen(
        [
            CRISISMON,
            "demo",
            "--bootstrap",
            kafka_broker.bootstrap,
            "--namespace",
            kafka_namespace,
            "--web-port",
            str(web_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(CRISISMON_DATA_DIR=str(tmp_path / "demo")),
    )
    assert demo.stdout is not None
    first = demo.stdout.readline()  # "worker started (pid N, log ...)"
    worker_pid = int(first.split("pid ")[1].split(",")[0])

    def worker_up() -> bool:  # the worker runs in full
        assert demo.poll() is None, "the demo stopped by itself"
        return answers(f"http://127.0.0.1:{web_port}/metrics")

    eventually(worker_up, timeout=60, what="the demo's worker to answer")
    demo.terminate()
    assert demo.wait(timeout=60) != 0
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(worker_pid, 0)
            time.sleep(0.3)


def test_the_demo_skips_the_quiet_month_before_the_crisis() -> None:
    """At the default pace the article's first month would be a minute of nothing on screen."""
    from replay.ordering import read_in_play_order
    from services.cli import DEMO_SPEED_DEFAULT
    from services.demo import narration

    records = [item.record for item in read_in_play_order([ARTICLE])]
    plan, notes = narration(records, DEMO_SPEED_DEFAULT)
    assert plan.endswith("quiet stretches skipped: 20 s"), plan  # not 90 s
    assert next(iter(notes.values())) == "  … 31d without events: skipped, the next in 3 s"
