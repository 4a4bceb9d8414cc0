"""Retrying, in one place: tenacity to wait for a server that is starting or to keep a
background loop going through failures, one jittered pause for optimistic (compare-and-set,
WATCH) loops that lost a race, and a per-key lock so that one process's own tasks take turns at
a row instead of racing each other's compare-and-set."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

log = logging.getLogger("emporium.retry")


def until_up(
    seconds: float,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    *,
    first_wait: float = 0.5,
    max_wait: float = 5.0,
) -> AsyncRetrying:
    """Attempts at reaching a server for `seconds`, waiting `first_wait` doubling up to
    `max_wait` between them; then the last error is raised. Use as

        async for attempt in until_up(60, ConnectionError):
            with attempt:
                connection = await connect()
    """
    return AsyncRetrying(
        stop=stop_after_delay(seconds),
        wait=wait_exponential(multiplier=first_wait, min=first_wait, max=max_wait),
        retry=retry_if_exception_type(exceptions),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )


def until_done(
    what: str,
    *,
    first_wait: float = 1.0,
    max_wait: float = 1.0,
    traceback: bool = True,
) -> AsyncRetrying:
    """Attempts until one returns, however many fail, waiting `first_wait` doubling up to
    `max_wait` between them; each failure is logged (`what` failed, with its traceback unless
    `traceback=False`). Cancelling the task stops it: CancelledError is not retried. Use as

        async for attempt in until_done("outbox relay", first_wait=0.5, max_wait=10):
            with attempt:
                count = await relay_once()
    """
    return AsyncRetrying(
        wait=wait_exponential(multiplier=first_wait, min=first_wait, max=max_wait),
        retry=retry_if_exception_type(Exception),
        before_sleep=_failure_logger(what, traceback),
        reraise=True,
    )


def _failure_logger(what: str, traceback: bool) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        level = logging.ERROR if traceback else logging.WARNING
        log.log(
            level,
            "%s failed (%s); retrying in %.1f s",
            what,
            error,
            pause,
            exc_info=error if traceback else None,
        )

    return before_sleep


async def contention_pause(attempt: int, *, base: float = 0.005, cap: float = 0.2) -> None:
    """The pause before retry `attempt` (0-based) of a write that lost a race: full jitter
    (uniform from 0 to `base * 2**attempt`, at most `cap`), so racing writers spread out
    instead of colliding again in lockstep."""
    await asyncio.sleep(random.uniform(0, min(cap, base * 2 ** min(attempt, 6))))


class KeyedLock:
    """One asyncio lock per key, kept only while a task holds or waits for it.

    A compare-and-set that loses costs a Paxos round, a re-read and a pause: when many tasks of
    one process change the same row (a best seller's stock), taking turns here is cheaper than
    racing. It only orders this process's tasks; other processes still race through the
    compare-and-set, which stays the guard."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
