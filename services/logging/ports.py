"""What the logging service's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.logging.domain import LogEntry, LoggedService, LogQuery, Span, TimeRange, TraceQuery


class StoreUnavailable(Exception):
    """The document store cannot be reached or is overloaded; try again later."""


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk request did with each document, by position in the request."""

    # Positions refused for a passing reason (429, 5xx): send them again.
    retry: tuple[int, ...] = ()
    # Positions refused for good (a mapping conflict): retrying cannot help.
    rejected: tuple[int, ...] = ()
    # The first rejection's reason, for the log.
    first_error: str = ""


class DocumentSink(Protocol):
    """Where accepted documents are written, in bulk."""

    async def bulk(self, documents: Sequence[tuple[str, bytes]]) -> BulkOutcome:
        """Appends (data stream, JSON document) pairs; raises StoreUnavailable if it cannot."""
        ...


class TelemetrySearch(Protocol):
    """The read side over the indexed logs and spans."""

    async def search_logs(self, query: LogQuery, offset: int, limit: int) -> list[LogEntry]: ...

    async def trace_spans(self, trace_ids: Sequence[str]) -> list[Span]:
        """Every indexed span of these traces."""
        ...

    async def candidate_traces(self, query: TraceQuery, limit: int) -> list[str]:
        """Ids of traces with a span matching `query`, newest span first."""
        ...

    async def logged_services(self, time: TimeRange) -> list[LoggedService]:
        """Every service that sent something in `time`, ordered by name."""
        ...
