"""The web server against careless and hostile clients, without Kafka: the app on a real
socket (TCP, and TLS with a throw-away certificate), with a token, fed a projection directly.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.web.app import SESSION_COOKIE
from tests.builders import event
from tests.web_server import TOKEN, run, serving


async def status(url: str, **headers: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status


async def raw_exchange(base: str, request: bytes) -> bytes:
    """Bytes as they are, no client library in between; the answer's first line."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    return answer.split(b"\r\n", 1)[0]


def test_the_bearer_scheme_is_case_insensitive_and_odd_bytes_are_refused_not_errors() -> None:
    async def check() -> None:
        async with serving() as (_, base):
            assert await status(f"{base}/api/dyads", Authorization=f"bearer {TOKEN}") == 200
            assert await status(f"{base}/api/dyads", Authorization=f"BEARER  {TOKEN} ") == 200
            assert await status(f"{base}/api/dyads", Authorization=f"Basic {TOKEN}") == 401
            for header in (b"Authorization: Bearer \xff", b"Cookie: " + SESSION_COOKIE.encode() + b"=\xff"):
                answer = await raw_exchange(
                    base,
                    b"GET /api/dyads HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n",
                )
                assert answer == b"HTTP/1.1 401 Unauthorized", header

    run(check)


def test_the_cookie_carries_a_session_value_not_the_token() -> None:
    async def check() -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # unsafe: it keeps cookies of an IP address
        async with serving() as (app, base), aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(f"{base}/?access_token={TOKEN}") as page:
                assert page.status == 200
                morsel = SimpleCookie(page.headers["Set-Cookie"])[SESSION_COOKIE]
            assert TOKEN not in page.headers["Set-Cookie"] and morsel.value == app.session
            assert morsel["httponly"] and morsel["samesite"] == "Strict" and not morsel["secure"]
            async with session.get(f"{base}/api/dyads") as answer:
                assert answer.status == 200, "the cookie opens the API"
            assert await status(f"{base}/api/dyads", Cookie=f"{SESSION_COOKIE}={TOKEN}") == 401

    run(check)


def test_over_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    throwaway = ["-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        ["openssl", "req", *throwaway, "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate, key)
    client_context = ssl.create_default_context(cafile=str(certificate))
    client_context.check_hostname = False

    async def check() -> None:
        async with (
            serving(server_context) as (_, base),
            aiohttp.ClientSession() as session,
            session.get(f"{base}/?access_token={TOKEN}", ssl=client_context) as page,
        ):
            assert page.status == 200
            assert SimpleCookie(page.headers["Set-Cookie"])[SESSION_COOKIE]["secure"]

    run(check)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
        b"POST /api/dyads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnope\r\n0\r\n\r\n",
    ],
    ids=["long-url", "long-header", "bad-chunking"],
)
def test_a_request_that_cannot_be_parsed_is_one_warning_line(
    request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def check() -> None:
        async with serving() as (_, base):
            answer = await raw_exchange(base, request_bytes)
            assert answer.split(b" ")[1] == b"400", answer
            await asyncio.sleep(0.1)  # aiohttp logs once the answer is out

    run(check)
    logged = [record for record in caplog.records if record.name.startswith("services.web.app.http")]
    assert logged, "the mistake is logged"
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in logged)
    assert all("\n" not in r.getMessage() and "400" in r.getMessage() for r in logged)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_an_event_whose_id_cannot_stand_in_a_path_is_found_by_query() -> None:
    async def check() -> None:
        async with serving() as (app, base), aiohttp.ClientSession() as session:
            for event_id in ("..", "a/b", "."):
                app.projection.add_record(event(event_id))
            for event_id in ("..", "a/b", "."):
                found: dict[str, Any]
                async with session.get(
                    f"{base}/api/events",
                    params={"id": event_id},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as answer:
                    found = await answer.json()
                assert [e["event"]["event_id"] for e in found["events"]] == [event_id]

    run(check)


def test_without_the_view_only_metrics_and_health_answer_and_the_rest_says_why() -> None:
    async def check() -> None:
        async with serving(token=None, serves_view=False) as (_, base), aiohttp.ClientSession() as session:
            for path in ("/metrics", "/health"):
                async with session.get(f"{base}{path}") as answer:
                    assert answer.status == 200, path
            for method, path in (
                ("GET", "/api/dyads"),
                ("POST", "/api/events"),
                ("GET", "/"),
                ("GET", "/static/app.js"),
            ):
                async with session.request(method, f"{base}{path}", data=b"{}") as answer:
                    assert answer.status == 404, path
                    assert "api_view is off" in (await answer.json(content_type=None))["detail"], path

    run(check)
