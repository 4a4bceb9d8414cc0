"""The wall clock that handlers take as their Clock port (tests pass a fake one)."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        # Millisecond precision: what Cassandra timestamps, protobuf round trips of stored
        # documents and the outbox keep exactly, so a value read back equals the value written.
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
