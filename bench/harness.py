"""What every bench shares: drive one operation with N requests in flight, and print a row."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

HEADER = f"{'operation':<26} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}"


@dataclass
class Result:
    name: str
    latencies: list[float]
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def row(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"{self.name:<26} {self.rate:>9.0f} "
            f"{statistics.median(ordered) * 1000:>9.1f} {p99 * 1000:>9.1f} {self.errors:>7}"
        )


async def drive(
    name: str, call: Callable[[], Awaitable[None]], seconds: float, concurrency: int
) -> Result:
    """Calls `call` from `concurrency` workers for `seconds`; failed calls count as errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, latencies, errors, time.perf_counter() - started)
