"""The worker's web server: the dashboard at `/`, the JSON API under `/api`, and `/metrics`.

Read-only. Answers come from the projection every worker builds from the topics, so they
are complete whichever worker is asked. With `api_token` set, everything but `/metrics`
needs it: as a bearer token, or as the cookie the dashboard gets when it is opened once as
`/?access_token=...` (browsers cannot put headers on an EventSource).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from schemas.outputs import Level
from schemas.validation import describe
from services.core import EngineConfig
from services.web.models import (
    AlertList,
    AlertQuery,
    CurveQuery,
    DyadCurve,
    DyadList,
    EventDetail,
    EventList,
    EventQuery,
    History,
    HistoryQuery,
    Problem,
    StreamMessage,
    Thresholds,
    ViewStatus,
)
from services.web.view import View

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_PARAMETER = "access_token"
SESSION_COOKIE = "crisismon_session"
KEEPALIVE_SECONDS = 15.0
SHUTDOWN_SECONDS = 2.0

Query = TypeVar("Query", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One API route with what the OpenAPI document says about it."""

    path: str
    handler: Handler
    summary: str
    answer: type[BaseModel]
    query: type[BaseModel] | None = None
    media_type: str = "application/json"


def json_response(answer: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=answer.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )


def problem(status: int, detail: str) -> web.HTTPException:
    """An HTTP error whose body is a `Problem`, raised from handlers."""
    kind = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    return kind(
        text=Problem(status=status, detail=detail).model_dump_json(), content_type="application/problem+json"
    )


def parse_query(model: type[Query], request: web.Request) -> Query:
    values = {k: v for k, v in request.query.items() if k != TOKEN_PARAMETER}
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise problem(400, describe(error)) from None


LOCKED_PAGE = """<!doctype html><meta charset="utf-8"><title>CrisisMon: token needed</title>
<p>This CrisisMon dashboard needs its access token: open <code>/?access_token=&lt;token&gt;</code>
(the value of <code>CRISISMON_API_TOKEN</code>).</p>
"""


async def revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    """The dashboard's files change with upgrades: browsers must check them, not keep old ones."""
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"


