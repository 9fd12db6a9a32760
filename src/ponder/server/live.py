"""A run that outlives its client: its own task, a queue of events, a cancel switch.

HTTP handlers (and MCP tool calls) are cancelled when their client goes away. A journaled
run must not die with them, or it would be stored as `interrupted` instead of ending
cleanly as `cancelled` with its `RunFinished`. So the run goes on in a task of its own
(`runs.execute` feeding a queue); the handler reads the queue, and when its client leaves
it sets the run's `cancel` event and returns at once: the run ends itself, through the
runtime's ordinary cancel path, and the journal closes its row. Tasks are kept referenced
until they end (asyncio keeps only weak references to tasks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.events import Event

Sink = Callable[[Event], Any]
Starter = Callable[[Sink, asyncio.Event], Awaitable[Any]]

_ALIVE: set[asyncio.Task[Any]] = set()
_END = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


class LiveRun:
    """`start(sink, cancel)` running in its own task; `await next()` gives its events, then None.

    `hard=True` (a call nothing records): `stop()` cancels the task itself; otherwise `stop()`
    sets `cancel` and the run ends through its own cancel path."""

    __slots__ = ("queue", "cancel", "task", "hard", "ended")

    def __init__(self, start: Starter, *, hard: bool = False, name: str = "ponder-live-run"):
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancel = asyncio.Event()
        self.hard = hard
        self.ended = False
        self.task = asyncio.get_running_loop().create_task(self._main(start), name=name)
        _ALIVE.add(self.task)
        self.task.add_done_callback(_ALIVE.discard)

    async def _main(self, start: Starter) -> None:
        put = self.queue.put_nowait
        try:
            await start(put, self.cancel)
        except asyncio.CancelledError:
            put(_END)
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the reader
            put(_Failed(e))
        put(_END)

    async def next(self) -> Event | None:
        """The next event, or None once the run has ended; re-raises what the run raised."""
        if self.ended:
            return None
        item = await self.queue.get()
        if item is _END:
            self.ended = True
            return None
        if type(item) is _Failed:
            self.ended = True
            raise item.exc
        return item  # type: ignore[no-any-return]

    def stop(self) -> None:
        """The reader is gone: end the run (it records itself as cancelled)."""
        if self.task.done():
            return
        if self.hard:
            self.task.cancel()
        else:
            self.cancel.set()


async def watch_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]], on_gone: Callable[[], None]) -> None:
    """Call `on_gone` when the ASGI server reports the client gone (run as a task; cancel it
    when the response is complete)."""
    while True:
        msg = await receive()
        if msg.get("type") == "http.disconnect":
            on_gone()
            return
