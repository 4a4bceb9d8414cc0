"""An in-memory DocumentSink for unit tests: keeps what it is sent, and can be made to fail."""

from __future__ import annotations

import json
from collections.abc import Sequence

from services.logging.ports import BulkOutcome, StoreUnavailable


class InMemoryDocumentSink:
    """Documents by data stream; `down = True` makes bulk raise StoreUnavailable."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict]] = {}
        self.down = False
        self.requests = 0

    async def bulk(self, documents: Sequence[tuple[str, bytes]]) -> BulkOutcome:
        self.requests += 1
        if self.down:
            raise StoreUnavailable("the in-memory store is down")
        for stream, body in documents:
            self.streams.setdefault(stream, []).append(json.loads(body))
        return BulkOutcome()

    def documents(self, stream: str) -> list[dict]:
        return list(self.streams.get(stream, ()))
