"""The LoggingService servicer (admin-only, enforced by the kit's auth interceptor from the
contract's access annotations): decodes requests, calls a handler, encodes the answer.

Page tokens carry the offset and the resolved end time, so the pages of one search are cut
from the same moment even while new records arrive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from emporium.logging.v1 import logging_service_pb2, logging_service_pb2_grpc
from google.protobuf import json_format

from kit import errors, paging
from services.logging import domain, mapping
from services.logging.domain import LogQuery, TimeRange, TraceQuery
from services.logging.handlers import SearchHandlers

PAGE_DEFAULT, PAGE_MAX = 20, 100
# Offsets beyond this are refused by the store's default result window (from + size).
MAX_OFFSET = 10_000 - PAGE_MAX


def _page_size(requested: int) -> int:
    if requested < 0 or requested > PAGE_MAX:
        raise errors.InvalidArgument("page_size", f"must be between 0 and {PAGE_MAX}")
    return requested or PAGE_DEFAULT


def _scope(request: Any) -> dict[str, Any]:
    """The request's filters (what a page token is bound to)."""
    scope = json_format.MessageToDict(request, preserving_proto_field_name=True)
    scope.pop("page_size", None)
    scope.pop("page_token", None)
    return scope


def _page(request: Any, now: datetime) -> tuple[int, datetime]:
    """The offset and the end time of this page (the first page's end when unset)."""
    cursor = paging.decode_page_token(request.page_token, _scope(request))
    if not cursor:
        end = mapping.from_timestamp(request.end_time, request.HasField("end_time")) or now
        return 0, end
    if not isinstance(cursor, dict):
        raise errors.InvalidArgument("page_token", "is not a token of this search")
    return int(cursor["offset"]), mapping.parse_time(cursor["end"])


def _next_token(request: Any, offset: int, end: datetime, more: bool) -> str:
    if not more or offset > MAX_OFFSET:
        return ""
    cursor = {"offset": offset, "end": end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return paging.encode_page_token(cursor, _scope(request))


def _time(request: Any, end: datetime, now: datetime, *, open_start: bool) -> TimeRange:
    start = mapping.from_timestamp(request.start_time, request.HasField("start_time"))
    return TimeRange.of(start, end, now, open_start=open_start)


class LoggingService(logging_service_pb2_grpc.LoggingServiceServicer):
    def __init__(self, handlers: SearchHandlers) -> None:
        self.handlers = handlers

    async def SearchLogs(self, request, context):
        size = _page_size(request.page_size)
        now = self.handlers.now()
        offset, end = _page(request, now)
        if request.min_severity not in mapping.SEVERITY_FROM_PROTO:
            raise errors.InvalidArgument("min_severity", "is not a known severity")
        query = LogQuery(
            service=request.service,
            min_severity=mapping.SEVERITY_FROM_PROTO[request.min_severity],
            text=request.query.strip(),
            trace_id=domain.check_id(request.trace_id, domain.TRACE_ID, "trace_id", "32"),
            span_id=domain.check_id(request.span_id, domain.SPAN_ID, "span_id", "16"),
            attributes=domain.parse_attribute_filters(request.attributes, "attributes"),
            time=_time(request, end, now, open_start=bool(request.trace_id or request.span_id)),
            oldest_first=request.oldest_first,
        )
        entries = await self.handlers.search_logs(query, offset, size + 1)
        return logging_service_pb2.SearchLogsResponse(
            log_entries=[mapping.log_entry_to_proto(e) for e in entries[:size]],
            next_page_token=_next_token(request, offset + size, end, len(entries) > size),
        )

    async def GetTrace(self, request, context):
        return mapping.trace_to_proto(await self.handlers.get_trace(request.trace_id))

    async def SearchTraces(self, request, context):
        size = _page_size(request.page_size)
        now = self.handlers.now()
        offset, end = _page(request, now)
        min_duration = request.min_duration.ToTimedelta()
        if min_duration < timedelta(0):
            raise errors.InvalidArgument("min_duration", "must not be negative")
        query = TraceQuery(
            service=request.service,
            span_name=request.span_name,
            min_duration=min_duration,
            error_only=request.error_only,
            attributes=domain.parse_attribute_filters(request.attributes, "attributes"),
            time=_time(request, end, now, open_start=False),
        )
        traces, more = await self.handlers.search_traces(query, offset, size)
        return logging_service_pb2.SearchTracesResponse(
            traces=[mapping.trace_to_proto(t) for t in traces],
            next_page_token=_next_token(request, offset + size, end, more),
        )

    async def ListLoggedServices(self, request, context):
        size = _page_size(request.page_size)
        now = self.handlers.now()
        offset, end = _page(request, now)
        services = await self.handlers.logged_services(_time(request, end, now, open_start=False))
        return logging_service_pb2.ListLoggedServicesResponse(
            logged_services=[
                mapping.logged_service_to_proto(s) for s in services[offset : offset + size]
            ],
            next_page_token=_next_token(request, offset + size, end, len(services) > offset + size),
        )
