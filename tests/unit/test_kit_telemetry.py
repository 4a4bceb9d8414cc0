"""kit.telemetry: what tracing costs when nothing exports, and how traces are sampled."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from kit import errors, server, telemetry
from kit.config import ConfigError, TelemetrySettings
from services.logging.mapping import metric_documents


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
    assert never.should_sample(None, 0xAB, "x", SpanKind.CONSUMER).decision == Decision.DROP
    assert always.should_sample(None, 0xAB, "x", SpanKind.CONSUMER).decision == (
        Decision.RECORD_AND_SAMPLE
    )
    # A request's root reaches the sampler only when start_root chose it.
    assert never.should_sample(None, 0xAB, "x", SpanKind.SERVER).decision == (
        Decision.RECORD_AND_SAMPLE
    )


def test_start_root_keeps_requests_at_the_sample_ratio(monkeypatch):
    monkeypatch.setattr(telemetry, "_sample_ratio", 0.25)
    roots = [telemetry.start_root() for _ in range(4000)]
    recorded = sum(root is None for root in roots)
    assert 800 < recorded < 1200  # 1000 expected; 6 standard deviations either side
    unsampled = [root for root in roots if root is not None]
    assert all(not root.is_recording() for root in unsampled)
    contexts = [root.get_span_context() for root in unsampled]
    assert all(c.is_valid and not c.trace_flags.sampled for c in contexts)
    assert len({c.trace_id for c in contexts}) == len(contexts)  # each a trace of its own


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


def test_a_histogram_counts_each_value_in_its_bucket_per_label_values():
    durations = telemetry.Histogram("d", ("rpc.method", "rpc.grpc.status"), bounds=(1.0, 10.0))
    for value in (0.5, 1.0, 3.0, 10.0, 11.0):
        durations.record(value, "/a", "OK")
    durations.record(2.0, "/a", "INTERNAL")
    metric = durations.metric(now_ns=123)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    points = {tuple(p.attributes.values()): p for p in metric.data.data_points}
    ok = points["/a", "OK"]
    assert dict(ok.attributes) == {"rpc.method": "/a", "rpc.grpc.status": "OK"}
    # (-inf, 1], (1, 10], (10, +inf): a value on a bound counts in the bucket it closes.
    assert (list(ok.bucket_counts), list(ok.explicit_bounds)) == ([2, 2, 1], [1.0, 10.0])
    assert (ok.count, ok.sum, ok.min, ok.max, ok.time_unix_nano) == (5, 25.5, 0.5, 11.0, 123)
    assert points["/a", "INTERNAL"].count == 1
    assert telemetry.Histogram("empty", ()).metric(now_ns=1) is None


class _Captured(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported: list = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000) -> bool:
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs) -> None:
        pass


def test_the_kit_reader_exports_its_histograms_over_otlp_as_the_logging_service_stores_them(
    monkeypatch,
):
    durations = telemetry.Histogram("rpc.server.duration", ("rpc.method",), unit="ms")
    monkeypatch.setattr(telemetry, "_histograms", {durations.name: durations})
    captured = _Captured()
    resource = Resource.create({"service.name": "order"})
    reader = telemetry.KitMetricReader(captured, resource, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    try:
        reader.collect()
        assert captured.exported == []  # nothing recorded anywhere: nothing sent
        durations.record(12.0, "/emporium.order.v1.OrderService/GetOrder")
        reader.collect()  # no SDK instrument has a point: the histogram goes alone
        provider.get_meter("emporium").create_counter("orders").add(1)
        reader.collect()  # with one: both scopes under the one resource
    finally:
        provider.shutdown()
    alone, both = (encode_metrics(data) for data in captured.exported[:2])
    [resource_metrics] = alone.resource_metrics
    attributes = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert attributes["service.name"] == "order"
    [scope] = resource_metrics.scope_metrics
    assert scope.scope.name == "emporium.kit"
    [metric] = scope.metrics
    [point] = metric.histogram.data_points
    assert (point.count, point.sum, point.min, point.max) == (1, 12.0, 12.0, 12.0)
    assert metric.histogram.aggregation_temporality == 2  # CUMULATIVE
    [resource_metrics] = both.resource_metrics
    assert {s.scope.name for s in resource_metrics.scope_metrics} == {"emporium", "emporium.kit"}
    [(_, doc)] = [
        d for d in metric_documents(alone, "default") if "rpc.server.duration" in d[1]["metrics"]
    ]
    assert doc["metrics"]["rpc.server.duration"] == {
        "sum": 12.0,
        "value_count": 1,
        "min": 12.0,
        "max": 12.0,
    }
    assert doc["attributes"]["rpc.method"] == "/emporium.order.v1.OrderService/GetOrder"


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
    client_call = False  # makes a client span as kit.redis and kit.cassandra do
    seen: list[int]

    async def Check(self, request, context):
        self.seen.append(trace.get_current_span().get_span_context().trace_id)
        if self.client_call and telemetry.in_recorded_span():
            tracer = trace.get_tracer_provider().get_tracer("redis")
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

        async def check(sampled: bool | None) -> grpc.StatusCode:
            """A call from a caller that sampled its trace or not; None: one without a trace."""
            metadata = []
            if sampled is not None:
                flags = "01" if sampled else "00"
                metadata.append(("traceparent", f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-{flags}"))
            try:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), metadata=metadata
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


@pytest.mark.parametrize("ratio", [0.0, 1.0])
async def test_a_call_without_a_trace_starts_one_recorded_at_the_sample_ratio(
    traced, monkeypatch, ratio
):
    check, servicer, exported = traced
    monkeypatch.setattr(telemetry, "_sample_ratio", ratio)
    servicer.client_call = True
    assert await check(sampled=None) is grpc.StatusCode.OK
    [trace_id] = servicer.seen
    assert trace_id not in (0, TRACE_ID)  # a new trace, also when it is not recorded
    spans = exported.get_finished_spans()
    if ratio == 0.0:
        assert spans == ()
    else:
        client, root = spans
        assert root.parent is None
        assert root.context.trace_id == trace_id
        assert client.parent.span_id == root.context.span_id


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
