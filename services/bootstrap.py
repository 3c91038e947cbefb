"""The one place where the services are wired together from their parts and the settings: the
worker, and the follower of a live source (`run_follower`).

The Kafka side (`services.kafka`: the Faust app with its processor, the feed of the topics,
the intake that appends what the API is sent) and the web side (`services.web`: the view,
the dashboard and API, the metrics) know nothing of each other or of the settings; this
module builds them and hands each what it needs: the intake is the web side's `EventSink`.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime, timedelta

import faust

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
from services.web.app import WebApp
from services.web.metrics import WorkerMetrics
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
    view = View(
        Projection(
            settings.api_max_events, settings.api_history_per_dyad, settings.api_max_updates, config.scale
        ),
        Broadcaster(max_subscribers=settings.api_max_stream_clients),
        max_future_skew=settings.max_future_skew,
    )
    feed = Feed(kafka, topics, view)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    web = WebApp(
        view,
        metrics.registry,
        config,
        settings.web_host,
        settings.web_port,
        token,
        sink=KafkaIntake(kafka, topics.events),
        max_body_bytes=settings.api_max_body_bytes,
        max_future_skew=settings.max_future_skew,
        api_events=metrics.api_events,
        health=health,
        serves_view=settings.api_view,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def serve_web() -> None:
        """The dashboard, API and /metrics, fed from the topics, until the worker stops. Without
        the view (`api_view` off), /metrics and /health only: the worker reads no topic but its
        own stream, and its whole time goes to processing."""
        await asyncio.gather(web.serve(), *([feed.run()] if web.serves_view else []))

    return app


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
