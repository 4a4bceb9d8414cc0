"""OTLP -> index documents (Elastic's OTel-native layout, README.md), documents -> domain,
domain -> the LoggingService's protobuf messages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from emporium.logging.v1 import log_entry_pb2, logged_service_pb2, trace_pb2
from google.protobuf import duration_pb2, timestamp_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from services.logging import domain
from services.logging.domain import LogEntry, LoggedService, Span, SpanEvent, SpanLink

# A document for the bulk request: (data stream, JSON-ready dict).
Document = tuple[str, dict[str, Any]]

# Span kinds and status codes as Elastic's exporter writes them (pdata's String()).
KIND_NAMES = {
    0: "Unspecified",
    1: "Internal",
    2: "Server",
    3: "Client",
    4: "Producer",
    5: "Consumer",
}
KIND_NUMBERS = {v: k for k, v in KIND_NAMES.items()}
STATUS_NAMES = {0: "Unset", 1: "Ok", 2: "Error"}
STATUS_NUMBERS = {v: k for k, v in STATUS_NAMES.items()}


# --- OTLP -> documents ------------------------------------------------------------------------


def iso(nanos: int) -> str:
    """RFC 3339 with nanoseconds, what a `date_nanos` field keeps exactly."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(pairs: Any, prefix: str = "") -> dict[str, Any]:
    """OTLP key-values as a flat dict; nested maps become dotted keys (as in the contract)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key = f"{prefix}{pair.key}"
        if pair.value.WhichOneof("value") == "kvlist_value":
            out.update(attributes(pair.value.kvlist_value.values, f"{key}."))
        else:
            out[key] = _value(pair.value)
    return out if prefix else _without_prefix_clashes(out)


def _without_prefix_clashes(values: dict[str, Any]) -> dict[str, Any]:
    """Renames a key that is also the prefix of another (Envoy sends `upstream_cluster` and
    `upstream_cluster.name`) to `<key>.value`: the store expands dotted keys into objects, and
    a field cannot be both a value and an object. Elasticsearch's `passthrough` objects avoid
    this; OpenSearch has no such type."""
    parents = {k.rsplit(".", i)[0] for k in values for i in range(1, k.count(".") + 1)}
    clashes = parents & values.keys()
    if not clashes:
        return values
    return {f"{k}.value" if k in clashes else k: v for k, v in values.items()}


def _hex(raw: bytes) -> str:
    return raw.hex() if raw and any(raw) else ""


def _resource(resource: resource_pb2.Resource) -> dict[str, Any]:
    return {
        "attributes": attributes(resource.attributes),
        "dropped_attributes_count": resource.dropped_attributes_count,
    }


def _scope(scope: common_pb2.InstrumentationScope) -> dict[str, Any]:
    out: dict[str, Any] = {"name": scope.name}
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = attributes(scope.attributes)
    return out


def _stream_fields(signal: str, namespace: str) -> dict[str, str]:
    return {"type": signal, "dataset": domain.DATASET, "namespace": namespace}


def log_documents(
    request: logs_service_pb2.ExportLogsServiceRequest, namespace: str
) -> Iterator[Document]:
    stream = domain.data_stream("logs", namespace)
    fields = _stream_fields("logs", namespace)
    for resource_logs in request.resource_logs:
        resource = _resource(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            scope = _scope(scope_logs.scope)
            for record in scope_logs.log_records:
                when = record.time_unix_nano or record.observed_time_unix_nano
                body = _value(record.body)
                doc: dict[str, Any] = {
                    "@timestamp": iso(when),
                    "data_stream": fields,
                    "resource": resource,
                    "scope": scope,
                    "attributes": attributes(record.attributes),
                    "severity_number": int(record.severity_number),
                    "severity_text": record.severity_text,
                    # Elastic keeps a string body in body.text, anything else in body.structured.
                    "body": {"text": body}
                    if isinstance(body, str)
                    else {"structured": body if isinstance(body, dict) else {"value": body}},
                }
                if record.observed_time_unix_nano:
                    doc["observed_timestamp"] = iso(record.observed_time_unix_nano)
                if trace_id := _hex(record.trace_id):
                    doc["trace_id"] = trace_id
                if span_id := _hex(record.span_id):
                    doc["span_id"] = span_id
                if record.event_name:
                    doc["event_name"] = record.event_name
                if record.dropped_attributes_count:
                    doc["dropped_attributes_count"] = record.dropped_attributes_count
                yield stream, doc


def span_documents(
    request: trace_service_pb2.ExportTraceServiceRequest, namespace: str
) -> Iterator[Document]:
    stream = domain.data_stream("traces", namespace)
    fields = _stream_fields("traces", namespace)
    for resource_spans in request.resource_spans:
        resource = _resource(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            scope = _scope(scope_spans.scope)
            for span in scope_spans.spans:
                doc: dict[str, Any] = {
                    "@timestamp": iso(span.start_time_unix_nano),
                    "data_stream": fields,
                    "resource": resource,
                    "scope": scope,
                    "trace_id": _hex(span.trace_id),
                    "span_id": _hex(span.span_id),
                    "name": span.name,
                    "kind": KIND_NAMES.get(int(span.kind), "Unspecified"),
                    "duration": max(0, span.end_time_unix_nano - span.start_time_unix_nano),
                    "attributes": attributes(span.attributes),
                    "status": {"code": STATUS_NAMES.get(int(span.status.code), "Unset")},
                }
                if parent := _hex(span.parent_span_id):
                    doc["parent_span_id"] = parent
                if span.trace_state:
                    doc["trace_state"] = span.trace_state
                if span.status.message:
                    doc["status"]["message"] = span.status.message
                if span.events:
                    doc["events"] = [
                        {
                            "name": e.name,
                            "time": iso(e.time_unix_nano),
                            "attributes": attributes(e.attributes),
                        }
                        for e in span.events
                    ]
                if span.links:
                    doc["links"] = [
                        {
                            "trace_id": _hex(link.trace_id),
                            "span_id": _hex(link.span_id),
                            "attributes": attributes(link.attributes),
                        }
                        for link in span.links
                    ]
                yield stream, doc


def _point_value(point: Any) -> float | int:
    return point.as_double if point.WhichOneof("value") == "as_double" else point.as_int


def metric_documents(
    request: metrics_service_pb2.ExportMetricsServiceRequest, namespace: str
) -> Iterator[Document]:
    """One document per data point: `metrics.<name>` holds its value (a number, or for a
    histogram or summary its sum, value_count, min and max)."""
    stream = domain.data_stream("metrics", namespace)
    fields = _stream_fields("metrics", namespace)
    for resource_metrics in request.resource_metrics:
        resource = _resource(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = _scope(scope_metrics.scope)
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                for point in getattr(metric, kind).data_points:
                    if kind in ("gauge", "sum"):
                        value: Any = _point_value(point)
                    else:
                        value = {"sum": point.sum, "value_count": point.count}
                        if kind != "summary" and point.HasField("min"):
                            value.update(min=point.min, max=point.max)
                    doc = {
                        "@timestamp": iso(point.time_unix_nano),
                        "data_stream": fields,
                        "resource": resource,
                        "scope": scope,
                        "attributes": attributes(point.attributes),
                        "metrics": {metric.name: value},
                        "unit": metric.unit,
                    }
                    if point.start_time_unix_nano:
                        doc["start_timestamp"] = iso(point.start_time_unix_nano)
                    yield stream, doc


# --- documents -> domain ----------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with up to nanoseconds (microseconds kept)."""
    head, dot, frac = text.rstrip("Z").partition(".")
    micros = int((frac + "000000")[:6]) if dot else 0
    return datetime.fromisoformat(head).replace(tzinfo=UTC, microsecond=micros)


