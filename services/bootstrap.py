"""The one place where the services are wired together from their parts and the settings: the
worker, and the follower of a live source (`run_follower`).

The Kafka side (`services.kafka`: the Faust app with its processor, the feed of the topics,
the intake that appends what the API is sent) and the web side (`services.web`: the view,
the dashboard and API, the metrics) know nothing of each other or of the settings; this
module builds them and hands each what it needs: the intake is the web side's `EventSink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from datetime import UTC, datetime, timedelta

import faust
from prometheus_client import CollectorRegistry, Counter

from replay.follow.follower import Follower, FollowOptions, FollowReport
from replay.follow.metrics import FollowMetrics
from replay.follow.progress import ProgressLog
from replay.follow.source import Source
from replay.producer import EventProducer
from schemas.topics import Topics
from services.kafka.feed import Feed
from services.kafka.health import WorkerHealth
from services.kafka.intake import KafkaIntake
from services.kafka.outage import BrokerOutage, quiet_kafka_client_logs
from services.kafka.topics import ensure_topics
from services.kafka.worker import JOIN_TIMEOUT_SECONDS, WorkerOptions, create_app
from services.settings import Settings
from services.web.app import HealthReport, WebApp
from services.web.metrics import WorkerMetrics, api_events_counter
from services.web.projection import Projection
from services.web.stream import Broadcaster
from services.web.view import View


def build_worker(settings: Settings) -> faust.App:
    """The Faust app for these settings, with the web side as one of its tasks."""
    topics = Topics(settings.namespace)
    config = settings.engine_config()
    metrics = WorkerMetrics(settings.metrics_max_dyads)
    kafka = settings.kafka_connection()
    outage = BrokerOutage(settings.kafka_outage_timeout.total_seconds())
    options = WorkerOptions(
        kafka, topics, settings.store, settings.data_dir, settings.max_future_skew, outage
    )
    health = WorkerHealth(
        stall_timeout=settings.worker_stall_timeout.total_seconds(),
        join_timeout=JOIN_TIMEOUT_SECONDS,
        outage_timeout=outage.timeout,
        metrics=metrics,
        topics_timeout=settings.worker_topics_timeout.total_seconds(),
    )
    app = create_app(options, config, metrics, metrics.registry, health)
    web, feed = build_web(settings, metrics.registry, metrics.api_events, health, settings.api_view)

    @app.task  # type: ignore[untyped-decorator]
    async def serve_web() -> None:
        """The dashboard, API and /metrics, fed from the topics, until the worker stops. Without
        the view (`api_view` off), /metrics and /health only: the worker reads no topic but its
        own stream, and its whole time goes to processing."""
        await asyncio.gather(web.serve(), *([feed.run()] if web.serves_view else []))

    return app


def build_web(
    settings: Settings,
    registry: CollectorRegistry,
    api_events: Counter,
    health: HealthReport | None,
    serves_view: bool,
) -> tuple[WebApp, Feed]:
    """The dashboard, API and /metrics (`registry`), and the feed of the topics into their view:
    a worker's web side, or `crisismon api`'s whole."""
    kafka, topics, config = settings.kafka_connection(), Topics(settings.namespace), settings.engine_config()
    view = View(
        Projection(
            settings.api_max_events, settings.api_history_per_dyad, settings.api_max_updates, config.scale
        ),
        Broadcaster(max_subscribers=settings.api_max_stream_clients),
        max_future_skew=settings.max_future_skew,
    )
    token = settings.api_token.get_secret_value() if settings.api_token else None
    web = WebApp(
        view,
        registry,
        config,
        settings.web_host,
        settings.web_port,
        token,
        sink=KafkaIntake(kafka, topics.events),
        max_body_bytes=settings.api_max_body_bytes,
        max_future_skew=settings.max_future_skew,
        api_events=api_events,
        health=health,
        serves_view=serves_view,
    )
    return web, Feed(kafka, topics, view)


def run_api(settings: Settings) -> None:
    """The dashboard, API and /metrics in a process of their own, fed from the topics, until
    stopped (SIGINT/SIGTERM): beside workers run with `api_view` off, the view's reading costs
    their processing nothing (it ran on the worker's event loop and took a third of its time).
    Waits for the broker as the worker does; the topics are created if missing."""
    quiet_kafka_client_logs()
    kafka, topics = settings.kafka_connection(), Topics(settings.namespace)
    outage = BrokerOutage(settings.kafka_outage_timeout.total_seconds())
    registry = CollectorRegistry()
    web, feed = build_web(settings, registry, api_events_counter(registry), None, serves_view=True)

    async def serve() -> None:
        """Until cancelled (SIGTERM as SIGINT), or until one side fails: the other is stopped
        too (its Kafka consumer closed, its port let go), and the failure raised as it is."""
        running = asyncio.current_task()
        assert running is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
        await outage.wait_for_broker(kafka, lambda: ensure_topics(kafka, topics))
        try:
            async with asyncio.TaskGroup() as sides:
                sides.create_task(web.serve())
                sides.create_task(feed.run())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve())


def run_worker(settings: Settings) -> None:
    """Wait for the broker, create the topics if missing, then run the worker until stopped
    (SIGINT/SIGTERM), or until it finds itself stuck (`services.kafka.health`)."""
    from faust.worker import Worker

    quiet_kafka_client_logs()
    kafka, topics = settings.kafka_connection(), Topics(settings.namespace)
    outage = BrokerOutage(settings.kafka_outage_timeout.total_seconds())
    asyncio.run(outage.wait_for_broker(kafka, lambda: ensure_topics(kafka, topics)))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_worker(settings)
    collect_garbage_for_a_long_run()
    # The CLI's logging as set up, not mode's: its colorlog formatter took ~38 µs a line against
    # ~3 µs, and the worker writes one per alert.
    Worker(app, loglevel=settings.log_level.lower(), override_logging=False).execute_from_commandline()


GC_THRESHOLDS = (700, 10, 1000)
"""CPython's default (700, 10, 10) but for full collections, a hundred times rarer."""


def collect_garbage_for_a_long_run() -> None:
    """The worker keeps a large heap of long-lived objects: Faust's, and the API view's tens of
    thousands of events and index updates. A full collection walks every one of them: with
    CPython's default thresholds one came every ~70,000 allocations once the heap had grown by a
    quarter, and the worker ran at ~2,800 events/s (~3,500/s without a collector at all). What
    start-up built is frozen (never walked again), and full collections come a hundred times less
    often. Timed in the worker over a 20,000-event backlog: at a tenth, three full collections of
    ~390,000 objects, ~250 ms each (~15% of the run), found 0 to 600 unreachable objects; at a
    hundredth, none until the worker stops, ~+6% events/s, the same peak memory. Young garbage
    (cycles of futures, tracebacks) goes as often as before: what the full collections found."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_follower(
    settings: Settings, source: Source, once: bool, poll: timedelta, file_format: str
) -> FollowReport:
    """Follow `source` onto crisis.events (topics created if missing), with its /metrics on
    `follow_metrics_port` (0: none), until stopped or, with `once`, caught up."""
    quiet_kafka_client_logs()
    topics = Topics(settings.namespace)
    kafka = settings.kafka_connection()
    outage = BrokerOutage(settings.kafka_outage_timeout.total_seconds())
    await outage.wait_for_broker(kafka, lambda: ensure_topics(kafka, topics))
    metrics = FollowMetrics()
    if settings.follow_metrics_port:
        metrics.serve(settings.web_host, settings.follow_metrics_port)
    options = FollowOptions(
        once,
        poll,
        settings.follow_attempts,
        settings.follow_backoff,
        file_format,
        settings.reader_options(datetime.now(UTC)),
    )
    progress = ProgressLog(kafka, topics.follow_progress, source.key, outage.timeout)
    headers = {"crisismon-follow": source.key}
    async with EventProducer(kafka, topics.events, headers, outage.timeout) as events:
        await progress.start()
        try:
            return await Follower(source, events, progress, metrics, options).run()
        finally:
            await progress.stop()
            await source.close()
