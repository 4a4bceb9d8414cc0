"""Retrying, in one place: tenacity to wait for a server that is starting, and one jittered
pause for optimistic (compare-and-set, WATCH) loops that lost a race."""

from __future__ import annotations

import asyncio
import logging
import random

from tenacity import (
    AsyncRetrying,
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


async def contention_pause(attempt: int, *, base: float = 0.005, cap: float = 0.2) -> None:
    """The pause before retry `attempt` (0-based) of a write that lost a race: full jitter
    (uniform from 0 to `base * 2**attempt`, at most `cap`), so racing writers spread out
    instead of colliding again in lockstep."""
    await asyncio.sleep(random.uniform(0, min(cap, base * 2 ** min(attempt, 6))))