class ProtocolErrorsInOneLine(logging.Filter):
    """aiohttp answers a request it cannot parse (a URL or headers too long, bad chunking)
    before any handler runs, and logs it as an ERROR with a traceback: it is the client's
    mistake, and anyone can make it, so it becomes one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            reason = (error.message or "").strip().splitlines() or [type(error).__name__]
            record.msg, record.args = f"{record.getMessage()}: {error.code} {reason[-1].strip()[:200]}", ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


http_log = logging.getLogger(f"{__name__}.http")
http_log.addFilter(ProtocolErrorsInOneLine())


def same_secret(given: str, expected: str) -> bool:
    """Constant-time; headers may hold any byte (aiohttp keeps the undecodable as surrogates)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def bearer_token(request: web.Request) -> str | None:
    """The credentials of an `Authorization: Bearer ...` header (the scheme in any case, RFC 9110)."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def dyad_of(request: web.Request) -> str:
    dyad = request.match_info["dyad"].upper()
    if not re.fullmatch(r"[A-Z]{3}-[A-Z]{3}", dyad):
        raise problem(400, f"{dyad!r} is not a dyad: two 3-letter country codes, sorted, e.g. IRN-PAK")
    return dyad


class WebApp:
    def __init__(
        self,
        view: View,
        registry: CollectorRegistry,
        config: EngineConfig,
        host: str,
        port: int,
        token: str | None,
    ) -> None:
        self.view = view
        self.projection = view.projection
        self.broadcaster = view.broadcaster
        self.registry = registry
        self.config = config
        self.host = host
        self.port = port
        self.token = token
        self.session = (
            hmac.new(token.encode(), b"crisismon dashboard session", hashlib.sha256).hexdigest()
            if token
            else ""
        )
        """What the dashboard's cookie carries: derived from the token, so a stolen cookie does
        not give the token itself away (scripts may hold it too), and dies when it changes."""
        self.routes = [
            Route("/api/dyads", self.dyads, "Every dyad: indices, level, last change", DyadList),
            Route(
                "/api/dyads/{dyad}/history",
                self.history,
                "A dyad's index updates in event-time order",
                History,
                HistoryQuery,
            ),
            Route(
                "/api/dyads/{dyad}/curve",
                self.curve,
                "A dyad's E and D along event time, sampled by the core, with the normal its levels"
                " follow: what the dashboard draws",
                DyadCurve,
                CurveQuery,
            ),
            Route("/api/alerts", self.alerts, "Alerts, newest event time first", AlertList, AlertQuery),
            Route(
                "/api/events",
                self.events,
                "Events with source and quote, newest first",
                EventList,
                EventQuery,
            ),
            Route("/api/events/{event_id}", self.event, "One event with its source and quote", EventDetail),
            Route(
                "/api/config", self.thresholds, "The thresholds and half-life the levels follow", Thresholds
            ),
            Route("/api/status", self.status, "Whether the view has caught up with the topics", ViewStatus),
            Route(
                "/api/stream",
                self.stream,
                "Server-Sent Events: `index`, `alert` and `event` messages as they are processed",
                StreamMessage,
                media_type="text/event-stream",
            ),
        ]
        self.application = self.build()

    def build(self) -> web.Application:
        application = web.Application(middlewares=[self.require_token, self.problems])
        for route in self.routes:
            application.router.add_get(route.path, route.handler)
        application.router.add_get("/api/openapi.json", self.openapi)
        application.router.add_get("/metrics", self.prometheus)
        application.router.add_get("/", self.dashboard)
        application.router.add_static("/static", STATIC_DIR)
        application.on_shutdown.append(self.close_streams)
        application.on_response_prepare.append(revalidate_static)
        return application

    async def serve(self) -> None:
        """Serve until cancelled (the view is fed by whoever built it: services.bootstrap)."""
        runner = self.runner()
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        log.info("dashboard and API on http://%s:%d/", self.host, self.port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    def runner(self) -> web.AppRunner:
        return web.AppRunner(
            self.application, shutdown_timeout=SHUTDOWN_SECONDS, access_log=None, logger=http_log
        )

    # Middlewares

    @web.middleware
    async def require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token is None or request.path == "/metrics":
            return await handler(request)
        from_query = request.query.get(TOKEN_PARAMETER)
        given = from_query or bearer_token(request)
        if given is not None:
            allowed = same_secret(given, self.token)
        else:
            allowed = same_secret(request.cookies.get(SESSION_COOKIE, ""), self.session)
        if not allowed:
            if request.path == "/":
                raise web.HTTPUnauthorized(text=LOCKED_PAGE, content_type="text/html")
            raise web.HTTPUnauthorized(
                text=Problem(
                    status=401, detail="a valid bearer token is required (CRISISMON_API_TOKEN)"
                ).model_dump_json(),
                content_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="crisismon"'},
            )
        response = await handler(request)
        if from_query and request.path == "/":
            response.set_cookie(
                SESSION_COOKIE,
                self.session,
                httponly=True,
                samesite="Strict",
                path="/",
                secure=request.secure,
            )
        return response

    @web.middleware
    async def problems(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """aiohttp's own errors (unknown path, wrong method) as `Problem` JSON under /api."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if not request.path.startswith("/api") or error.content_type.endswith("json"):
                raise
            return json_response(Problem(status=error.status, detail=error.reason), error.status)

    # Handlers

    async def dyads(self, request: web.Request) -> web.Response:
        return json_response(DyadList(dyads=self.projection.summaries()))

    async def history(self, request: web.Request) -> web.Response:
        dyad = dyad_of(request)
        query = parse_query(HistoryQuery, request)
        found = self.projection.history(dyad, query.from_, query.to)
        if found is None:
            raise problem(404, f"no index updates for {dyad}")
        updates, truncated = found
        return json_response(History(dyad=dyad, updates=updates, truncated=truncated))

    async def curve(self, request: web.Request) -> web.Response:
        dyad = dyad_of(request)
        query = parse_query(CurveQuery, request)
        found = self.projection.curve(
            dyad, query.from_, query.to, query.points, self.config.half_life_seconds
        )
        if found is None:
            raise problem(404, f"no index updates for {dyad}")
        return json_response(found)

    async def alerts(self, request: web.Request) -> web.Response:
        query = parse_query(AlertQuery, request)
        found = self.projection.find_alerts(query.dyad, query.min_level, query.since, query.limit)
        return json_response(AlertList(alerts=found))

    async def events(self, request: web.Request) -> web.Response:
        query = parse_query(EventQuery, request)
        if query.id is not None:
            found = self.projection.events.get(query.id)
            return json_response(EventList(events=[found] if found else []))
        return json_response(EventList(events=self.projection.find_events(query.dyad, query.limit)))

    async def event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        detail = self.projection.events.get(event_id)
        if detail is None:
            raise problem(404, f"no event {event_id!r} (never seen, or older than the api_max_events kept)")
        return json_response(detail)

    async def thresholds(self, request: web.Request) -> web.Response:
        config = self.config
        return json_response(
            Thresholds(
                levels=list(Level),
                watch=config.watch_threshold,
                warning=config.warning_threshold,
                critical=config.critical_threshold,
                clearing_ratio=config.clearing_ratio,
                half_life_seconds=config.half_life_seconds,
                config_hash=config.computed_with.config_hash,
            )
        )

    async def status(self, request: web.Request) -> web.Response:
        return json_response(
            ViewStatus(
                caught_up=self.view.caught_up,
                records_read=self.view.records_read,
                dyads=len(self.projection.dyads),
                events_kept=len(self.projection.events),
                subscribers=len(self.broadcaster.subscribers),
            )
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue = self.broadcaster.subscribe()
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if message is None:
                    break
                await response.write(message.encode())
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.broadcaster.unsubscribe(queue)
        return response

    async def close_streams(self, _: web.Application) -> None:
        for queue in list(self.broadcaster.subscribers):
            queue.put_nowait(None)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.routes, secured=self.token is not None))

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def dashboard(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def openapi_document(routes: list[Route], secured: bool) -> dict[str, Any]:
    """OpenAPI 3.1 from the routes' pydantic models: the models are the one description."""
    modes: dict[type[BaseModel], Literal["validation", "serialization"]] = {Problem: "serialization"}
    for route in routes:
        modes[route.answer] = "serialization"
        if route.query is not None:
            modes[route.query] = "validation"
    _, schemas = models_json_schema(
        list(modes.items()),
        ref_template="#/components/schemas/{model}",
    )
    components = schemas["$defs"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    paths: dict[str, Any] = {}
    for route in routes:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", route.path)
        ]
        if route.query is not None:
            for name, schema in components[route.query.__name__]["properties"].items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
        errors = {
            str(code): {"description": text, "content": {"application/problem+json": {"schema": problem_ref}}}
            for code, text in ((400, "bad parameter"), (401, "missing or wrong token"), (404, "not found"))
        }
        paths[route.path] = {
            "get": {
                "summary": route.summary,
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": route.summary,
                        "content": {
                            route.media_type: {
                                "schema": {"$ref": f"#/components/schemas/{route.answer.__name__}"}
                            }
                        },
                    },
                    **errors,
                },
            }
        }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "CrisisMon API",
            "version": "1",
            "description": "Read-only views of the crisis topics.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document
