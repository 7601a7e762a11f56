"""Stopping the app's background loops (``api.background``) even when a library swallowed
the cancellation, as SQLAlchemy's asyncpg pool did under the purge (the app's shutdown then
waited forever)."""

from __future__ import annotations

import asyncio

import pytest

from api.background import pause, stop

pytestmark = pytest.mark.anyio


async def swallowing_once() -> None:
    """A library call that catches one CancelledError and returns normally."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        pass


async def test_a_loop_that_pauses_stops_although_its_cancellation_was_swallowed() -> None:
    async def loop() -> None:
        while True:
            await swallowing_once()
            await pause(10)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    assert done and task.cancelled()  # pause saw the request the library swallowed


async def test_stop_cancels_again_a_task_that_swallowed_the_first() -> None:
    async def loop() -> None:
        while True:
            await swallowing_once()
            await asyncio.sleep(10)  # a plain sleep: only a second cancellation ends it

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stop(task), timeout=5)
    assert task.cancelled()


async def test_stop_logs_a_loop_that_failed(caplog: pytest.LogCaptureFixture) -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(failing(), name="purge")
    await asyncio.sleep(0.01)
    await stop(task)
    assert "background task purge ended with RuntimeError" in caplog.text
