"""The logging service without servers: OTLP -> documents, severities, trace trees, the bounded
ingest buffer, the OTLP receiver's token and back-pressure, and request validation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from emporium.logging.v1 import logging_service_pb2, logging_service_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from kit import server
from kit.config import ConfigError
from services.logging import bootstrap, domain, mapping
from services.logging.adapters.memory import InMemoryDocumentSink
from services.logging.config import Settings
from services.logging.domain import Severity, Span
from services.logging.handlers import Ingest
from tests.telemetry_support import Emitter, Tokens

T0 = 1_764_000_000_000_000_000  # ns


def _kv(key: str, value: common_pb2.AnyValue) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=value)


def _resource(service: str) -> resource_pb2.Resource:
    return resource_pb2.Resource(
        attributes=[_kv("service.name", common_pb2.AnyValue(string_value=service))]
    )


def _log_request(
    body: str = "card declined", severity: int = 13
) -> logs_service_pb2.ExportLogsServiceRequest:
    record = logs_pb2.LogRecord(
        time_unix_nano=T0 + 123,
        observed_time_unix_nano=T0 + 456,
        severity_number=severity,
        severity_text="WARNING",
        trace_id=bytes.fromhex("ab" * 16),
        span_id=bytes.fromhex("cd" * 8),
        attributes=[
            _kv("order.id", common_pb2.AnyValue(string_value="o-1")),
            _kv("attempt", common_pb2.AnyValue(int_value=2)),
            _kv(
                "http",
                common_pb2.AnyValue(
                    kvlist_value=common_pb2.KeyValueList(
                        values=[_kv("route", common_pb2.AnyValue(string_value="/v1/x"))]
                    )
                ),
            ),
        ],
    )
    record.body.string_value = body
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=_resource("payment"),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(name="services.payment"),
                        log_records=[record],
                    )
                ],
            )
        ]
    )


def test_a_log_record_becomes_an_otel_native_document_in_the_logs_stream():
    [(stream, doc)] = list(mapping.log_documents(_log_request(), "default"))
    assert stream == "logs-generic.otel-default"
    assert doc["@timestamp"] == "2025-11-24T16:00:00.000000123Z"
    assert doc["observed_timestamp"].endswith(".000000456Z")
    assert doc["data_stream"] == {"type": "logs", "dataset": "generic.otel", "namespace": "default"}
    assert doc["resource"]["attributes"] == {"service.name": "payment"}
    assert doc["scope"] == {"name": "services.payment"}
    assert doc["attributes"] == {"order.id": "o-1", "attempt": 2, "http.route": "/v1/x"}
    assert doc["body"] == {"text": "card declined"}
    assert (doc["severity_number"], doc["severity_text"]) == (13, "WARNING")
    assert (doc["trace_id"], doc["span_id"]) == ("ab" * 16, "cd" * 8)


def test_a_document_reads_back_as_the_log_entry_that_was_sent():
    [(_, doc)] = list(mapping.log_documents(_log_request(), "default"))
    entry = mapping.log_entry_to_proto(mapping.log_entry(doc))
    assert entry.service == "payment"
    assert entry.severity == entry.SEVERITY_WARN
    assert entry.body == "card declined"
    assert dict(entry.attributes) == {"order.id": "o-1", "attempt": "2", "http.route": "/v1/x"}
    assert entry.log_time.ToNanoseconds() == T0  # microseconds kept; nanoseconds dropped


def test_a_span_becomes_a_document_with_kind_status_and_duration_in_nanoseconds():
    span = trace_pb2.Span(
        trace_id=bytes.fromhex("ab" * 16),
        span_id=bytes.fromhex("01" * 8),
        parent_span_id=bytes.fromhex("02" * 8),
        name="charge",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 5_000_000,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="declined"),
    )
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=_resource("payment"), scope_spans=[trace_pb2.ScopeSpans(spans=[span])]
            )
        ]
    )
    [(stream, doc)] = list(mapping.span_documents(request, "default"))
    assert stream == "traces-generic.otel-default"
    assert (doc["kind"], doc["duration"], doc["parent_span_id"]) == ("Client", 5_000_000, "02" * 8)
    assert doc["status"] == {"code": "Error", "message": "declined"}
    back = mapping.span(doc)
    assert back.failed
    assert back.end - back.start == timedelta(milliseconds=5)


@pytest.mark.parametrize(
    ("number", "severity"),
    [
        (0, Severity.UNSPECIFIED),
        (1, Severity.TRACE),
        (9, Severity.INFO),
        (12, Severity.INFO),
        (13, Severity.WARN),
        (17, Severity.ERROR),
        (24, Severity.FATAL),
        (25, Severity.UNSPECIFIED),
    ],
)
def test_otlp_severity_numbers_fall_in_their_ranges(number, severity):
    assert Severity.of_number(number) == severity


def _span(span_id: str, parent: str, start_ms: int, service: str = "order") -> Span:
    return Span(
        trace_id="ab" * 16,
        span_id=span_id,
        parent_span_id=parent,
        name=span_id,
        service=service,
        kind=2,
        start=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start_ms),
        duration_ns=1_000_000,
        status_code=0,
    )


def test_a_trace_is_ordered_depth_first_with_children_by_start_time():
    spans = [
        _span("c2", "root", 5),
        _span("root", "", 0, "gateway"),
        _span("c1", "root", 1),
        _span("g1", "c1", 2, "catalog"),
        _span("orphan", "never-arrived", 3),
    ]
    ordered = [s.span_id for s in domain.tree_order(spans)]
    assert ordered == ["root", "c1", "g1", "c2", "orphan"]  # an orphan is a root of its own
    summary = domain.summarize("ab" * 16, spans, with_spans=True)
    assert (summary.root_span_name, summary.root_service) == ("root", "gateway")
    assert summary.services == ("catalog", "gateway", "order")
    assert summary.duration == timedelta(milliseconds=6)


def test_a_parent_cycle_loses_no_span():
    spans = [_span("a", "b", 0), _span("b", "a", 1)]
    assert sorted(s.span_id for s in domain.tree_order(spans)) == ["a", "b"]


async def test_the_buffer_keeps_what_it_accepted_while_the_store_is_down():
    sink = InMemoryDocumentSink()
    ingest = Ingest(
        sink, buffer_bytes=10_000, batch_documents=2, flush_seconds=0.01, max_backoff_seconds=0.02
    )
    sink.down = True
    assert ingest.accept(mapping.log_documents(_log_request("one"), "default"))
    assert ingest.accept(mapping.log_documents(_log_request("two"), "default"))
    assert ingest.accept(mapping.log_documents(_log_request("three"), "default"))
    flusher = asyncio.create_task(ingest.run())
    try:
        await asyncio.sleep(0.1)
        assert ingest.buffered == 3
        sink.down = False
        for _ in range(100):
            if ingest.buffered == 0:
                break
            await asyncio.sleep(0.01)
        bodies = [d["body"]["text"] for d in sink.documents("logs-generic.otel-default")]
        assert bodies == ["one", "two", "three"]
        assert ingest.stats.indexed == 3
    finally:
        flusher.cancel()


def test_a_full_buffer_refuses_a_whole_export_and_keeps_none_of_it():
    ingest = Ingest(InMemoryDocumentSink(), buffer_bytes=900, batch_documents=10, flush_seconds=1)
    assert ingest.accept(mapping.log_documents(_log_request("x" * 300), "default"))
    assert not ingest.accept(mapping.log_documents(_log_request("y" * 300), "default"))
    assert ingest.buffered == 1
    assert ingest.stats.refused == 1


class NoSearch:
    """The read port for tests that never reach it (validation happens first)."""

    async def search_logs(self, *args):
        raise AssertionError("not reached")

    trace_spans = candidate_traces = logged_services = search_logs


@pytest.fixture
async def running() -> AsyncIterator[tuple]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_LOGGING_GRPC_PORT": "0",
            "EMPORIUM_OTLP_PORT": "0",
            "EMPORIUM_LOGGING_INGEST_TOKEN": "s3cret",
            "EMPORIUM_LOGGING_FLUSH_SECONDS": "0.01",
        }
    )
    tokens = Tokens()
    sink = InMemoryDocumentSink()
    app = await bootstrap.build(settings, sink=sink, search=NoSearch(), verifier=tokens.verifier())
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield app, sink, logging_service_pb2_grpc.LoggingServiceStub(channel), tokens
    await grpc_server.stop(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await app.close()


async def test_ingest_refuses_an_export_without_its_bearer_token(running):
    app, _, _, _ = running
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.otlp_port}") as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Export(_log_request())
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await stub.Export(_log_request(), metadata=[("authorization", "Bearer s3cret")])
    assert app.ingest.stats.accepted == 1


async def test_the_sdk_exporters_deliver_spans_and_logs_through_the_receiver(running):
    app, sink, _, _ = running
    emitter = Emitter.to(
        f"127.0.0.1:{app.otlp_port}", "cart", headers={"authorization": "Bearer s3cret"}
    )
    with emitter.tracer().start_as_current_span("AddItem"):
        emitter.logger.warning("out of stock")
    await emitter.flush()
    await emitter.shutdown()
    for _ in range(100):
        if sink.documents("logs-generic.otel-default") and sink.documents(
            "traces-generic.otel-default"
        ):
            break
        await asyncio.sleep(0.02)
    [log_doc] = sink.documents("logs-generic.otel-default")
    [span_doc] = sink.documents("traces-generic.otel-default")
    assert log_doc["trace_id"] == span_doc["trace_id"]
    assert log_doc["span_id"] == span_doc["span_id"]
    assert span_doc["resource"]["attributes"]["service.name"] == "cart"


def _violations(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (logging_service_pb2.SearchLogsRequest(trace_id="XYZ"), "trace_id"),
        (logging_service_pb2.SearchLogsRequest(span_id="123"), "span_id"),
        (logging_service_pb2.SearchLogsRequest(page_size=101), "page_size"),
        (logging_service_pb2.SearchLogsRequest(attributes=["no-equals"]), "attributes"),
        (logging_service_pb2.SearchLogsRequest(page_token="garbage"), "page_token"),
        (
            logging_service_pb2.SearchLogsRequest(
                start_time={"seconds": 2_000_000_000}, end_time={"seconds": 1_000_000_000}
            ),
            "start_time",
        ),
    ],
)
async def test_bad_search_requests_are_invalid_arguments_naming_the_field(running, request_, field):
    _, _, stub, tokens = running
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SearchLogs(request_, metadata=tokens.metadata(admin=True))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == [field]


async def test_get_trace_needs_a_well_formed_trace_id(running):
    _, _, stub, tokens = running
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetTrace(
            logging_service_pb2.GetTraceRequest(trace_id="abc"),
            metadata=tokens.metadata(admin=True),
        )
    assert _violations(raised.value) == ["trace_id"]


async def test_searching_logs_needs_the_admin_role(running):
    _, _, stub, tokens = running
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SearchLogs(
            logging_service_pb2.SearchLogsRequest(), metadata=tokens.metadata(admin=False)
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_namespace_with_a_dash_is_refused():
    with pytest.raises(ConfigError):
        Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_LOGGING_NAMESPACE": "a-b"})


def test_a_key_that_is_also_a_prefix_of_another_is_kept_beside_it():
    values = mapping.attributes(
        [
            _kv("upstream_cluster", common_pb2.AnyValue(string_value="order")),
            _kv("upstream_cluster.name", common_pb2.AnyValue(string_value="order")),
            _kv("a.b", common_pb2.AnyValue(string_value="1")),
            _kv("a.b.c", common_pb2.AnyValue(string_value="2")),
        ]
    )
    assert values == {
        "upstream_cluster.value": "order",
        "upstream_cluster.name": "order",
        "a.b.value": "1",
        "a.b.c": "2",
    }
