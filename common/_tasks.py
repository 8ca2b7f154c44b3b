"""One start/stop lifecycle for every background task (flag watcher, stats publisher, loop-lag
ticker, Unleash probe): a named task, a stop flag, and a stop that always ends the task.

Stopping both sets the flag and cancels. The flag because redis-py on Python 3.11 can swallow a
cancel inside a command (it surfaces as a ConnectionError, and a loop that retries on Redis
errors would go on); the cancel so that a body asleep in `Stopping.sleep` wakes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from common._logs import get_logger

_log = get_logger("common.tasks")


class Stopping:
    """The stop flag a task body checks between steps."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    async def sleep(self, seconds: float) -> bool:
        """Waits up to `seconds`; True as soon as a stop is asked (then the body should return)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        return self._event.is_set()


class BackgroundTask:
    """Runs `body(stopping)` as one task between `start()` and `stop()`.

    A body that raises is logged as an ERROR with the task's name (it would otherwise die
    silently); it is not restarted: the body is expected to handle the errors it can recover
    from, such as a Redis outage, itself.
    """

    def __init__(self, name: str, body: Callable[[Stopping], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._body = body
        self._stopping = Stopping()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Starts the task in the running loop (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._body(self._stopping), name=self.name)
            self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Asks the body to stop, cancels it, and waits until it has ended."""
        self._stopping.set()
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task])  # our own cancellation still propagates
        if not task.cancelled():
            task.exception()  # retrieved: a body that failed while stopping is not news

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping.is_set():
            return
        error = task.exception()
        if error is not None:
            _log.error(
                "Background task crashed",
                task=self.name,
                error=type(error).__name__,
                action="restart the process; report the traceback in the log",
                exc_info=error,
            )
