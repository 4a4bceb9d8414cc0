"""Telemetry set-up: stdlib logging with trace ids, OpenTelemetry traces and logs over OTLP.

Every service calls `setup(settings)` once at start. Log lines always go to stderr (the process
runner prefixes and keeps them) with the current trace and span id, so a line found in a log
search leads to its trace. When `EMPORIUM_OTLP_ENDPOINT` is set, spans and log records are also
exported over OTLP/gRPC to the logging service, which indexes them in Elasticsearch.
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

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


def setup(settings: TelemetrySettings) -> TracerProvider:
    """Configures logging and tracing for this process; returns the tracer provider."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceIds())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # The Cassandra driver and aio-pika narrate every connection at INFO.
    for chatty in ("cassandra", "aio_pika", "aiormq"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("cassandra.protocol").addFilter(_UseKeyspaceWarning())

    resource = Resource.create({"service.name": f"emporium-{settings.service_name}"})
    provider = TracerProvider(resource=resource)
    if settings.otlp_endpoint:
        _export_over_otlp(settings, provider, resource, root)
    trace.set_tracer_provider(provider)
    return provider


def _export_over_otlp(
    settings: TelemetrySettings,
    provider: TracerProvider,
    resource: Resource,
    root: logging.Logger,
) -> None:
    # Imported here: the exporters pull in grpc channels that a process without OTLP never needs.
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=settings.otlp_endpoint, insecure=True))
    )
    root.addHandler(LoggingHandler(logger_provider=logs))
