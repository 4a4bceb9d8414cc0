"""The wall clock, as the handlers' Clock port."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        # Millisecond precision: what Cassandra's timestamp type keeps, so a value read back
        # equals the value written.
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
