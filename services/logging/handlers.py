"""The logging service's use cases: accept OTLP documents into a bounded buffer and index them
in bulk; search logs and traces.

Ingest never makes a service wait on the store: an export is accepted into memory (up to
`buffer_bytes`) and answered at once; one background flusher writes batches with `_bulk`. When
the store is down the flusher keeps what it holds and retries with back-off, and once the buffer
is full further exports are refused (UNAVAILABLE), so the exporters back off and retry rather
than the logging service growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from kit import errors
from services.logging import domain
from services.logging.domain import LogEntry, LoggedService, LogQuery, TraceQuery, TraceSummary
from services.logging.ports import DocumentSink, StoreUnavailable, TelemetrySearch

log = logging.getLogger("emporium.logging")

# How far SearchTraces looks for candidate traces (newest first) before giving up on a page.
MAX_CANDIDATE_TRACES = 2000


def encode(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@dataclass
class IngestStats:
    accepted: int = 0
    refused: int = 0
    indexed: int = 0
    rejected: int = 0


class Ingest:
    """The bounded buffer between the OTLP receiver and the document store."""

    def __init__(
        self,
        sink: DocumentSink,
        *,
        buffer_bytes: int,
        batch_documents: int,
        flush_seconds: float,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._sink = sink
        self._capacity = buffer_bytes
        self._batch = batch_documents
        self._flush_seconds = flush_seconds
        self._max_backoff = max_backoff_seconds
        self._queue: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._store_up = True
        self.stats = IngestStats()

    @property
    def buffered(self) -> int:
        return len(self._queue)

    def accept(self, documents: Iterable[tuple[str, dict]]) -> bool:
        """Takes an export's documents whole, or none of them (False: the buffer is full)."""
        encoded = [(stream, encode(doc)) for stream, doc in documents]
        size = sum(len(body) for _, body in encoded)
        if self._bytes + size > self._capacity:
            self.stats.refused += len(encoded)
            return False
        self._queue.extend(encoded)
        self._bytes += size
        self.stats.accepted += len(encoded)
        if len(self._queue) >= self._batch:
            self._ready.set()
        return True

    async def flush(self) -> int:
        """Writes one batch; returns how many documents left the buffer."""
        count = min(len(self._queue), self._batch)
        if not count:
            return 0
        batch = [self._queue[i] for i in range(count)]
        outcome = await self._sink.bulk(batch)  # raises StoreUnavailable: batch stays queued
        retry = set(outcome.retry)
        for _ in range(count):
            _, body = self._queue.popleft()
            self._bytes -= len(body)
        # Documents to retry go back to the front, in order.
        for position in sorted(retry, reverse=True):
            stream, body = batch[position]
            self._queue.appendleft((stream, body))
            self._bytes += len(body)
        self.stats.rejected += len(outcome.rejected)
        self.stats.indexed += count - len(retry) - len(outcome.rejected)
        if outcome.rejected:
            log.warning(
                "%d documents rejected by the store: %s", len(outcome.rejected), outcome.first_error
            )
        return count - len(retry)

    async def run(self) -> None:
        """Flushes until cancelled: full batches at once, partial ones every flush_seconds."""
        backoff = 0.2
        while True:
            if len(self._queue) < self._batch:
                self._ready.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), self._flush_seconds)
            try:
                moved = await self.flush()
            except StoreUnavailable as exc:
                if self._store_up:
                    # No exporter is told: it already had its answer. This line is for the operator.
                    log.warning(
                        "document store unavailable (%s); %d documents held", exc, self.buffered
                    )
                self._store_up = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if not self._store_up:
                log.info("document store back; %d documents still to index", self.buffered)
            self._store_up = True
            backoff = 0.2
            if moved == 0 and self._queue:
                # Only retryable refusals (429): give the store a moment.
                await asyncio.sleep(backoff)

    async def drain(self, seconds: float) -> None:
        """Flushes what is buffered (shutdown), for at most `seconds`."""
        deadline = time.monotonic() + seconds
        while self._queue and time.monotonic() < deadline:
            try:
                await self.flush()
            except StoreUnavailable:
                await asyncio.sleep(0.2)
        if self._queue:
            log.warning("shutting down with %d documents not indexed", len(self._queue))


class SearchHandlers:
    """SearchLogs, GetTrace, SearchTraces and ListLoggedServices over the read port."""

    def __init__(
        self, search: TelemetrySearch, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._search = search
        self._now = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._now()

    async def search_logs(self, query: LogQuery, offset: int, limit: int) -> list[LogEntry]:
        return await self._search.search_logs(query, offset, limit)

    async def get_trace(self, trace_id: str) -> TraceSummary:
        if not trace_id:
            raise errors.InvalidArgument("trace_id", "is required")
        domain.check_id(trace_id, domain.TRACE_ID, "trace_id", "32")
        spans = await self._search.trace_spans([trace_id])
        if not spans:
            raise errors.NotFound(f"trace {trace_id} has no indexed span", reason="TRACE_NOT_FOUND")
        return domain.summarize(trace_id, spans, with_spans=True)

    async def search_traces(
        self, query: TraceQuery, offset: int, limit: int
    ) -> tuple[list[TraceSummary], bool]:
        """A page of matching traces (newest first) and whether more follow."""
        candidates = await self._search.candidate_traces(query, MAX_CANDIDATE_TRACES)
        matches: list[TraceSummary] = []
        wanted = offset + limit + 1
        chunk = max(limit * 2, 20)
        for start in range(0, len(candidates), chunk):
            ids = candidates[start : start + chunk]
            by_trace: dict[str, list[domain.Span]] = {}
            for span in await self._search.trace_spans(ids):
                by_trace.setdefault(span.trace_id, []).append(span)
            for trace_id in ids:
                spans = by_trace.get(trace_id)
                if not spans:
                    continue
                summary = domain.summarize(trace_id, spans, with_spans=False)
                if summary.duration >= query.min_duration:
                    matches.append(summary)
            if len(matches) >= wanted:
                break
        page = matches[offset : offset + limit]
        return page, len(matches) > offset + limit

    async def logged_services(self, time: domain.TimeRange) -> list[LoggedService]:
        return await self._search.logged_services(time)
