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
batches on the SDK's background threads.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind

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


class RequestRoots(Sampler):
    """Starts traces at requests and messages, never at a background task's client call (an
    outbox poll on Redis every 100 ms would otherwise be a trace of its own); a root that
    qualifies is kept with probability `ratio`."""

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
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestRoots({self._ratio.get_description()})"


def setup(settings: TelemetrySettings) -> TracerProvider | None:
    """Configures logging, and tracing + metrics when exporting; returns the tracer provider."""
    global _exporting
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
    _instrument_clients()
    _exporting = True
    return provider


def in_recorded_span() -> bool:
    """Whether the current span is recorded: a client span (a Redis or Cassandra call) is worth
    making only then; in an unsampled call it would be built and thrown away."""
    return trace.get_current_span().is_recording()


class ChildrenOnly(trace.TracerProvider):
    """Tracers whose spans exist only inside a recorded span; elsewhere they hand out the
    invalid span and do nothing else (no ids, no sampler, no context switch). For client
    instrumentation whose spans have no meaning on their own (RequestRoots drops them anyway)."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _ChildTracer(self._provider.get_tracer(*args, **kwargs))


class _ChildTracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context=None, *args: Any, **kwargs: Any) -> trace.Span:
        if not trace.get_current_span(context).is_recording():
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, *args, **kwargs)

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, context=None, *args: Any, **kwargs: Any):
        if not trace.get_current_span(context).is_recording():
            yield trace.INVALID_SPAN
            return
        with self._tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


def _instrument_clients() -> None:
    # Outgoing gRPC calls carry the trace context (and get client spans), also from an
    # unsampled call (the callee must not start a trace of its own); Redis calls get spans in
    # recorded calls only.
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    GrpcAioInstrumentorClient().instrument()
    RedisInstrumentor().instrument(tracer_provider=ChildrenOnly(trace.get_tracer_provider()))


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
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
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
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True, headers=headers),
        export_interval_millis=int(settings.metrics_interval_seconds * 1000),
    )
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    meter = metrics.get_meter("emporium")
    for name, description in GAUGES.items():
        meter.create_observable_gauge(name, callbacks=[_observe(name)], description=description)
