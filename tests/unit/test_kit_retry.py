"""kit.retry.until_done: the retry of background loops (the server's supervised tasks, the
outbox relay)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kit import retry


async def test_a_failing_attempt_is_logged_and_retried_until_one_returns(caplog) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"down {calls}")
        return "done"

    caplog.set_level(logging.INFO, logger="emporium.retry")
    async for attempt in retry.until_done("the flaky thing", first_wait=0.01, max_wait=0.02):
        with attempt:
            result = await flaky()
    assert (calls, result) == (3, "done")
    failures = [r for r in caplog.records if "the flaky thing failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.ERROR, logging.ERROR]
    assert "down 1" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # the traceback, unless traceback=False


async def test_cancelling_the_task_stops_the_retries() -> None:
    calls = 0

    async def forever_failing() -> None:
        nonlocal calls
        async for attempt in retry.until_done("doomed", first_wait=0.01, max_wait=0.01):
            with attempt:
                calls += 1
                raise ConnectionError("down")

    task = asyncio.create_task(forever_failing())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls > 1
