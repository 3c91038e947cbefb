"""`crisismon demo` (what `make run` runs): the whole local stack replaying the article's crisis.

A local broker (started if none answers), the worker in a subprocess with the demo's settings,
the article replayed at a watchable speed, and each event and alert printed as it lands, so the
terminal tells the story the dashboard shows. With `--follow URL`, a GDELT 2.0 feed is followed
instead, live: each file's count, event and alert as they come.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from textwrap import shorten

from aiokafka import AIOKafkaConsumer

from devtools import broker as local_broker
from replay.ordering import read_in_play_order
from replay.producer import replay
from replay.readers.base import ReaderOptions
from schemas.events import CrisisEvent, Retraction, parse_record, record_id
from schemas.kafka import KafkaConnection
from schemas.outputs import Alert, Level
from schemas.topics import Topics
from services.core.config import format_duration
from services.kafka.lag import wait_until_caught_up
from services.kafka.tail import tail_alerts
from services.kafka.topics import ensure_topics, reader
from services.settings import Settings

ARTICLE = Path(__file__).resolve().parents[1] / "replay" / "data" / "pakistan-iran-2024.jsonl"
MAX_WAIT_SECONDS = 3.0
"""The longest the demo waits between two events: the article's first event comes a month before
the crisis, a minute of silence at the default speed; the quiet stretch is skipped, and said so."""


@dataclass
class Summary:
    """Per dyad: the highest level reached and the alerts, de-duplicated by id."""

    alerts: dict[str, dict[str, Alert]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, alert: Alert) -> bool:
        """Records the alert; False when it is a repeat of one already seen."""
        seen = self.alerts[alert.dyad]
        fresh = alert.alert_id not in seen
        seen[alert.alert_id] = alert
        return fresh

    def peak(self, dyad: str) -> Level:
        return max((a.level for a in self.alerts[dyad].values()), key=lambda level: level.rank)

    def lines(self) -> list[str]:
        rows = ["dyad       peak      alerts"]
        for dyad in sorted(self.alerts):
            kinds = [a.kind for a in self.alerts[dyad].values()]
            rows.append(
                f"{dyad:<10} {self.peak(dyad):<9} {kinds.count('escalation')} escalation, "
                f"{kinds.count('de-escalation')} de-escalation"
            )
        return rows


def start_worker(settings: Settings, config_file: Path | None, log_file: Path) -> subprocess.Popen[bytes]:
    """The worker reads the demo's settings as the demo did: the same --config file and CRISISMON_*
    variables (so thresholds, token and store too), and as flags what the demo itself relies on."""
    command = [
        sys.executable,
        "-m",
        "services.cli",
        "worker",
        *(["--config", str(config_file)] if config_file else []),
        "--bootstrap",
        settings.kafka_bootstrap,
        "--namespace",
        settings.namespace,
        "--web-port",
        str(settings.web_port),
        "--data-dir",
        str(settings.data_dir),
    ]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def ensure_local_broker(settings: Settings) -> local_broker.Broker | None:
    """Starts a local broker on the bootstrap's port unless one answers; returns it if started here.
    A broker that needs TLS or a login is the user's own: it is never started here."""
    host, port = settings.kafka_bootstrap.rsplit(":", 1)
    broker = local_broker.Broker.local(int(port), version=settings.kafka_version)
    if host not in ("127.0.0.1", "localhost") or settings.kafka_security_protocol != "PLAINTEXT":
        return None
    if local_broker.answers(settings.kafka_bootstrap, 5.0):
        return None
    local_broker.start(broker)
    return broker


def event_line(event: CrisisEvent) -> str:
    summary = shorten(event.summary, 80, placeholder=" …")
    return f"{event.event_time:%Y-%m-%d %H:%M} {event.dyad or 'no dyad'} {event.cameo_code:<4} {summary}"


def narration(records: list[CrisisEvent | Retraction], speed: float | None) -> tuple[str, dict[str, str]]:
    """What the replay will do, and the note to show after each record that a long wait follows."""
    first, last = records[0].event_time, records[-1].event_time
    plan = f"replaying {len(records)} events of {ARTICLE.name} ({first:%Y-%m-%d} to {last:%Y-%m-%d})"
    if speed is None:
        return f"{plan} as fast as they go", {}
    notes = {}
    total = 0.0
    for before, after in pairwise(records):
        wait = (after.event_time - before.event_time).total_seconds() / speed
        total += min(wait, MAX_WAIT_SECONDS)
        if wait > MAX_WAIT_SECONDS:
            quiet = format_duration(after.event_time - before.event_time)
            notes[record_id(before)] = (
                f"  … {quiet} without events: skipped, the next in {MAX_WAIT_SECONDS:.0f} s"
            )
    pace = format_duration(timedelta(seconds=speed))
    return f"{plan} at {pace} of event time a second, quiet stretches skipped: {total:.0f} s", notes


