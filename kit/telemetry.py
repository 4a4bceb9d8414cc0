"""Telemetry set-up: logging with trace ids; OpenTelemetry traces, logs and metrics over OTLP.

Every service calls `setup(settings)` once at start. Log lines always go to stderr (the process
runner prefixes and keeps them) with the current trace id, so a line found in a log search
leads to its trace. When `EMPORIUM_OTLP_ENDPOINT` is set, spans, log records (with their trace
and span ids) and metrics are also exported over OTLP/gRPC to the logging service.

Cost (issue 18): without an endpoint nothing is installed: the OpenTelemetry API stays its
no-op self and the server adds no tracing interceptor, so a call pays nothing for telemetry.
With one, traces are sampled parent-based with `EMPORIUM_TRACE_SAMPLE_RATIO` (a call whose
caller sampled it is always recorded, one that starts a trace is recorded with that
probability), so an unsampled call creates only a non-recording span, and exporting happens in
batches on the SDK's background threads. Per-call durations go into the kit's own `Histogram`
(a dict lookup and a bisect, ~0.3 us; the SDK's instrument spends ~8 us on attribute cleaning,
hashing, exemplar filters and a lock), added to every metrics export by `KitMetricReader`.
"""

from __future__ import annotations

import bisect
import logging
import random
import sys
import time
from collections.abc import Iterable, Sequence

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from kit.config import TelemetrySettings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace=%(otel_trace_id)s] %(message)s"


class _UseKeyspaceWarning(logging.Filter):
    """Drops Cassandra 5's warning about prepared statements on a session with a keyspace.

    The server warns because a statement prepared under `USE a` could mean another table under
    `USE b`; each Emporium session is bound to its service's one keyspace for its whole life,
    so the ambiguity cannot arise, and the warning (once per statement at start-up) is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "`USE <keyspace>` with prepared statements" not in record.getMessage()


class _TraceIds(logging.Filter):
    """Adds the current span's trace id to every record (`-` outside a span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.otel_trace_id = format(context.trace_id, "032x") if context.is_valid else "-"
        record.otel_span_id = format(context.span_id, "016x") if context.is_valid else "-"
        return True


# The gauges a service reports (set with `set_gauge`, read when metrics are exported).
GAUGES = {
    "emporium.outbox.backlog": "events waiting in the outbox at the relay's last pass "
    "(up to its batch size)",
    "emporium.queue.depth": "messages ready in a consumed queue (consumer lag)",
    "emporium.dlq.depth": "messages in a consumed queue's dead-letter queue",
}
_gauge_values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {n: {} for n in GAUGES}
_exporting = False


def exporting() -> bool:
    """Whether this process exports telemetry (setup found an OTLP endpoint)."""
    return _exporting


def tracing() -> bool:
    """Whether spans are recorded here (an SDK tracer provider is installed): without one the
    server adds no tracing interceptor."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def set_gauge(name: str, value: float, **attributes: str) -> None:
    """Records the current value of one of GAUGES for these attributes (cheap: a dict write)."""
    _gauge_values[name][tuple(sorted(attributes.items()))] = value


def _observe(name: str):
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, dict(k)) for k, v in list(_gauge_values[name].items())]

    return callback


# The SDK's default explicit bucket bounds (OpenTelemetry's, in the instrument's unit).
DEFAULT_BOUNDS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
                  5000.0, 7500.0, 10000.0)  # fmt: skip


class _Series:
    """One label set's cumulative state: bucket counts, sum, min and max."""

    __slots__ = ("counts", "max", "min", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")


class Histogram:
    """An explicit-bucket histogram with cumulative temporality, keyed by label values.

    `record` runs on the event loop; the metric reader's thread reads the series when it
    exports. Both hold the GIL for each step, so a point read mid-record may lag by that one
    record in its sum, min or max, which the next export corrects (the state is cumulative);
    its count is the sum of the bucket counts read, as OTLP requires.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str],
        *,
        unit: str = "",
        description: str = "",
        bounds: Sequence[float] = DEFAULT_BOUNDS,
    ) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.labels = tuple(labels)
        self.bounds = tuple(bounds)
        self._series: dict[tuple[str, ...], _Series] = {}
        self._start_ns = time.time_ns()

    def record(self, value: float, *label_values: str) -> None:
        series = self._series.get(label_values)
        if series is None:
            series = self._series[label_values] = _Series(len(self.bounds) + 1)
        # Bucket i holds (bounds[i-1], bounds[i]], as OTLP defines explicit buckets.
        series.counts[bisect.bisect_left(self.bounds, value)] += 1
        series.sum += value
        if value < series.min:
            series.min = value
        if value > series.max:
            series.max = value

    def metric(self, now_ns: int) -> Metric | None:
        """The SDK's export form of every series so far (None before the first record)."""
        points = []
        for values, series in list(self._series.items()):
            counts = list(series.counts)
            points.append(
                HistogramDataPoint(
                    attributes=dict(zip(self.labels, values, strict=True)),
                    start_time_unix_nano=self._start_ns,
                    time_unix_nano=now_ns,
                    count=sum(counts),
                    sum=series.sum,
                    bucket_counts=counts,
                    explicit_bounds=self.bounds,
                    min=series.min,
                    max=series.max,
                )
            )
        if not points:
            return None
        data = HistogramData(points, AggregationTemporality.CUMULATIVE)
        return Metric(self.name, self.description, self.unit, data)


_histograms: dict[str, Histogram] = {}


def histogram(
    name: str, labels: Sequence[str], *, unit: str = "", description: str = ""
) -> Histogram:
    """The process's histogram called `name` (made on first use); recorded whether or not this
    process exports (a record is cheaper than asking), exported only when it does."""
    if name not in _histograms:
        _histograms[name] = Histogram(name, labels, unit=unit, description=description)
    return _histograms[name]


class KitMetricReader(PeriodicExportingMetricReader):
    """The SDK's periodic reader, with the kit's histograms added to every export (also when no
    SDK instrument has a point, where the SDK itself would export nothing)."""

    SCOPE = InstrumentationScope("emporium.kit")

    def __init__(self, exporter: MetricExporter, resource: Resource, **kwargs) -> None:
        super().__init__(exporter, **kwargs)
        self._resource = resource
        self._received = False

    def collect(self, timeout_millis: float = 10_000) -> None:
        self._received = False
        super().collect(timeout_millis=timeout_millis)
        if not self._received and self._collect is not None:
            self._receive_metrics(MetricsData(resource_metrics=[]), timeout_millis)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs
    ) -> None:
        self._received = True
        now = time.time_ns()
        ours = [m for h in list(_histograms.values()) if (m := h.metric(now)) is not None]
        if ours:
            scope = ScopeMetrics(self.SCOPE, ours, schema_url="")
            resources = list(metrics_data.resource_metrics)
            if resources:
                first = resources[0]
                resources[0] = ResourceMetrics(
                    first.resource, [*first.scope_metrics, scope], first.schema_url
                )
            else:
                resources = [ResourceMetrics(self._resource, [scope], schema_url="")]
            metrics_data = MetricsData(resource_metrics=resources)
        if metrics_data.resource_metrics:
            super()._receive_metrics(metrics_data, timeout_millis, **kwargs)


