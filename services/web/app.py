"""The worker's web server: the dashboard at `/`, the JSON API under `/api`, and `/metrics`.

Answers come from the projection every worker builds from the topics, so they are complete
whichever worker is asked. The one write, `POST /api/events`, appends analysts' records to
`crisis.events` through an `EventSink` (services.web.intake). With `api_token` set,
everything but `/metrics` needs it: as a bearer token, or, to read, as the cookie the
dashboard gets when it is opened once as `/?access_token=...` (browsers cannot put headers
on an EventSource). A write needs the bearer token itself: see `WebApp.require_token`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_urldispatcher import _default_expect_handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from schemas.events import CrisisEvent, Retraction, record_id
from schemas.outputs import Level
from schemas.validation import describe
from services.core import EngineConfig
from services.web.intake import EventSink, NotRecords, read_body
from services.web.metrics import api_events_counter
from services.web.models import (
    AlertList,
    AlertQuery,
    CurveQuery,
    DyadCurve,
    DyadList,
    EventDetail,
    EventList,
    EventQuery,
    Health,
    History,
    HistoryQuery,
    PostedEvents,
    Problem,
    Rejection,
    StreamMessage,
    Thresholds,
    UnacknowledgedEvents,
    ViewStatus,
)
from services.web.stream import TooManySubscribers
from services.web.view import View

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_PARAMETER = "access_token"
SESSION_COOKIE = "crisismon_session"
KEEPALIVE_SECONDS = 15.0
STREAM_RETRY_SECONDS = 30
"""What a stream client refused for being one too many is told to wait (Retry-After)."""
STREAM_WRITE_SECONDS = 30.0
"""How long one write to a stream client may wait for it to read before it is let go."""
SHUTDOWN_SECONDS = 2.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; any other is a write."""