async def events_from_now(kafka: KafkaConnection, topic: str) -> AIOKafkaConsumer:
    """A reader of `topic` placed at its ends before the replay starts: earlier runs' events are
    skipped, and none of this run's is missed."""
    consumer = reader(kafka, topic)
    await consumer.start()
    while not (partitions := consumer.assignment()):
        await asyncio.sleep(0.05)  # a group-less consumer gets its partitions with the metadata
    for partition, end in (await consumer.end_offsets(list(partitions))).items():
        consumer.seek(partition, end)
    return consumer


async def show_events(
    consumer: AIOKafkaConsumer, notes: dict[str, str], show: Callable[[str], None], stop: asyncio.Event
) -> None:
    """Each event as it lands, and after it the note of a long wait, until `stop`."""
    try:
        while not stop.is_set():
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for message in messages:
                    try:
                        record = parse_record(message.value or b"")
                    except ValueError:  # not a log record: the worker dead-letters it
                        continue
                    if isinstance(record, CrisisEvent):
                        show(event_line(record))
                    if note := notes.get(record_id(record)):
                        show(note)
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Followed:
    """`demo --follow`: a GDELT 2.0 feed to follow instead of replaying the article."""

    base_url: str
    since: datetime | None = None


async def play(
    settings: Settings,
    once: bool,
    speed: float | None,
    show: Callable[[str], None],
    followed: Followed | None = None,
) -> Summary:
    topics = Topics(settings.namespace)
    kafka = settings.kafka_connection()
    await ensure_topics(kafka, topics)
    summary = Summary()
    stop = asyncio.Event()

    def on_alert(alert: Alert) -> None:
        if summary.add(alert):
            show(
                f"{alert.event_time:%Y-%m-%d %H:%M} {alert.dyad} {alert.kind} "
                f"{alert.previous_level} → {alert.level}: {alert.reason}"
            )

    tail = asyncio.create_task(tail_alerts(kafka, topics.alerts, on_alert, from_beginning=True, stop=stop))
    options = settings.reader_options(datetime.now(UTC))
    plan, notes = "", dict[str, str]()
    if followed is None:  # the article's story is told as it plays; a feed's is not known ahead
        plan, notes = narration(
            [item.record for item in read_in_play_order([ARTICLE], options=options)], speed
        )
    consumer = await events_from_now(kafka, topics.events)
    events = asyncio.create_task(show_events(consumer, notes, show, stop))
    if followed is None:
        show(plan)
        await replay_article(settings, once, speed, show, options)
    else:
        await follow_gdelt(settings, once, followed, show)
    if once:
        if not await wait_until_caught_up(kafka, topics.app_id, topics.events, timeout=180):
            raise TimeoutError("the worker did not process the events within 180 s")
        await asyncio.sleep(2)  # the last alerts travel from the worker to the tail
        stop.set()
    await tail
    await events
    return summary


async def replay_article(
    settings: Settings, once: bool, speed: float | None, show: Callable[[str], None], options: ReaderOptions
) -> None:
    """The article at `speed`, long waits cut short (the events shown are the progress)."""
    report = await replay(
        [ARTICLE],
        settings.kafka_connection(),
        Topics(settings.namespace).events,
        speed=speed,
        max_wait=MAX_WAIT_SECONDS,
        options=options,
    )
    show(f"replayed {report.produced} events of {ARTICLE.name}" + ("" if once else "; Ctrl-C stops it all"))


async def follow_gdelt(
    settings: Settings, once: bool, followed: Followed, show: Callable[[str], None]
) -> None:
    """GDELT at `followed.base_url`, as `crisismon follow gdelt` does, each file's count shown."""
    from replay.follow.gdelt import GdeltSource
    from services.bootstrap import run_follower

    logging.getLogger("replay.follow").setLevel(logging.INFO)  # one line per file: the progress
    since = f" from {followed.since:%Y-%m-%d %H:%M} UTC" if followed.since else " from its newest file"
    pace = "catching up, then done" if once else f"a look every {format_duration(settings.follow_poll)}"
    show(
        f"following GDELT 2.0 at {followed.base_url}{since}: {pace}"
        + ("" if once else "; Ctrl-C stops it all")
    )
    source = GdeltSource(followed.base_url, followed.since, settings.follow_timeout)
    report = await run_follower(settings, source, once, settings.follow_poll, "gdelt")
    show(f"followed {report.produced} files ({report.records} records), {report.failed} failed")


def run_demo(
    settings: Settings,
    config_file: Path | None,
    once: bool,
    speed: float | None,
    show: Callable[[str], None],
    followed: Followed | None = None,
) -> Summary:
    # SIGTERM (a `timeout`, a service manager) stops the demo like Ctrl-C: the `finally` below
    # runs and the worker and broker it started go with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started_broker = ensure_local_broker(settings)
    if started_broker is not None:
        show(f"started a local Kafka {started_broker.version} at {started_broker.bootstrap}")
    worker = start_worker(settings, config_file, settings.data_dir / "worker.log")
    show(f"worker started (pid {worker.pid}, log {settings.data_dir / 'worker.log'})")
    show(f"dashboard: http://{settings.web_host}:{settings.web_port}/  (metrics at /metrics, API at /api)")
    try:
        return asyncio.run(play(settings, once, speed, show, followed))
    finally:
        stop_worker(worker)
        if started_broker is not None:
            local_broker.stop(started_broker)
