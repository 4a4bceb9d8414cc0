"""The logging service's rules: severities, data stream names, queries, and trace trees.

No I/O and no protobuf: documents are the dicts of the index layout (README.md), spans and log
entries the dataclasses below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum

from kit import errors

SIGNALS = ("logs", "traces", "metrics")
# Elastic's OTel-native data streams are `<type>-<dataset>.otel-<namespace>`; every Emporium
# service writes the one dataset (the service is in resource.attributes.service.name).
DATASET = "generic.otel"
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
DEFAULT_WINDOW = timedelta(hours=24)


def data_stream(signal: str, namespace: str) -> str:
    """The data stream a signal's documents go to, such as `logs-generic.otel-default`."""
    return f"{signal}-{DATASET}-{namespace}"


class Severity(IntEnum):
    """The OpenTelemetry severity ranges; each value is the lowest OTLP number of its range."""

    UNSPECIFIED = 0
    TRACE = 1
    DEBUG = 5
    INFO = 9
    WARN = 13
    ERROR = 17
    FATAL = 21

    @classmethod
    def of_number(cls, number: int) -> Severity:
        """The range an OTLP severity number falls in (0, or out of range: UNSPECIFIED)."""
        if not 1 <= number <= 24:
            return cls.UNSPECIFIED
        return [s for s in cls if s and s <= number][-1]


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None
    end: datetime | None

    @classmethod
    def of(
        cls, start: datetime | None, end: datetime | None, now: datetime, *, open_start: bool
    ) -> TimeRange:
        """Defaults (end now, start a day before unless `open_start`), checked in order."""
        end = end or now
        if start is None and not open_start:
            start = end - DEFAULT_WINDOW
        if start is not None and start > end:
            raise errors.InvalidArgument("start_time", "must not be after end_time")
        return cls(start, end)


def parse_attribute_filters(raw: Iterable[str], field_name: str) -> tuple[tuple[str, str], ...]:
    """`key=value` filters; INVALID_ARGUMENT naming the field for one without a key or '='."""
    out = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise errors.InvalidArgument(field_name, f"{item!r} is not key=value")
        out.append((key.strip(), value))
    return tuple(out)


def check_id(value: str, pattern: re.Pattern[str], field_name: str, what: str) -> str:
    if value and not pattern.match(value):
        raise errors.InvalidArgument(field_name, f"must be {what} lowercase hex digits")
    return value


@dataclass(frozen=True)
class LogQuery:
    service: str = ""
    min_severity: Severity = Severity.UNSPECIFIED
    text: str = ""
    trace_id: str = ""
    span_id: str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    time: TimeRange = TimeRange(None, None)
    oldest_first: bool = False


@dataclass(frozen=True)
class TraceQuery:
    service: str = ""
    span_name: str = ""
    min_duration: timedelta = timedelta(0)
    error_only: bool = False
    attributes: tuple[tuple[str, str], ...] = ()
    time: TimeRange = TimeRange(None, None)


@dataclass(frozen=True)
class LogEntry:
    time: datetime
    observed_time: datetime | None
    service: str
    severity_number: int
    severity_text: str
    body: str
    trace_id: str
    span_id: str
    scope_name: str
    attributes: dict[str, str] = field(default_factory=dict)
    resource_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time: datetime
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanLink:
    trace_id: str
    span_id: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    kind: int  # OTLP SpanKind number
    start: datetime
    duration_ns: int
    status_code: int  # OTLP StatusCode number: 0 unset, 1 ok, 2 error
    status_message: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()

    @property
    def end(self) -> datetime:
        return self.start + timedelta(microseconds=self.duration_ns / 1000)

    @property
    def failed(self) -> bool:
        return self.status_code == 2


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    root_span_name: str
    root_service: str
    services: tuple[str, ...]
    start: datetime
    end: datetime
    span_count: int
    error_count: int
    spans: tuple[Span, ...] = ()

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def tree_order(spans: Sequence[Span]) -> list[Span]:
    """Depth first from each root, children by start time: the order of a trace view.

    A span whose parent never arrived (not sampled, not exported yet) is shown as a root, so
    every span appears exactly once.
    """
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in spans:
        if (
            span.parent_span_id
            and span.parent_span_id in ids
            and span.parent_span_id != span.span_id
        ):
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    ordered: list[Span] = []
    seen: set[str] = set()
    stack = sorted(roots, key=lambda s: (s.start, s.span_id), reverse=True)
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append(span)
        kids = sorted(children.get(span.span_id, ()), key=lambda s: (s.start, s.span_id))
        stack.extend(reversed(kids))
    # A parent cycle (malformed input) leaves spans unreached: append them rather than lose them.
    ordered.extend(s for s in sorted(spans, key=lambda s: s.start) if s.span_id not in seen)
    return ordered


def summarize(trace_id: str, spans: Sequence[Span], *, with_spans: bool) -> TraceSummary:
    """A trace from its spans (at least one): root, services, extent, counts."""
    ordered = tree_order(spans)
    true_roots = [s for s in ordered if not s.parent_span_id]
    root = true_roots[0] if true_roots else None
    start = min(s.start for s in spans)
    end = max(s.end for s in spans)
    return TraceSummary(
        trace_id=trace_id,
        root_span_name=root.name if root else "",
        root_service=root.service if root else "",
        services=tuple(sorted({s.service for s in spans if s.service})),
        start=start,
        end=end,
        span_count=len(spans),
        error_count=sum(1 for s in spans if s.failed),
        spans=tuple(ordered) if with_spans else (),
    )


@dataclass(frozen=True)
class LoggedService:
    name: str
    version: str
    last_seen: datetime | None
    log_count: int
    error_log_count: int
    span_count: int
