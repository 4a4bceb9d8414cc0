"""kit.telemetry: what tracing costs when nothing exports, and how traces are sampled."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from kit import errors, server, telemetry
from kit.config import ConfigError, TelemetrySettings


def _names(interceptors) -> list[str]:
    return [type(i).__name__ for i in interceptors]


def test_without_an_sdk_tracer_the_server_adds_no_tracing_interceptor(monkeypatch):
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert not telemetry.tracing()
    assert "OpenTelemetryAioServerInterceptor" not in _names(server.interceptors(None))
    assert _names(server.interceptors(None)) == ["CallInterceptor"]


def test_with_an_sdk_tracer_the_one_interceptor_traces(monkeypatch):
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    assert telemetry.tracing()
    [only] = server.interceptors(None)
    assert isinstance(only, server.CallInterceptor)
    assert only.tracer is not None


def _parent(sampled: bool):
    context = SpanContext(
        trace_id=0xAB,
        span_id=0xCD,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_sampling_follows_the_caller_and_samples_new_traces_by_ratio():
    never = ParentBased(telemetry.RequestRoots(0.0))
    always = ParentBased(telemetry.RequestRoots(1.0))
    # A caller's decision wins over the ratio, both ways.
    assert never.should_sample(_parent(True), 0xAB, "x", SpanKind.SERVER).decision == (
        Decision.RECORD_AND_SAMPLE
    )
    assert always.should_sample(_parent(False), 0xAB, "x", SpanKind.SERVER).decision == (
        Decision.DROP
    )
    assert never.should_sample(None, 0xAB, "x", SpanKind.SERVER).decision == Decision.DROP
    assert always.should_sample(None, 0xAB, "x", SpanKind.CONSUMER).decision == (
        Decision.RECORD_AND_SAMPLE
    )


def test_a_background_client_call_never_starts_a_trace():
    always = ParentBased(telemetry.RequestRoots(1.0))
    assert always.should_sample(None, 0xAB, "GET", SpanKind.CLIENT).decision == Decision.DROP
    assert always.should_sample(_parent(True), 0xAB, "GET", SpanKind.CLIENT).decision == (
        Decision.RECORD_AND_SAMPLE
    )


def test_the_sample_ratio_comes_from_the_environment_and_is_checked():
    settings = TelemetrySettings.from_env("order", {"EMPORIUM_TRACE_SAMPLE_RATIO": "0.25"})
    assert settings.sample_ratio == 0.25
    with pytest.raises(ConfigError):
        TelemetrySettings.from_env("order", {"EMPORIUM_TRACE_SAMPLE_RATIO": "2"})


def test_without_an_endpoint_setup_installs_nothing():
    assert telemetry.setup(TelemetrySettings("order")) is None
    assert not telemetry.exporting()


def test_gauges_keep_the_latest_value_per_attribute_set():
    telemetry.set_gauge("emporium.queue.depth", 3, queue="q")
    telemetry.set_gauge("emporium.queue.depth", 5, queue="q")
    observed = telemetry._observe("emporium.queue.depth")(None)
    assert [(o.value, dict(o.attributes)) for o in observed if o.attributes == {"queue": "q"}] == [
        (5, {"queue": "q"})
    ]


def test_a_cassandra_span_names_the_statement_without_its_values():
    from cassandra.query import BatchStatement, SimpleStatement

    from kit.cassandra import _cql

    assert _cql("SELECT * FROM orders WHERE id = %s") == "SELECT * FROM orders WHERE id = %s"
    assert _cql(SimpleStatement("UPDATE t SET a = ?")) == "UPDATE t SET a = ?"
    assert _cql(BatchStatement()) == "BATCH"


# --- the server span, on a real grpc.aio server ------------------------------------------------

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
CALLER_SPAN = 0xB7AD6B7169203331


class _Health(health_pb2_grpc.HealthServicer):
    """Check answers with the trace id current in the handler; `fail` makes it raise."""

    fail: Exception | None = None
    client_call = False  # makes a client span as the Redis instrumentation does
    seen: list[int]

    async def Check(self, request, context):
        self.seen.append(trace.get_current_span().get_span_context().trace_id)
        if self.client_call:
            tracer = telemetry.ChildrenOnly(trace.get_tracer_provider()).get_tracer("redis")
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
                span.set_attribute("db.statement", "GET ?")
        if self.fail is not None:
            raise self.fail
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def traced(monkeypatch):
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(telemetry.RequestRoots(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    servicer = _Health()
    servicer.seen = []
    grpc_server = grpc.aio.server(interceptors=server.interceptors(None))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

        async def check(sampled: bool) -> grpc.StatusCode:
            flags = "01" if sampled else "00"
            parent = f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-{flags}"
            try:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), metadata=[("traceparent", parent)]
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        yield check, servicer, exported
    await grpc_server.stop(0)


CHECK = "/grpc.health.v1.Health/Check"


async def test_a_sampled_callers_call_is_one_server_span_in_its_trace(traced):
    check, servicer, exported = traced
    assert await check(sampled=True) is grpc.StatusCode.OK
    [span] = exported.get_finished_spans()
    assert (span.name, span.kind) == (CHECK, SpanKind.SERVER)
    assert span.context.trace_id == TRACE_ID
    assert span.parent.span_id == CALLER_SPAN
    assert span.attributes["rpc.service"] == "grpc.health.v1.Health"
    assert span.attributes["rpc.method"] == "Check"
    assert span.attributes["rpc.grpc.status_code"] == 0
    assert span.status.status_code is StatusCode.UNSET
    assert servicer.seen == [TRACE_ID]  # current in the handler: its logs and calls carry it


async def test_an_unsampled_call_exports_nothing_but_keeps_the_callers_trace_id(traced):
    check, servicer, exported = traced
    assert await check(sampled=False) is grpc.StatusCode.OK
    assert exported.get_finished_spans() == ()
    assert servicer.seen == [TRACE_ID]


async def test_a_client_span_is_made_in_a_sampled_call_only(traced):
    check, servicer, exported = traced
    servicer.client_call = True
    assert await check(sampled=False) is grpc.StatusCode.OK
    assert exported.get_finished_spans() == ()
    assert await check(sampled=True) is grpc.StatusCode.OK
    client, server_span = exported.get_finished_spans()
    assert (client.name, client.kind) == ("GET", SpanKind.CLIENT)
    assert client.parent.span_id == server_span.context.span_id
    assert client.attributes["db.statement"] == "GET ?"


def test_outside_a_recorded_span_a_client_tracer_does_nothing():
    exported = InMemorySpanExporter()
    provider = TracerProvider()  # samples everything, so only ChildrenOnly can drop the span
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = telemetry.ChildrenOnly(provider).get_tracer("redis")
    with tracer.start_as_current_span("GET") as span:
        assert span is trace.INVALID_SPAN
        assert not telemetry.in_recorded_span()
    assert tracer.start_span("GET") is trace.INVALID_SPAN
    with provider.get_tracer("server").start_as_current_span("call"):
        assert telemetry.in_recorded_span()
        assert tracer.start_span("GET").is_recording()
    assert len(exported.get_finished_spans()) == 1  # the call; the started GET never ended


@pytest.mark.parametrize(
    ("raised", "code", "error"),
    [
        (RuntimeError("boom"), grpc.StatusCode.INTERNAL, True),
        (errors.NotFound("no such thing"), grpc.StatusCode.NOT_FOUND, False),
    ],
)
async def test_a_server_fault_marks_the_span_an_error_and_a_callers_mistake_does_not(
    traced, raised, code, error
):
    check, servicer, exported = traced
    servicer.fail = raised
    assert await check(sampled=True) is code
    [span] = exported.get_finished_spans()
    assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    assert (span.status.status_code is StatusCode.ERROR) is error