def _strings(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in (values or {}).items()
    }


def _service(doc: Mapping[str, Any]) -> str:
    return str(((doc.get("resource") or {}).get("attributes") or {}).get("service.name", ""))


def log_entry(doc: Mapping[str, Any]) -> LogEntry:
    body = doc.get("body") or {}
    text = body.get("text")
    if text is None:
        text = json.dumps(body.get("structured"), separators=(",", ":"))
    observed = doc.get("observed_timestamp")
    return LogEntry(
        time=parse_time(doc["@timestamp"]),
        observed_time=parse_time(observed) if observed else None,
        service=_service(doc),
        severity_number=int(doc.get("severity_number") or 0),
        severity_text=str(doc.get("severity_text") or ""),
        body=str(text),
        trace_id=str(doc.get("trace_id") or ""),
        span_id=str(doc.get("span_id") or ""),
        scope_name=str((doc.get("scope") or {}).get("name") or ""),
        attributes=_strings(doc.get("attributes")),
        resource_attributes=_strings((doc.get("resource") or {}).get("attributes")),
    )


def span(doc: Mapping[str, Any]) -> Span:
    status = doc.get("status") or {}
    return Span(
        trace_id=str(doc["trace_id"]),
        span_id=str(doc["span_id"]),
        parent_span_id=str(doc.get("parent_span_id") or ""),
        name=str(doc.get("name") or ""),
        service=_service(doc),
        kind=KIND_NUMBERS.get(str(doc.get("kind")), 0),
        start=parse_time(doc["@timestamp"]),
        duration_ns=int(doc.get("duration") or 0),
        status_code=STATUS_NUMBERS.get(str(status.get("code")), 0),
        status_message=str(status.get("message") or ""),
        attributes=_strings(doc.get("attributes")),
        events=tuple(
            SpanEvent(e.get("name", ""), parse_time(e["time"]), _strings(e.get("attributes")))
            for e in doc.get("events") or ()
        ),
        links=tuple(
            SpanLink(lk.get("trace_id", ""), lk.get("span_id", ""), _strings(lk.get("attributes")))
            for lk in doc.get("links") or ()
        ),
    )


