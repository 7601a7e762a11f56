"""The app's background loops (the purge, the write-behind, the scrub, notifications): how
they wait between rounds and how the lifespan stops them.

A library can swallow a task's cancellation: SQLAlchemy returning an asyncpg connection to
its pool while the task is cancelled may catch the ``CancelledError`` and carry on, and the
loop then sleeps as if nothing had happened (seen: the app's shutdown waiting forever for the
purge). So a loop checks, before each wait, whether its task was asked to stop
(:func:`pause`), and :func:`stop` asks again until the task has ended.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

STOP_WAIT_S = 0.1
"""How long :func:`stop` waits for the task after each cancellation."""
STOP_TRIES = 100


async def pause(seconds: float) -> None:
    """Sleep ``seconds``, unless this task has been asked to stop (then raise
    ``CancelledError`` now, even if the request was swallowed on its way)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    await asyncio.sleep(seconds)


async def stop(task: asyncio.Task[object]) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again while it runs."""
    for _ in range(STOP_TRIES):
        task.cancel()
        done, _pending = await asyncio.wait({task}, timeout=STOP_WAIT_S)
        if done:
            break
    else:
        logger.error("background task %s did not stop", task.get_name())
        return
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s ended with %s", task.get_name(),
                     type(task.exception()).__name__)