# Set by `setup`: the share of new traces recorded (`start_root` decides for requests).
_sample_ratio = 1.0


def start_root() -> trace.Span | None:
    """A request that arrives without a trace: None when it is to be recorded (the caller starts
    an SDK span), else a non-recording span of a new, unsampled trace. That costs two random
    numbers instead of the SDK's sampler, ids and span objects, and still gives the call a trace
    id for its logs and an unsampled traceparent for its callees (which then record nothing)."""
    if random.random() < _sample_ratio:
        return None
    context = SpanContext(
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    return NonRecordingSpan(context)


class RequestRoots(Sampler):
    """Starts traces at requests and messages, never at a background task's client call (an
    outbox poll on Redis every 100 ms would otherwise be a trace of its own). A SERVER root is
    recorded: the server reached the SDK only because `start_root` chose the call. Other roots
    (a consumed message) are kept with probability `ratio`."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context,
        trace_id,
        name,
        kind=None,
        attributes=None,
        links=None,
        trace_state=None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        if kind == SpanKind.SERVER:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestRoots({self._ratio.get_description()})"


def setup(settings: TelemetrySettings) -> TracerProvider | None:
    """Configures logging, and tracing + metrics when exporting; returns the tracer provider."""
    global _exporting, _sample_ratio
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceIds())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # The Cassandra driver and aio-pika narrate every connection, httpx every request, at INFO.
    for chatty in ("cassandra", "aio_pika", "aiormq", "httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("cassandra.protocol").addFilter(_UseKeyspaceWarning())
    if not settings.otlp_endpoint:
        return None

    # service.name is the contract's plain name ("order"), what the search API filters on.
    resource = Resource.create(
        {"service.name": settings.service_name, "service.namespace": "emporium"}
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(RequestRoots(settings.sample_ratio))
    )
    _export_over_otlp(settings, provider, resource, root)
    trace.set_tracer_provider(provider)
    _sample_ratio = settings.sample_ratio
    _instrument_clients()
    _exporting = True
    return provider


def in_recorded_span() -> bool:
    """Whether the current span is recorded: a client span (a Redis or Cassandra call) is worth
    making only then; in an unsampled call it would be built and thrown away."""
    return trace.get_current_span().is_recording()


def _instrument_clients() -> None:
    # Outgoing gRPC calls carry the trace context (and get client spans), also from an
    # unsampled call (the callee must not start a trace of its own). Redis and Cassandra calls
    # get their spans from kit.redis and kit.cassandra, in recorded calls only.
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient

    GrpcAioInstrumentorClient().instrument()


def _export_over_otlp(
    settings: TelemetrySettings,
    provider: TracerProvider,
    resource: Resource,
    root: logging.Logger,
) -> None:
    # Imported here: the exporters pull in grpc channels that a process without OTLP never needs.
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otlp_endpoint
    headers = {"authorization": f"Bearer {settings.otlp_token}"} if settings.otlp_token else None
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers))
    )
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True, headers=headers))
    )
    otlp_handler = LoggingHandler(logger_provider=logs)
    # The exporters' own complaints (receiver down) must not be exported in turn.
    otlp_handler.addFilter(lambda record: not record.name.startswith("opentelemetry"))
    root.addHandler(otlp_handler)
    reader = KitMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True, headers=headers),
        resource,
        export_interval_millis=int(settings.metrics_interval_seconds * 1000),
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    meter = metrics.get_meter("emporium")
    for name, description in GAUGES.items():
        meter.create_observable_gauge(name, callbacks=[_observe(name)], description=description)
