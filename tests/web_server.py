"""The web app on a real socket without Kafka, fed a projection directly: for tests of the server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from services.core import EngineConfig
from services.web.app import WebApp
from services.web.metrics import WorkerMetrics
from services.web.projection import Projection
from services.web.view import View

TOKEN = "s3cret-token"


@asynccontextmanager
async def serving(
    ssl_context: ssl.SSLContext | None = None,
    token: str | None = TOKEN,
    metrics: WorkerMetrics | None = None,
    **options: Any,
) -> AsyncIterator[tuple[WebApp, str]]:
    """A WebApp with an empty projection on a free port; `options` are WebApp's (a sink, limits)."""
    metrics = metrics or WorkerMetrics(10)
    app = WebApp(
        View(Projection(100, 100)),
        metrics.registry,
        EngineConfig(),
        "127.0.0.1",
        0,
        token,
        api_events=metrics.api_events,
        **options,
    )
    runner = app.runner()
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield app, f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))
