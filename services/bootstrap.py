"""The one place where the worker is wired together from its parts and the settings.

The Kafka side (`services.kafka`: the Faust app with its processor, the feed of the topics,
the intake that appends what the API is sent) and the web side (`services.web`: the view,
the dashboard and API, the metrics) know nothing of each other or of the settings; this
module builds them and hands each what it needs: the intake is the web side's `EventSink`.
"""

from __future__ import annotations

import asyncio

import faust

from schemas.topics import Topics
from services.kafka.feed import Feed
from services.kafka.intake import KafkaIntake
from services.kafka.topics import ensure_topics
from services.kafka.worker import WorkerOptions, create_app
from services.settings import Settings
from services.web.app import WebApp
from services.web.metrics import WorkerMetrics
from services.web.projection import Projection
from services.web.view import View


def build_worker(settings: Settings) -> faust.App:
    """The Faust app for these settings, with the web side as one of its tasks."""
    topics = Topics(settings.namespace)
    config = settings.engine_config()
    metrics = WorkerMetrics(settings.metrics_max_dyads)
    options = WorkerOptions(
        settings.kafka_bootstrap, topics, settings.store, settings.data_dir, settings.max_future_skew
    )
    app = create_app(options, config, metrics, metrics.registry)
    view = View(
        Projection(settings.api_max_events, settings.api_history_per_dyad, config.scale),
        max_future_skew=settings.max_future_skew,
    )
    feed = Feed(settings.kafka_bootstrap, topics, view)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    web = WebApp(
        view,
        metrics.registry,
        config,
        settings.web_host,
        settings.web_port,
        token,
        sink=KafkaIntake(settings.kafka_bootstrap, topics.events),
        max_body_bytes=settings.api_max_body_bytes,
        max_future_skew=settings.max_future_skew,
        api_events=metrics.api_events,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def serve_web() -> None:
        """The dashboard, API and /metrics, fed from the topics, until the worker stops."""
        await asyncio.gather(web.serve(), feed.run())

    return app


def run_worker(settings: Settings) -> None:
    """Create the topics if missing, then run the worker until stopped (SIGINT/SIGTERM)."""
    from faust.worker import Worker

    asyncio.run(ensure_topics(settings.kafka_bootstrap, Topics(settings.namespace)))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Worker(build_worker(settings), loglevel=settings.log_level.lower()).execute_from_commandline()
