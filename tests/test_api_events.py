"""`POST /api/events`: analysts' records validated by the worker's rules and appended to
`crisis.events`.

First without Kafka, the app on a real socket with an in-memory sink (tests.fakes); then the
Kafka adapter against a port nobody listens on; then a real worker on the real broker, where
what is POSTed must give the backtest's alerts, and be on the log before the answer comes.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from openapi_spec_validator import validate
from prometheus_client import generate_latest

from devtools.broker import Broker
from schemas.events import CrisisEvent, Retraction, parse_record, record_id
from schemas.kafka import KafkaConnection
from schemas.topics import PARTITIONS, SOURCE_HEADER, Topics
from services.core import EngineConfig
from services.core.timeutil import too_far_ahead
from services.kafka.intake import KafkaIntake
from services.kafka.topics import reader
from services.web.app import SESSION_COOKIE, WebApp, openapi_document
from services.web.intake import NotRecords, read_body
from services.web.metrics import WorkerMetrics
from services.web.projection import Projection
from services.web.view import View
from tests.builders import event, retraction
from tests.fakes import FakeEventSink
from tests.live import (
    WorkerProcess,
    backtest_alert_ids,
    by_dyad,
    read_alerts,
    wait_processed,
)
from tests.ports import free_port
from tests.synthetic import write_events
from tests.test_pipeline import ARTICLE
from tests.web_server import TOKEN, run, serving

LIMIT = 4096
NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}


def line(record: CrisisEvent | Retraction) -> str:
    return record.model_dump_json()


async def post(base: str, body: bytes | str, **headers: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/api/events", data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json(content_type=None)


def posted(sink: FakeEventSink | None, body: bytes | str, token: str | None = None, **headers: str) -> Any:
    """POST once to a fresh server: (status, answer)."""
    found: list[tuple[int, dict[str, Any]]] = []

    async def exchange() -> None:
        async with serving(token=token, sink=sink, max_body_bytes=LIMIT) as (_, base):
            found.append(await post(base, body, **headers))

    run(exchange)
    return found[0]


# Without Kafka: reading, validating, answering


def test_json_lines_are_appended_in_order_with_their_source() -> None:
    sink = FakeEventSink()
    records: list[CrisisEvent | Retraction] = [
        event("a", 0),
        event("same-country", 1, source="IRN", target="IRN"),
        retraction("a", 2),
    ]
    status, answer = posted(sink, "\n".join(map(line, records)) + "\n", **NDJSON)
    assert status == 200, answer
    assert answer == {
        "read_as": "json-lines",
        "accepted": ["a", "same-country", "retract-a"],
        "rejected": [],
        "rejected_total": 0,
    }
    assert [record for record, _ in sink.appended] == records
    assert {source for _, source in sink.appended} == {"api:127.0.0.1"}
    assert records[1].dyad is None  # no dyad: still a record of the log (the worker counts it so)


def test_a_json_array_and_a_single_object_are_taken() -> None:
    sink = FakeEventSink()
    status, answer = posted(sink, f"[\n {line(event('a'))} , {line(event('b', 1))}\n]", **JSON)
    assert (status, answer["read_as"], answer["accepted"]) == (200, "json-array", ["a", "b"])
    status, answer = posted(sink, line(event("c")), **JSON)
    assert (status, answer["read_as"], answer["accepted"]) == (200, "json-object", ["c"])
    assert sink.ids() == ["a", "b", "c"]


def test_without_a_known_type_the_first_character_tells() -> None:
    pretty = json.dumps(json.loads(line(event("pretty"))), indent=2)
    cases = {
        f"  [{line(event('a'))}]": ("json-array", ["a"]),
        pretty: ("json-object", ["pretty"]),
        f"{line(event('b'))}\n{line(event('c'))}": ("json-lines", ["b", "c"]),
    }
    for content_type in (None, "text/plain", "application/octet-stream"):
        for body, (layout, ids) in cases.items():
            headers = {"Content-Type": content_type} if content_type else {}
            status, answer = posted(FakeEventSink(), body.encode(), **headers)
            assert (status, answer["read_as"], answer["accepted"]) == (200, layout, ids), content_type


def test_refused_lines_are_numbered_and_said_why_beside_the_accepted_ids() -> None:
    sink = FakeEventSink()
    future = event("future").model_copy(update={"event_time": datetime.now(UTC) + timedelta(days=3)})
    unknown_code = line(event("bad-code")).replace('"cameo_code":"195"', '"cameo_code":"999"')
    body = "\n".join(
        [
            line(event("a")),  # 1
            "",  # 2: blank lines are skipped, not refused
            "{not json",  # 3
            unknown_code,  # 4
            "   ",  # 5
            line(future),  # 6
            line(retraction("a", 1)),  # 7
            "[1, 2]",  # 8
        ]
    )
    status, answer = posted(sink, body, **NDJSON)
    assert status == 200
    assert answer["accepted"] == ["a", "retract-a"] == sink.ids()
    assert [r["number"] for r in answer["rejected"]] == [3, 4, 6, 8] and answer["rejected_total"] == 4
    reasons = {r["number"]: r["reason"] for r in answer["rejected"]}
    assert "json" in reasons[3].lower()
    assert reasons[4] == "cameo_code: Value error, unknown CAMEO code '999'"
    assert reasons[6].startswith("event_time: ") and reasons[6].endswith("(max_future_skew)")
    assert all("\n" not in reason for reason in reasons.values())


def test_array_items_are_numbered_from_one() -> None:
    body = json.dumps([{"event_id": "x"}, json.loads(line(event("a"))), "nope"])
    status, answer = posted(FakeEventSink(), body, **JSON)
    assert status == 200 and answer["accepted"] == ["a"]
    assert [r["number"] for r in answer["rejected"]] == [1, 3]
    assert "provenance: Field required" in answer["rejected"][0]["reason"]


def test_when_nothing_is_valid_the_answer_is_422_and_the_sink_sees_nothing() -> None:
    sink = FakeEventSink()
    status, answer = posted(sink, '{"event_id": "x"}\n{"retracts": "y"}\n', **NDJSON)
    assert status == 422
    assert answer["accepted"] == [] and [r["number"] for r in answer["rejected"]] == [1, 2]
    assert sink.calls == 0


def test_a_body_that_is_not_records_is_a_400() -> None:
    for body, headers, says in [
        (b"\xff\xfe" + line(event("a")).encode(), NDJSON, "not UTF-8"),
        (b"42", JSON, "not a number"),
        (b"null", JSON, "not null"),
        (b'{"a": 1}\n{"b": 2}', JSON, "not JSON"),
        (b"", {}, "neither JSON Lines"),
        (b"\n \n", NDJSON, "no records"),
        (b"hello", {}, "neither JSON Lines"),
        (b"[" * 3000, {}, "nested too deeply"),
    ]:
        sink = FakeEventSink()
        status, answer = posted(sink, body, **headers)
        assert (status, answer["status"]) == (400, 400), body[:20]
        assert says in answer["detail"], answer
        assert sink.calls == 0


def test_a_body_over_the_limit_is_413_unread_and_nothing_is_appended() -> None:
    sink = FakeEventSink()
    records = "\n".join(line(event(f"e{n}")) for n in range(20))
    assert len(records) > LIMIT

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(records), 500):
            yield records[start : start + 500].encode()

    async def check() -> None:
        async with serving(token=None, sink=sink, max_body_bytes=LIMIT) as (_, base):
            status, answer = await post(base, records, **NDJSON)  # with a Content-Length
            assert (status, answer["status"]) == (413, 413)
            assert "api_max_body_bytes" in answer["detail"]
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{base}/api/events", data=chunked(), headers=NDJSON) as answer_,
            ):
                assert "Content-Length" not in answer_.request_info.headers
                assert answer_.status == 413
            # Asked first (Expect: 100-continue): refused before a byte of the body is sent.
            first_line = await raw_first_line(
                base,
                b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                b"Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
            )
            assert first_line == b"HTTP/1.1 413 Request Entity Too Large"
            # Not asked: refused on the announced length alone, with none of the body sent yet.
            first_line = await asyncio.wait_for(
                raw_first_line(
                    base,
                    b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                    b"Content-Length: 10000000\r\n\r\n",
                ),
                5,
            )
            assert first_line == b"HTTP/1.1 413 Request Entity Too Large"
            status, answer = await post(base, records[: LIMIT - 100].rsplit("\n", 1)[0], **NDJSON)
            assert status == 200, "under the limit it is taken"
        assert sink.calls == 1

    run(check)


async def raw_first_line(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader_, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader_.readline()
    writer.close()
    return answer.rstrip(b"\r\n")


def test_a_write_needs_the_bearer_token_not_the_cookie_nor_the_query() -> None:
    sink = FakeEventSink()
    body = line(event("a"))

    async def check() -> None:
        async with serving(sink=sink, max_body_bytes=LIMIT) as (app, base):
            assert (await post(base, body, **NDJSON))[0] == 401
            assert (await post(base, body, Authorization="Bearer wrong", **NDJSON))[0] == 401
            # The dashboard's cookie opens the reads, not the writes (cross-site request forgery).
            cookie = f"{SESSION_COOKIE}={app.session}"
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/api/dyads", headers={"Cookie": cookie}) as read:
                    assert read.status == 200
                async with session.post(
                    f"{base}/api/events", data=body, headers={"Cookie": cookie, **NDJSON}
                ) as write:
                    assert write.status == 401
                    assert "cookie" in (await write.json(content_type=None))["detail"]
                async with session.post(
                    f"{base}/api/events", params={"access_token": TOKEN}, data=body, headers=NDJSON
                ) as write:
                    assert write.status == 401
            assert sink.calls == 0
            status, answer = await post(base, body, Authorization=f"bearer {TOKEN}", **NDJSON)
            assert (status, answer["accepted"]) == (200, ["a"])

    run(check)


def test_a_write_from_a_page_of_another_origin_is_refused() -> None:
    sink = FakeEventSink()
    form_body = line(event("a"))  # what an HTML form with enctype=text/plain can be made to send

    async def check() -> None:
        async with serving(token=None, sink=sink, max_body_bytes=LIMIT) as (_, base):
            for origin in ("https://evil.example", "null"):
                status, answer = await post(base, form_body, Origin=origin, **{"Content-Type": "text/plain"})
                assert (status, answer["status"]) == (403, 403)
            assert sink.calls == 0
            status, _ = await post(base, form_body, Origin=base, **NDJSON)
            assert status == 200, "the server's own pages may write"

    run(check)


def test_records_kafka_did_not_acknowledge_are_named_in_a_503() -> None:
    body = "\n".join([line(event("a")), line(event("b")), "oops", line(event("c"))])
    status, answer = posted(FakeEventSink(refuse={"b"}), body, **NDJSON)
    assert (status, answer["status"]) == (503, 503)
    assert answer["unacknowledged"] == ["b"] and answer["accepted"] == ["a", "c"]
    assert [r["number"] for r in answer["rejected"]] == [3]
    assert "cannot be reached" in answer["detail"] and "again" in answer["detail"]
    status, answer = posted(FakeEventSink(everything=True), body, **NDJSON)
    assert (status, answer["unacknowledged"], answer["accepted"]) == (503, ["a", "b", "c"], [])


def test_a_sink_that_breaks_its_contract_still_gets_the_client_a_503() -> None:
    class Broken(FakeEventSink):
        async def append(self, records: Any, source: str) -> list[str | None]:
            raise RuntimeError("bug")

    status, answer = posted(Broken(), line(event("a")), **NDJSON)
    assert (status, answer["unacknowledged"]) == (503, ["a"])


def test_without_a_sink_a_write_is_503() -> None:
    status, answer = posted(None, line(event("a")), **NDJSON)
    assert (status, answer["detail"]) == (503, "no event sink: this server takes no events")


def test_the_outcomes_are_counted_and_the_sink_is_closed_with_the_server() -> None:
    metrics = WorkerMetrics(10)
    sink = FakeEventSink(refuse={"b"})

    async def check() -> None:
        async with serving(token=None, metrics=metrics, sink=sink, max_body_bytes=LIMIT) as (_, base):
            await post(base, "\n".join([line(event("a")), line(event("b")), "x", "y"]), **NDJSON)
            await post(base, line(event("c")), **NDJSON)
            assert not sink.closed
        assert sink.closed

    run(check)
    text = generate_latest(metrics.registry).decode()
    for outcome, count in (("accepted", 2), ("rejected", 2), ("unacknowledged", 1)):
        assert f'crisismon_api_events_total{{outcome="{outcome}"}} {count:.1f}' in text


def test_the_openapi_document_describes_the_write() -> None:
    app = WebApp(View(Projection(10, 10)), WorkerMetrics(10).registry, EngineConfig(), "127.0.0.1", 0, None)
    document = openapi_document(app.routes, secured=True)
    validate(document)
    write = document["paths"]["/api/events"]["post"]
    assert set(document["paths"]["/api/events"]) == {"get", "post"}
    assert set(write["requestBody"]["content"]) == {
        "application/x-ndjson",
        "application/jsonl",
        "application/json",
    }
    responses = write["responses"]
    assert set(responses) == {"200", "400", "401", "403", "413", "422", "503"}
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/PostedEvents")
    unacknowledged = responses["503"]["content"]["application/problem+json"]["schema"]["$ref"]
    assert unacknowledged.endswith("/UnacknowledgedEvents")
    assert {"CrisisEvent", "Retraction", "Rejection"} <= set(document["components"]["schemas"])


def test_a_line_is_cut_at_newlines_only() -> None:
    """U+2028 may stand as it is inside a JSON string; str.splitlines would cut there."""
    quoted = event("a").model_copy(update={"summary": "one\u2028two\x1cthree"})
    body = (line(quoted).replace("\\u2028", "\u2028") + "\r\n" + line(event("b"))).encode()
    found = read_body(body, "application/x-ndjson", datetime.now(UTC), timedelta(days=1))
    assert [r.summary for r in found.records if isinstance(r, CrisisEvent)] == [
        "one\u2028two\x1cthree",
        "test event b",
    ]
    assert found.rejected == []


def test_the_future_is_refused_with_the_workers_words() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    ahead = event("ahead").model_copy(update={"event_time": now + timedelta(days=2)})
    found = read_body(line(ahead).encode(), "application/x-ndjson", now, timedelta(days=1))
    assert found.rejected == [(1, too_far_ahead(ahead.event_time, now, timedelta(days=1)))]
    try:
        read_body(b"[]", "application/json", now, timedelta(days=1))
    except NotRecords as error:
        assert str(error) == "the body holds no records"
    else:
        raise AssertionError("an empty array holds no records")


# The Kafka adapter without a broker


def test_the_intake_reports_an_unreachable_kafka_instead_of_raising() -> None:
    intake = KafkaIntake(KafkaConnection(f"127.0.0.1:{free_port()}"), "crisis.events", ack_timeout=2)

    async def check() -> list[str | None]:
        try:
            return await intake.append([event("a"), event("b")], "api:tests")
        finally:
            await intake.close()

    outcomes = asyncio.run(asyncio.wait_for(check(), 30))
    assert len(outcomes) == 2 and all(why and "cannot be reached" in why for why in outcomes), outcomes


# A real worker on the real broker


def post_to(running: WorkerProcess, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{running.url}/api/events", data=body, headers=NDJSON, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return int(answer.status), json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def read_log(bootstrap: str, topic: str, idle: float = 1.0) -> list[ConsumerRecord[bytes, bytes]]:
    async def read() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = reader(KafkaConnection(bootstrap), topic)
        await consumer.start()
        found: list[ConsumerRecord[bytes, bytes]] = []
        try:
            while batch := await consumer.getmany(timeout_ms=int(idle * 1000)):
                found += [message for messages in batch.values() for message in messages]
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_the_article_posted_to_a_worker_gives_the_backtests_alerts(
    kafka_broker: Broker, kafka_namespace: str, worker: Callable[..., WorkerProcess]
) -> None:
    bootstrap = kafka_broker.bootstrap
    running = worker().wait_for_web()
    status, answer = post_to(running, ARTICLE.read_bytes())
    expected = [parse_record(row) for row in ARTICLE.read_text().splitlines() if row.strip()]
    assert status == 200, answer
    assert answer["accepted"] == [record_id(r) for r in expected]
    assert answer["rejected"] == []

    on_log = {
        parse_record(m.value or b"").model_dump_json(): m
        for m in read_log(bootstrap, Topics(kafka_namespace).events)
    }
    assert len(on_log) == len(expected)
    for record in expected:
        message = on_log[record.model_dump_json()]
        assert message.key == (record.dyad.encode() if record.dyad else None)
        assert message.timestamp == int(record.event_time.timestamp() * 1000)
        assert dict(message.headers)[SOURCE_HEADER] == b"api:127.0.0.1"
    assert any(record.dyad is None for record in expected), "the article has events of no dyad"

    wait_processed(bootstrap, kafka_namespace, 120, running)
    live = read_alerts(bootstrap, kafka_namespace)
    assert by_dyad(live) == backtest_alert_ids(ARTICLE), running.log_text()
    assert by_dyad(live), "the article raises alerts"


def test_the_answer_comes_once_the_records_are_on_the_log(
    kafka_broker: Broker, kafka_namespace: str, worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Right after each answer (one round trip to the broker on a connection already open),
    the log's end offsets count every record accepted so far: an answer sent before Kafka
    acknowledged would beat the records to the broker."""
    bootstrap, topic = kafka_broker.bootstrap, Topics(kafka_namespace).events
    running = worker().wait_for_web()
    partitions = [TopicPartition(topic, number) for number in range(PARTITIONS)]
    accepted: list[str] = []

    async def check() -> None:
        ends = reader(KafkaConnection(bootstrap))
        await ends.start()
        try:
            assert sum((await ends.end_offsets(partitions)).values()) == 0
            async with aiohttp.ClientSession() as session:
                for batch in range(3):
                    body = write_events(tmp_path / f"batch-{batch}.jsonl", 200, seed=batch).read_bytes()
                    body = body.replace(b'"syn-', f'"b{batch}-syn-'.encode())
                    async with session.post(f"{running.url}/api/events", data=body, headers=NDJSON) as answer:
                        assert answer.status == 200, await answer.text()
                        accepted.extend((await answer.json())["accepted"])
                    on_log = sum((await ends.end_offsets(partitions)).values())
                    assert on_log == len(accepted) == 200 * (batch + 1)
        finally:
            await ends.stop()

    asyncio.run(asyncio.wait_for(check(), 120))
    messages = read_log(bootstrap, topic)
    assert sorted(parse_record(m.value or b"").event_id for m in messages) == sorted(accepted)  # type: ignore[union-attr]
    for message in messages:
        assert message.key == parse_record(message.value or b"").dyad.encode()  # type: ignore[union-attr]
