"""Retrying, in one place: tenacity to wait for a server that is starting or to keep a
background loop going through failures, and one jittered pause for optimistic (compare-and-set,
WATCH) loops that lost a race."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

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