Query = TypeVar("Query", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Failure:
    """An error answer a route gives, for the OpenAPI document."""

    status: int
    description: str
    answer: type[BaseModel] = Problem


READ_FAILURES = (
    Failure(400, "bad parameter"),
    Failure(401, "missing or wrong token"),
    Failure(404, "not found"),
)


@dataclass(frozen=True)
class RequestBody:
    """What a route reads, for the OpenAPI document: records of these models, as JSON Lines or
    as a JSON array (or one object)."""

    description: str
    records: tuple[type[BaseModel], ...]


@dataclass(frozen=True)
class Route:
    """One API route with what the OpenAPI document says about it."""

    path: str
    handler: Handler
    summary: str
    answer: type[BaseModel]
    query: type[BaseModel] | None = None
    media_type: str = "application/json"
    method: Literal["get", "post"] = "get"
    body: RequestBody | None = None
    failures: tuple[Failure, ...] = READ_FAILURES


def json_response(answer: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=answer.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )


def problem_response(answer: Problem) -> web.Response:
    """A `Problem` (or a richer one) answered, not raised: for statuses aiohttp has no simple
    exception for."""
    return web.Response(
        text=answer.model_dump_json(by_alias=True),
        status=answer.status,
        content_type="application/problem+json",
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


async def deliver(sink: EventSink, records: list[CrisisEvent | Retraction], source: str) -> list[str | None]:
    """The sink's outcome per record; should it break its contract and raise, every record
    counts as not acknowledged, and the client still gets its answer."""
    try:
        return await sink.append(records, source)
    except Exception as error:
        log.exception("the event sink failed on %d records from %s", len(records), source)
        return [f"the event sink failed: {type(error).__name__}"] * len(records)


def same_origin(origin: str, host: str) -> bool:
    """Whether an `Origin` header names the server the request was sent to (`null`, sent by
    sandboxed pages and some redirects, names none)."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def dyad_of(request: web.Request) -> str:
    dyad = request.match_info["dyad"].upper()
    if not re.fullmatch(r"[A-Z]{3}-[A-Z]{3}", dyad):
        raise problem(400, f"{dyad!r} is not a dyad: two 3-letter country codes, sorted, e.g. IRN-PAK")
    return dyad


class HealthReport(Protocol):
    """What the worker finds stuck (services.kafka.health): one line per stall, none when fine."""

    def problems(self) -> list[str]: ...


UNGUARDED_PATHS = ("/metrics", "/health")
"""Read by Prometheus and supervisors, which hold no token; they tell nothing of the events."""


class WebApp:
    def __init__(
        self,
        view: View,
        registry: CollectorRegistry,
        config: EngineConfig,
        host: str,
        port: int,
        token: str | None,
        sink: EventSink | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_future_skew: timedelta = timedelta(days=1),
        api_events: Counter | None = None,
        health: HealthReport | None = None,
        serves_view: bool = True,
    ) -> None:
        """`sink`: where `POST /api/events` appends (none: it answers 503). `max_body_bytes`:
        the largest body it reads. `max_future_skew`: as the worker's, so that the API refuses
        what the worker would. `api_events`: where it counts records by outcome (none: a
        counter of its own, not exported). `health`: what the worker finds stuck (none: nothing
        is watched). `serves_view`: off (`api_view`), the view is not fed and only /metrics and
        /health answer; every other path says why it does not (404)."""
        self.serves_view = serves_view
        self.view = view
        self.projection = view.projection
        self.broadcaster = view.broadcaster
        self.registry = registry
        self.config = config
        self.host = host
        self.port = port
        self.token = token
        self.sink = sink
        self.max_body_bytes = max_body_bytes
        self.max_future_skew = max_future_skew
        self.api_events = api_events if api_events is not None else api_events_counter(None)
        self.health = health
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
            Route(
                "/api/events",
                self.append_events,
                "Append events and retractions to crisis.events; answered once Kafka has"
                " acknowledged every accepted record",
                PostedEvents,
                method="post",
                body=RequestBody(
                    "CrisisEvent or Retraction records: JSON Lines (application/x-ndjson or"
                    " application/jsonl; blank lines skipped), or a JSON array of them, or one"
                    " (application/json). With another type or none, the first character that is"
                    " not a space tells: `[` an array, `{` one object or JSON Lines",
                    (CrisisEvent, Retraction),
                ),
                failures=(
                    Failure(400, "the body is neither JSON Lines nor a JSON array or object"),
                    Failure(401, "missing or wrong bearer token (the dashboard's cookie is not enough)"),
                    Failure(403, "sent by a page of another origin"),
                    Failure(413, "the body is over api_max_body_bytes"),
                    Failure(422, "no record was valid: each is listed with why", PostedEvents),
                    Failure(
                        503,
                        "Kafka did not acknowledge some records (listed), or the server takes no events",
                        UnacknowledgedEvents,
                    ),
                ),
            ),
            Route("/api/events/{event_id}", self.event, "One event with its source and quote", EventDetail),
            Route(
                "/api/config", self.thresholds, "The thresholds and half-life the levels follow", Thresholds
            ),
            Route("/api/status", self.status, "Whether the view has caught up with the topics", ViewStatus),
            Route(
                "/api/stream",
                self.stream,
                "Server-Sent Events: `index`, `alert` and `event` messages as they are processed,"
                " each with an id; with `Last-Event-ID`, first what was missed (or `reload`)",
                StreamMessage,
                media_type="text/event-stream",
                failures=(
                    *READ_FAILURES,
                    Failure(503, "api_max_stream_clients are connected: see Retry-After"),
                ),
            ),
        ]
        self.application = self.build()

    def build(self) -> web.Application:
        application = web.Application(
            middlewares=[self.refuse_cross_origin_writes, self.require_token, self.problems]
        )
        application.on_shutdown.append(self.close_streams)
        application.on_cleanup.append(self.close_sink)
        application.on_response_prepare.append(revalidate_static)
        application.router.add_get("/metrics", self.prometheus)
        application.router.add_get("/health", self.healthy)
        if not self.serves_view:
            application.router.add_route("*", "/{path:.*}", self.no_view)
            return application
        for route in self.routes:
            if route.method == "post":
                application.router.add_post(
                    route.path, route.handler, expect_handler=self.expect_body_within_limit
                )
            else:
                application.router.add_get(route.path, route.handler)
        application.router.add_get("/api/openapi.json", self.openapi)
        application.router.add_get("/", self.dashboard)
        application.router.add_static("/static", STATIC_DIR)
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
    async def refuse_cross_origin_writes(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A write whose `Origin` is another site's is refused (403), token or not.

        Browsers add `Origin` to every cross-origin POST; analysts' tools (curl, scripts) send
        none, and the dashboard writes nothing. Without it, any web page a user of a worker
        with no token opens could POST records to it (an HTML form can send a text/plain body
        that reads as JSON). With a token this is a second lock: see `require_token`.
        """
        origin = request.headers.get("Origin")
        if request.method in SAFE_METHODS or origin is None or same_origin(origin, request.host):
            return await handler(request)
        return problem_response(
            Problem(status=403, detail=f"writes from a page of another origin ({origin[:100]}) are refused")
        )

    @web.middleware
    async def require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Reads take the token as a bearer token, as `?access_token=`, or as the dashboard's
        cookie. Writes take only the bearer token: a browser sends the cookie with any request
        to this server, also one a page of another site makes it send (cross-site request
        forgery: SameSite=Strict helps, but not against a page of a sibling host of the same
        site), while an `Authorization` header is only ever sent by who holds the token. The
        token in the query is refused for writes too, as addresses end up in logs and history.
        """
        if self.token is None or request.path in UNGUARDED_PATHS:
            return await handler(request)
        from_query = request.query.get(TOKEN_PARAMETER)
        if request.method not in SAFE_METHODS:
            given = bearer_token(request)
            allowed = given is not None and same_secret(given, self.token)
        elif (given := from_query or bearer_token(request)) is not None:
            allowed = same_secret(given, self.token)
        else:
            allowed = same_secret(request.cookies.get(SESSION_COOKIE, ""), self.session)
        if not allowed:
            if request.path == "/":
                raise web.HTTPUnauthorized(text=LOCKED_PAGE, content_type="text/html")
            needed = (
                "a valid bearer token is required (CRISISMON_API_TOKEN)"
                if request.method in SAFE_METHODS
                else "a write needs a valid bearer token in an Authorization header (CRISISMON_API_TOKEN):"
                " the dashboard's cookie and ?access_token= are not taken for writes"
            )
            raise web.HTTPUnauthorized(
                text=Problem(status=401, detail=needed).model_dump_json(),
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
        found, following = self.projection.find_alerts(
            query.dyad, query.min_level, query.since, query.limit, query.cursor
        )
        return json_response(AlertList(alerts=found, next=following))

    async def events(self, request: web.Request) -> web.Response:
        query = parse_query(EventQuery, request)
        if query.id is not None:
            found = self.projection.event(query.id)
            return json_response(EventList(events=[found] if found else [], next=None))
        found_events, following = self.projection.find_events(query.dyad, query.limit, query.cursor)
        return json_response(EventList(events=found_events, next=following))

    async def event(self, request: web.Request) -> web.Response:
        event_id = request.match_info["event_id"]
        detail = self.projection.event(event_id)
        if detail is None:
            raise problem(404, f"no event {event_id!r} (never seen, or older than the api_max_events kept)")
        return json_response(detail)

    async def append_events(self, request: web.Request) -> web.Response:
        """`POST /api/events`: validate the body's records as the worker would, append the valid
        ones through the sink, and answer once it has had every one acknowledged.

        200 when some were appended (the refused ones listed); 422 when none were valid (all
        listed); 400 when the body is not records at all; 413 when it is over the limit (it is
        not read past it); 503 when the sink did not acknowledge some (named), or there is none.
        """
        if self.sink is None:
            return problem_response(Problem(status=503, detail="no event sink: this server takes no events"))
        body = await self.read_within_limit(request)
        if body is None:
            return self.too_large()
        try:
            # Off the event loop: a full body takes a while to validate, and the worker's
            # stream processors share the loop.
            posted = await asyncio.to_thread(
                read_body, body, request.content_type, datetime.now(UTC), self.max_future_skew
            )
        except NotRecords as error:
            return problem_response(Problem(status=400, detail=str(error)))
        self.api_events.labels("rejected").inc(posted.rejected_total)
        rejected = [Rejection(number=number, reason=reason) for number, reason in posted.rejected]
        if not posted.records:
            return json_response(
                PostedEvents(
                    read_as=posted.layout,
                    accepted=[],
                    rejected=rejected,
                    rejected_total=posted.rejected_total,
                ),
                422,
            )
        source = f"api:{request.remote or 'unknown'}"
        outcomes = await deliver(self.sink, posted.records, source)
        ids = [record_id(record) for record in posted.records]
        accepted = [id_ for id_, why in zip(ids, outcomes, strict=True) if why is None]
        missing = [(id_, why) for id_, why in zip(ids, outcomes, strict=True) if why is not None]
        self.api_events.labels("accepted").inc(len(accepted))
        self.api_events.labels("unacknowledged").inc(len(missing))
        if missing:
            first_reason = missing[0][1]
            log.warning(
                "%d of %d records from %s not acknowledged: %s", len(missing), len(ids), source, first_reason
            )
            return problem_response(
                UnacknowledgedEvents(
                    status=503,
                    detail=f"{len(missing)} of {len(ids)} valid records were not acknowledged"
                    f" ({first_reason}); sending them again is safe",
                    unacknowledged=[id_ for id_, _ in missing],
                    accepted=accepted,
                    rejected=rejected,
                    rejected_total=posted.rejected_total,
                )
            )
        log.info("%d records appended from %s, %d refused", len(ids), source, posted.rejected_total)
        return json_response(
            PostedEvents(
                read_as=posted.layout,
                accepted=accepted,
                rejected=rejected,
                rejected_total=posted.rejected_total,
            )
        )

    async def read_within_limit(self, request: web.Request) -> bytes | None:
        """The body, or None as soon as it is known to be over the limit: from its announced
        length before a byte is read, or while reading one sent without a length (chunked)."""
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def too_large(self) -> web.Response:
        return problem_response(
            Problem(status=413, detail=f"the body is over {self.max_body_bytes} bytes (api_max_body_bytes)")
        )

    async def expect_body_within_limit(self, request: web.Request) -> web.StreamResponse | None:
        """A client that asks before sending a body (`Expect: 100-continue`, as curl does for
        big ones) is told 413 at once when the length it announces is over the limit, instead
        of being invited to send what would be refused."""
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return self.too_large()
        await _default_expect_handler(request)
        return None

    async def close_sink(self, _: web.Application) -> None:
        if self.sink is not None:
            await self.sink.close()

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
                subscribers=len(self.broadcaster.connected),
                stalls=self.stalls(),
            )
        )

    def stalls(self) -> list[str]:
        return self.health.problems() if self.health else []

    async def healthy(self, request: web.Request) -> web.Response:
        stalls = self.stalls()
        return json_response(Health(healthy=not stalls, stalls=stalls), 503 if stalls else 200)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        try:
            queue = self.broadcaster.subscribe(request.headers.get("Last-Event-ID"))
        except TooManySubscribers as refusal:
            log.warning("refused an /api/stream client: %s (api_max_stream_clients)", refusal)
            answer = problem_response(Problem(status=503, detail=f"{refusal}: try again later"))
            answer.headers["Retry-After"] = str(STREAM_RETRY_SECONDS)
            return answer
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    message = ": keep-alive\n\n"
                if message is None:
                    break
                # A client that stops reading blocks the write: past the limit, it is let go.
                await asyncio.wait_for(response.write(message.encode()), STREAM_WRITE_SECONDS)
        except (ConnectionError, TimeoutError):
            pass  # the client went away, or stopped reading
        finally:
            self.broadcaster.unsubscribe(queue)
        return response

    async def close_streams(self, _: web.Application) -> None:
        self.broadcaster.close()

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(self.routes, secured=self.token is not None))

    async def prometheus(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def no_view(self, request: web.Request) -> web.Response:
        raise problem(
            404,
            "this worker serves no API view (api_view is off): /metrics and /health only; the"
            " dashboard and /api are on a worker with api_view on",
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
        for failure in route.failures:
            modes[failure.answer] = "serialization"
        for record in route.body.records if route.body else ():
            modes[record] = "validation"
    _, schemas = models_json_schema(
        list(modes.items()),
        ref_template="#/components/schemas/{model}",
    )
    components = schemas["$defs"]
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
            str(failure.status): {
                "description": failure.description,
                "content": {
                    "application/problem+json"
                    if issubclass(failure.answer, Problem)
                    else "application/json": {"schema": reference(failure.answer)}
                },
            }
            for failure in route.failures
        }
        operation: dict[str, Any] = {
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": route.summary,
                    "content": {route.media_type: {"schema": reference(route.answer)}},
                },
                **errors,
            },
        }
        if route.body is not None:
            operation["requestBody"] = request_body(route.body)
        paths.setdefault(route.path, {})[route.method] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "CrisisMon API",
            "version": "1",
            "description": "Views of the crisis topics, and the appending of records to crisis.events.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def reference(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(body: RequestBody) -> dict[str, Any]:
    """OpenAPI 3.1 cannot say "each line is one of these" (3.2's itemSchema can): the JSON Lines
    types show the schema of one line."""
    record = {"oneOf": [reference(model) for model in body.records]}
    one_per_line = {"schema": record}
    return {
        "required": True,
        "description": body.description,
        "content": {
            "application/x-ndjson": one_per_line,
            "application/jsonl": one_per_line,
            "application/json": {"schema": {"oneOf": [{"type": "array", "items": record}, record]}},
        },
    }