# --- domain -> protobuf -----------------------------------------------------------------------


def timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def duration(delta: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(delta)
    return out


def from_timestamp(value: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return value.ToDatetime(tzinfo=UTC) if present else None


def log_entry_to_proto(entry: LogEntry) -> log_entry_pb2.LogEntry:
    out = log_entry_pb2.LogEntry(
        log_time=timestamp(entry.time),
        service=entry.service,
        severity=SEVERITY_TO_PROTO[domain.Severity.of_number(entry.severity_number)],
        severity_text=entry.severity_text,
        body=entry.body,
        trace_id=entry.trace_id,
        span_id=entry.span_id,
        scope_name=entry.scope_name,
        attributes=entry.attributes,
        resource_attributes=entry.resource_attributes,
    )
    if entry.observed_time:
        out.observed_time.CopyFrom(timestamp(entry.observed_time))
    return out


def span_to_proto(span: Span) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        service=span.service,
        kind=span.kind,
        start_time=timestamp(span.start),
        end_time=timestamp(span.end),
        duration=duration(span.end - span.start),
        status_code=span.status_code,
        status_message=span.status_message,
        attributes=span.attributes,
        events=[
            trace_pb2.Span.Event(name=e.name, event_time=timestamp(e.time), attributes=e.attributes)
            for e in span.events
        ],
        links=[
            trace_pb2.Span.Link(trace_id=lk.trace_id, span_id=lk.span_id, attributes=lk.attributes)
            for lk in span.links
        ],
    )


def trace_to_proto(summary: domain.TraceSummary) -> trace_pb2.Trace:
    return trace_pb2.Trace(
        trace_id=summary.trace_id,
        root_span_name=summary.root_span_name,
        root_service=summary.root_service,
        services=summary.services,
        start_time=timestamp(summary.start),
        end_time=timestamp(summary.end),
        duration=duration(summary.duration),
        span_count=summary.span_count,
        error_count=summary.error_count,
        spans=[span_to_proto(s) for s in summary.spans],
    )


def logged_service_to_proto(service: LoggedService) -> logged_service_pb2.LoggedService:
    out = logged_service_pb2.LoggedService(
        name=service.name,
        version=service.version,
        log_count=service.log_count,
        error_log_count=service.error_log_count,
        span_count=service.span_count,
    )
    if service.last_seen:
        out.last_seen_time.CopyFrom(timestamp(service.last_seen))
    return out


# The proto's Severity values are 1..6 in the order of the ranges.
SEVERITY_FROM_PROTO = {
    log_entry_pb2.LogEntry.SEVERITY_UNSPECIFIED: domain.Severity.UNSPECIFIED,
    log_entry_pb2.LogEntry.SEVERITY_TRACE: domain.Severity.TRACE,
    log_entry_pb2.LogEntry.SEVERITY_DEBUG: domain.Severity.DEBUG,
    log_entry_pb2.LogEntry.SEVERITY_INFO: domain.Severity.INFO,
    log_entry_pb2.LogEntry.SEVERITY_WARN: domain.Severity.WARN,
    log_entry_pb2.LogEntry.SEVERITY_ERROR: domain.Severity.ERROR,
    log_entry_pb2.LogEntry.SEVERITY_FATAL: domain.Severity.FATAL,
}
SEVERITY_TO_PROTO = {v: k for k, v in SEVERITY_FROM_PROTO.items()}
