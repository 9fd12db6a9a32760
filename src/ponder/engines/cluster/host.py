"""A cluster host: one Ray async actor running many jobs (sub-agents, compare units) at once.

A job is a picklable object with `kit` (the id of what it needs built once per host: a
model, tools) and `async run(io, state)`. Everything a job says goes through one channel
to the driver, in order: its events (`io.emit`), its questions (`await io.ask(op, args)`:
shared memory, the tool budget, the journal barrier) and its result. The driver drives the
channel with a long poll, `poll(replies)`: it returns all that the host's jobs produced since
the last poll and carries the answers to the questions of the previous batch. So events
from hundreds of jobs share one Ray call, a busy host's batches grow by themselves, and an
idle one costs nothing (the poll waits).

This module imports no Ray at import time (the actor class is decorated by the pool).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import socket
from collections.abc import Callable
from typing import Any, Protocol

EV, REQ, DONE = 0, 1, 2  # the kinds of item a poll returns: (kind, job key, payload)


class Kit(Protocol):
    def build(self) -> Any:
        """What the kit's jobs share on one host (built there once, on first use)."""


class Job(Protocol):
    kit: str | None

    async def run(self, io: JobIO, state: Any) -> Any:
        """Run to the end; the return value is the job's result (picklable)."""


class JobIO:
    """A job's end of the channel."""

    __slots__ = ("key", "_host", "on_cancel")

    def __init__(self, key: str, host: HostCore):
        self.key = key
        self._host = host
        self.on_cancel: Callable[[str | None], None] | None = None

    def emit(self, ev: Any) -> None:
        self._host._put((EV, self.key, ev))

    async def ask(self, op: str, args: Any = None) -> Any:
        """A question to the driver, answered in order after everything emitted before it."""
        h = self._host
        rid = next(h._rids)
        fut = asyncio.get_running_loop().create_future()
        h._waiting[rid] = fut
        h._put((REQ, self.key, (rid, op, args)))
        try:
            return await fut
        finally:
            h._waiting.pop(rid, None)


class Host:
    """The actor (decorated with `ray.remote` by `pool.HostPool`): four entry points over a
    `HostCore`. Ray wraps every method of an actor class (for tracing) and the wrapper costs
    microseconds per call, so nothing called per event lives here."""

    def __init__(self, label: str = "ponder"):
        self._core = HostCore(label)

    async def start(self, kits: dict[str, Kit], jobs: list[tuple[str, Job]]) -> int:
        return await self._core.start(kits, jobs)

    async def poll(self, replies: list[tuple[int, Any]]) -> bytes | list[tuple[int, str, Any]]:
        return await self._core.poll(replies)

    async def cancel(self, keys: list[str], reason: str | None = None) -> None:
        self._core.cancel(keys, reason)

    def where(self) -> dict[str, Any]:
        return self._core.where()


class HostCore:
    """What a host does (see the module docstring)."""

    def __init__(self, label: str = "ponder"):
        self.label = label
        self._out: list[tuple[int, str, Any]] = []
        self._wake: asyncio.Event | None = None
        self._jobs: dict[str, tuple[asyncio.Task[None], JobIO]] = {}
        self._kits: dict[str, asyncio.Future[Any]] = {}
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._rids = itertools.count()

    def _put(self, item: tuple[int, str, Any]) -> None:
        self._out.append(item)
        w = self._wake
        if w is not None and not w.is_set():
            w.set()

    def _kit_future(self, kit_id: str) -> asyncio.Future[Any]:
        fut = self._kits.get(kit_id)
        if fut is None:
            fut = self._kits[kit_id] = asyncio.get_running_loop().create_future()
        return fut

    async def start(self, kits: dict[str, Kit], jobs: list[tuple[str, Job]]) -> int:
        """Install kits not seen yet, then start jobs (each a task on this host's loop)."""
        for kit_id, kit in kits.items():
            fut = self._kit_future(kit_id)
            if not fut.done():
                try:
                    fut.set_result(kit.build())
                except Exception as e:  # noqa: BLE001 - every job that needs it reports it
                    fut.set_exception(e)
        loop = asyncio.get_running_loop()
        for key, job in jobs:
            io = JobIO(key, self)
            self._jobs[key] = (loop.create_task(self._run(io, job), name=f"host-{key}"), io)
        return len(self._jobs)

    async def _run(self, io: JobIO, job: Job) -> None:
        try:
            state = await self._kit_future(job.kit) if job.kit is not None else None
            result = await job.run(io, state)
            self._put((DONE, io.key, ("ok", result)))
        except asyncio.CancelledError:
            self._put((DONE, io.key, ("cancelled", None)))
        except Exception as e:  # noqa: BLE001 - the driver records it; the host goes on
            self._put((DONE, io.key, ("raised", f"{type(e).__name__}: {e}")))
        finally:
            self._jobs.pop(io.key, None)

    async def poll(self, replies: list[tuple[int, Any]]) -> bytes | list[tuple[int, str, Any]]:
        """Answer the previous batch's questions, then return what the jobs produced since
        (waiting until there is something), pickled here: the standard pickler in C costs
        half what Ray's (cloudpickle, a Python hook per object) does on thousands of events;
        a batch it cannot pickle goes to Ray as it is."""
        for rid, value in replies:
            fut = self._waiting.get(rid)
            if fut is not None and not fut.done():
                fut.set_result(value)
        if not self._out:
            if self._wake is None:
                self._wake = asyncio.Event()
            self._wake.clear()
            await self._wake.wait()
        out, self._out = self._out, []
        try:
            return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - e.g. a result holding a local class: Ray's pickler takes it
            return out

    def cancel(self, keys: list[str], reason: str | None = None) -> None:
        for key in keys:
            entry = self._jobs.get(key)
            if entry is not None:
                task, io = entry
                if io.on_cancel is not None:
                    io.on_cancel(reason)
                task.cancel()

    def where(self) -> dict[str, Any]:
        """This host's process and node (for placement reports and tests)."""
        node = None
        try:
            import ray

            node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside Ray (unit tests of the host itself)
            pass
        return {"pid": os.getpid(), "node": node, "hostname": socket.gethostname()}
