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


async def test_tasks_holding_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks = retry.KeyedLock()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    order: list[str] = []

    async def change(key: str, name: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            order.append(name)
            await asyncio.sleep(0.01)
            inside[key] -= 1

    await asyncio.gather(
        *(change("a", f"a{i}") for i in range(5)), *(change("b", f"b{i}") for i in range(5))
    )
    assert most == {"a": 1, "b": 1}
    # b's first turn does not wait for all of a's: the keys are independent.
    assert order.index("b0") < order.index("a1")
    assert len(locks) == 0  # nothing kept once nobody holds or waits


async def test_a_failure_inside_releases_the_key() -> None:
    locks = retry.KeyedLock()
    with pytest.raises(RuntimeError):
        async with locks.hold("a"):
            raise RuntimeError("boom")
    async with asyncio.timeout(1):
        async with locks.hold("a"):
            pass
    assert len(locks) == 0
