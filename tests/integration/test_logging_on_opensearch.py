"""The logging service on a real OpenSearch: OTLP from the OpenTelemetry SDK in, the search API
out, templates, data streams and retention as services/logging/README.md documents, and an
outage of the store that loses nothing the service accepted."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from emporium.logging.v1 import log_entry_pb2, logging_service_pb2, logging_service_pb2_grpc
from opentelemetry import trace

from kit import server
from services.logging import bootstrap
from services.logging.adapters.opensearch import POLICY, OpenSearchStore
from services.logging.config import Settings
from tests.telemetry_support import Emitter, Tokens

Severity = log_entry_pb2.LogEntry


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 30.0) -> Any:
    """Polls `check` until it returns something truthy (indexing is asynchronous)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


class Proxy:
    """A TCP proxy in front of OpenSearch that the test can take down and bring back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.Task] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.links):
            task.cancel()
        await asyncio.gather(*self.links, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.links.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(Exception):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.CancelledError, OSError):
            writer.close()
        finally:
            self.links.discard(task)


class Running:
    def __init__(self, app, channel, otlp_endpoint, namespace, tokens) -> None:
        self.app = app
        self.stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
        self.otlp_endpoint = otlp_endpoint
        self.namespace = namespace
        self.admin = tokens.metadata(admin=True)
        self.customer = tokens.metadata(admin=False)

    async def logs(self, **filters: Any) -> list[log_entry_pb2.LogEntry]:
        reply = await self.stub.SearchLogs(
            logging_service_pb2.SearchLogsRequest(**filters), metadata=self.admin
        )
        return list(reply.log_entries)


@contextlib.asynccontextmanager
async def logging_service(
    opensearch: str, *, cleanup: str | None = None, **env: str
) -> AsyncIterator[Running]:
    namespace = "it" + uuid.uuid4().hex[:10]
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_LOGGING_GRPC_PORT": "0",
            "EMPORIUM_OTLP_PORT": "0",
            "EMPORIUM_OPENSEARCH_URL": opensearch,
            "EMPORIUM_LOGGING_NAMESPACE": namespace,
            "EMPORIUM_LOGGING_FLUSH_SECONDS": "0.2",
            **env,
        }
    )
    tokens = Tokens()
    app = await bootstrap.build(settings, verifier=tokens.verifier())
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Running(app, channel, f"127.0.0.1:{app.otlp_port}", namespace, tokens)
    finally:
        await grpc_server.stop(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.close()
        await _remove_namespace(cleanup or opensearch, namespace)


async def _remove_namespace(opensearch: str, namespace: str) -> None:
    async with httpx.AsyncClient(base_url=opensearch, trust_env=False) as http:
        for signal in ("logs", "traces", "metrics"):
            await http.delete(f"/_data_stream/{signal}-generic.otel-{namespace}")
            await http.delete(f"/_index_template/emporium-{signal}-otel-{namespace}")


@pytest.fixture
async def service(opensearch_url) -> AsyncIterator[Running]:
    async with logging_service(opensearch_url) as running:
        yield running


async def _checkout_like_trace(emitters: dict[str, Emitter]) -> str:
    """order -> catalog (child, WARN log) -> payment (grandchild, ERROR); returns the trace id."""
    order = emitters["order"].tracer()
    with order.start_as_current_span("emporium.order.v1.OrderService/PlaceOrder") as root:
        emitters["order"].logger.info("placing order 42 for a mug")
        with emitters["catalog"].tracer().start_as_current_span("reserve stock"):
            emitters["catalog"].logger.warning("stock is low for the mug")
            await asyncio.sleep(0.01)
            with emitters["payment"].tracer().start_as_current_span("charge") as charge:
                emitters["payment"].logger.error("card declined for order 42")
                charge.set_status(trace.Status(trace.StatusCode.ERROR, "declined"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    for emitter in emitters.values():
        await emitter.flush()
    return trace_id


@pytest.fixture
async def emitters(service) -> AsyncIterator[dict[str, Emitter]]:
    made = {
        name: Emitter.to(service.otlp_endpoint, name) for name in ("order", "catalog", "payment")
    }
    yield made
    for emitter in made.values():
        await emitter.shutdown()


async def test_spans_from_three_services_come_back_as_one_trace_in_tree_order(service, emitters):
    trace_id = await _checkout_like_trace(emitters)

    async def whole_trace():
        with contextlib.suppress(grpc.aio.AioRpcError):
            got = await service.stub.GetTrace(
                logging_service_pb2.GetTraceRequest(trace_id=trace_id), metadata=service.admin
            )
            return got if got.span_count == 3 else None

    got = await eventually(whole_trace)
    assert got, "the trace was not indexed"
    assert [s.name for s in got.spans] == [
        "emporium.order.v1.OrderService/PlaceOrder",
        "reserve stock",
        "charge",
    ]
    assert got.spans[1].parent_span_id == got.spans[0].span_id
    assert got.spans[2].parent_span_id == got.spans[1].span_id
    assert list(got.services) == ["catalog", "order", "payment"]
    assert got.root_service == "order"
    assert got.error_count == 1
    assert got.spans[2].status_message == "declined"
    assert got.duration.ToTimedelta() >= got.spans[1].duration.ToTimedelta() > timedelta(0)


async def test_log_lines_are_found_by_trace_service_severity_and_text(service, emitters):
    trace_id = await _checkout_like_trace(emitters)

    async def three():
        found = await service.logs(trace_id=trace_id, oldest_first=True)
        return found if len(found) == 3 else None

    lines = await eventually(three)
    assert [e.service for e in lines] == ["order", "catalog", "payment"]
    assert all(e.span_id and e.trace_id == trace_id for e in lines)
    warnings = await service.logs(
        service="payment", min_severity=Severity.SEVERITY_WARN, trace_id=trace_id
    )
    assert [e.body for e in warnings] == ["card declined for order 42"]
    assert warnings[0].severity == Severity.SEVERITY_ERROR
    assert warnings[0].resource_attributes["service.version"] == "1.2.3"
    assert [e.body for e in await service.logs(query="declined -mug", trace_id=trace_id)] == [
        "card declined for order 42"
    ]
    assert len(await service.logs(query='"order 42"', trace_id=trace_id)) == 2


async def test_log_pages_follow_each_other_without_repeats(service, emitters):
    for n in range(5):
        emitters["order"].logger.info("line %d", n)
    await emitters["order"].flush()
    await eventually(lambda: _count(service, 5))
    first = await service.stub.SearchLogs(
        logging_service_pb2.SearchLogsRequest(service="order", page_size=3), metadata=service.admin
    )
    second = await service.stub.SearchLogs(
        logging_service_pb2.SearchLogsRequest(
            service="order", page_size=3, page_token=first.next_page_token
        ),
        metadata=service.admin,
    )
    bodies = [e.body for e in [*first.log_entries, *second.log_entries]]
    assert sorted(bodies) == [f"line {n}" for n in range(5)]
    assert second.next_page_token == ""


async def _count(service: Running, n: int) -> bool:
    return len(await service.logs(service="order", page_size=50)) >= n


async def test_search_traces_finds_failed_traces_and_lists_the_services(service, emitters):
    trace_id = await _checkout_like_trace(emitters)
    with emitters["order"].tracer().start_as_current_span("quick and fine"):
        pass
    await emitters["order"].flush()

    async def failing():
        reply = await service.stub.SearchTraces(
            logging_service_pb2.SearchTracesRequest(error_only=True), metadata=service.admin
        )
        return list(reply.traces)

    traces = await eventually(failing)
    assert [t.trace_id for t in traces] == [trace_id]
    assert traces[0].root_span_name == "emporium.order.v1.OrderService/PlaceOrder"
    assert traces[0].span_count == 3
    assert not traces[0].spans
    slow = await service.stub.SearchTraces(
        logging_service_pb2.SearchTracesRequest(service="order", min_duration={"seconds": 3600}),
        metadata=service.admin,
    )
    assert list(slow.traces) == []
    listed = await service.stub.ListLoggedServices(
        logging_service_pb2.ListLoggedServicesRequest(), metadata=service.admin
    )
    by_name = {s.name: s for s in listed.logged_services}
    assert list(by_name) == ["catalog", "order", "payment"]
    assert by_name["payment"].error_log_count == 1
    assert by_name["payment"].span_count == 1
    assert by_name["order"].version == "1.2.3"
    assert by_name["order"].log_count >= 1


async def test_the_search_api_is_for_admins_only(service):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service.stub.SearchLogs(
            logging_service_pb2.SearchLogsRequest(), metadata=service.customer
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service.stub.GetTrace(logging_service_pb2.GetTraceRequest(trace_id="0" * 32))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_unknown_trace_is_not_found(service):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service.stub.GetTrace(
            logging_service_pb2.GetTraceRequest(trace_id="ab" * 16), metadata=service.admin
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_templates_retention_and_data_streams_exist_as_documented(service, opensearch_url):
    await eventually(lambda: _installed(service))
    async with httpx.AsyncClient(base_url=opensearch_url, trust_env=False) as http:
        for signal in ("logs", "traces", "metrics"):
            name = f"emporium-{signal}-otel-{service.namespace}"
            template = (await http.get(f"/_index_template/{name}")).json()["index_templates"][0]
            body = template["index_template"]
            assert body["index_patterns"] == [f"{signal}-*.otel-{service.namespace}"]
            assert body["_meta"]["retention_days"] == 7
            assert body["_meta"]["lifecycle_policy"] == POLICY
            stream = await http.get(f"/_data_stream/{signal}-generic.otel-{service.namespace}")
            assert stream.status_code == 200, stream.text
            assert stream.json()["data_streams"][0]["template"] == name
        # This OpenSearch has no ISM plugin: the service applies the policy itself.
        assert service.app.store.lifecycle == "service"


async def _installed(service: Running) -> bool:
    return service.app.store.lifecycle != ""


async def test_retention_rolls_streams_over_and_deletes_indices_past_the_retention(opensearch_url):
    namespace = "it" + uuid.uuid4().hex[:10]
    store = OpenSearchStore(
        opensearch_url, namespace=namespace, retention=timedelta(days=7), rollover=timedelta(days=1)
    )
    try:
        await store.install()
        now = datetime.now(UTC)
        assert await store.enforce_retention(now) == []  # young: nothing rolls, nothing goes
        assert await store.enforce_retention(now + timedelta(days=1, minutes=1)) == []
        found = await store._json("GET", f"/_data_stream/{store.stream('logs')}")
        first = found["data_streams"][0]["indices"][0]["index_name"]
        assert len(found["data_streams"][0]["indices"]) == 2  # rolled over after a day
        deleted = await store.enforce_retention(now + timedelta(days=8))
        assert first in deleted
        found = await store._json("GET", f"/_data_stream/{store.stream('logs')}")
        assert first not in [i["index_name"] for i in found["data_streams"][0]["indices"]]
    finally:
        await store.close()
        await _remove_namespace(opensearch_url, namespace)


async def test_what_was_accepted_while_the_store_was_down_is_indexed_when_it_returns(
    opensearch_url,
):
    target = httpx.URL(opensearch_url)
    proxy = Proxy(target.host, target.port)
    await proxy.up()
    async with logging_service(f"http://127.0.0.1:{proxy.port}", cleanup=opensearch_url) as service:
        await eventually(lambda: _installed(service))
        emitter = Emitter.to(service.otlp_endpoint, "order")
        try:
            await proxy.down()
            for n in range(20):
                emitter.logger.warning("while the store was down %d", n)
            await emitter.flush()  # answered at once: the service took them into its buffer
            assert service.app.ingest.stats.accepted >= 20
            await asyncio.sleep(1.0)
            assert service.app.ingest.buffered >= 20
            await proxy.up()

            async def indexed():
                return len(await service.logs(service="order", page_size=50)) >= 20

            assert await eventually(indexed)
        finally:
            await emitter.shutdown()
            await proxy.down()


async def test_a_full_buffer_refuses_exports_with_a_retryable_status(opensearch_url):
    async with logging_service(
        "http://127.0.0.1:9", cleanup=opensearch_url, EMPORIUM_LOGGING_BUFFER_BYTES="2000"
    ) as service:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
        from opentelemetry.proto.logs.v1 import logs_pb2

        record = logs_pb2.LogRecord(time_unix_nano=time.time_ns(), severity_number=9)
        record.body.string_value = "x" * 1500
        request = logs_service_pb2.ExportLogsServiceRequest(
            resource_logs=[
                logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=[record])])
            ]
        )
        async with grpc.aio.insecure_channel(service.otlp_endpoint) as channel:
            stub = logs_service_pb2_grpc.LogsServiceStub(channel)
            await stub.Export(request)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Export(request)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
