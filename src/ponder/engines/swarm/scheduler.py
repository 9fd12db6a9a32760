"""The swarm's scheduler: a DAG of sub-agent tasks run on asyncio under a concurrency cap.

Deliberately thin (one coroutine and one `asyncio.Event` per task, one semaphore for
the cap, one broadcast event for "something finished") because the engine must cost
little more client CPU than a bare `asyncio.gather` of the same calls. Results are
delivered as each task finishes, never at a barrier, and a failing task never takes
the swarm down: it becomes an error result like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .metrics import TaskRecord

TERMINAL = ("ok", "error", "cancelled", "budget")


class DependencyError(ValueError):
    """A task list that cannot run: unknown dependencies or a cycle."""


@dataclass(slots=True)
class Task:
    rec: TaskRecord
    text: str
    spec: Any  # the agent definition (engine-specific)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    handle: asyncio.Task[None] | None = None


RunFn = Callable[[Task], Awaitable[None]]


def check_dag(new: dict[str, list[str]], existing: Iterable[str]) -> list[str]:
    """The ids of `new` (id → deps) in an order that submits dependencies first; raises
    DependencyError naming unknown dependencies or a cycle."""
    known = set(existing) | set(new)
    unknown = sorted({d for deps in new.values() for d in deps if d not in known})
    if unknown:
        raise DependencyError(
            f"unknown dependencies {unknown}: depend only on task ids already assigned "
            f"({', '.join(sorted(existing)) or 'none yet'}) or on subtasks of the same plan ({', '.join(new)})."
        )
    for tid, deps in new.items():
        if tid in deps:
            raise DependencyError(f"task {tid!r} depends on itself; remove it from its own depends_on.")
    # Kahn's algorithm restricted to the new tasks (existing ones are already acyclic)
    indeg = {t: sum(1 for d in deps if d in new) for t, deps in new.items()}
    users: dict[str, list[str]] = {t: [] for t in new}
    for t, deps in new.items():
        for d in deps:
            if d in new:
                users[d].append(t)
    ready = [t for t, n in indeg.items() if n == 0][::-1]
    order: list[str] = []
    while ready:
        t = ready.pop()
        order.append(t)
        for u in users[t]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) < len(new):
        cyc = _find_cycle({t: [d for d in deps if d in new] for t, deps in new.items() if indeg[t] > 0})
        raise DependencyError(f"dependency cycle {' -> '.join(cyc)}: a task cannot (indirectly) wait for itself; "
                              "break the cycle by removing one depends_on entry.")
    return order


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def dfs(n: str) -> list[str] | None:
        path.append(n)
        on_path.add(n)
        for d in graph.get(n, ()):
            if d in on_path:
                return path[path.index(d):] + [d]
            if d not in done and d in graph:
                found = dfs(d)
                if found:
                    return found
        on_path.discard(n)
        done.add(n)
        path.pop()
        return None

    for start in graph:
        if start not in done:
            found = dfs(start)
            if found:
                return found
    return list(graph)


async def _detached(_task: Task) -> None:
    raise RuntimeError("this scheduler's run is over; start a new run")


class Scheduler:
    """Runs tasks as soon as their dependencies are done and a slot is free."""

    def __init__(self, run: RunFn, *, max_parallel: int = 100, on_finished: Callable[[Task], None] | None = None):
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._run = run
        self._sem = asyncio.Semaphore(max_parallel)
        self._on_finished = on_finished
        self.max_parallel = max_parallel
        self.tasks: dict[str, Task] = {}
        self.running = 0
        self.peak = 0
        self._changed = asyncio.Event()
        self.seq = 0  # the last task number handed out

    def new_id(self) -> str:
        self.seq += 1
        return f"t{self.seq}"

    def restore(self, task: Task) -> Task:
        """Add a task that finished in an earlier attempt (resume): done, never run again."""
        self.tasks[task.rec.task_id] = task
        task.done.set()
        return task

    def submit(self, task: Task) -> Task:
        tid = task.rec.task_id
        if tid in self.tasks:
            raise DependencyError(f"task id {tid!r} already exists")
        missing = [d for d in task.rec.depends_on if d not in self.tasks]
        if missing:
            raise DependencyError(f"unknown dependencies {missing}; submit dependencies first")
        self.tasks[tid] = task
        task.handle = asyncio.get_running_loop().create_task(self._drive(task), name=f"swarm-{tid}")
        return task

    async def _drive(self, task: Task) -> None:
        rec = task.rec
        try:
            for d in rec.depends_on:
                await self.tasks[d].done.wait()
            async with self._sem:
                rec.status = "running"
                rec.started = time.time()
                self.running += 1
                if self.running > self.peak:
                    self.peak = self.running
                try:
                    await self._run(task)
                    if rec.status == "running":
                        rec.status = "ok"
                finally:
                    self.running -= 1
                    rec.ended = time.time()
        except asyncio.CancelledError:
            rec.status = "cancelled"
            rec.error = rec.error or "cancelled"
            self._finish(task)
            raise
        except Exception as e:  # noqa: BLE001 - isolate the failure; the swarm goes on
            rec.status = "error"
            rec.error = f"{type(e).__name__}: {e}"
        self._finish(task)

    def _finish(self, task: Task) -> None:
        if task.done.is_set():
            return
        task.done.set()
        if self._on_finished is not None:
            self._on_finished(task)
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    def pending(self) -> list[str]:
        return [t for t, x in self.tasks.items() if not x.done.is_set()]

    def undelivered(self) -> list[str]:
        return [t for t, x in self.tasks.items() if x.rec.delivered_at is None]

    async def wait(self, ids: list[str] | None, mode: Literal["all", "any"] = "all", *,
                   timeout_s: float | None = None) -> list[Task]:
        """Finished, not-yet-delivered tasks among `ids` (default: all undelivered), in finish order.

        mode="any" returns as soon as at least one is finished; "all" once every one is.
        Never returns the same result twice: the caller marks them delivered.
        """
        unknown = [i for i in (ids or []) if i not in self.tasks]
        if unknown:
            raise DependencyError(f"unknown task ids {unknown}; known: {', '.join(self.tasks) or 'none'}")
        want = [self.tasks[i] for i in (ids or self.undelivered())]
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        while True:
            done = [t for t in want if t.done.is_set()]
            if len(done) == len(want) or (mode == "any" and done):
                break
            changed = self._changed
            if deadline is None:
                await changed.wait()
            else:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(changed.wait(), left)
                except TimeoutError:
                    break
        done = [t for t in want if t.done.is_set() and t.rec.delivered_at is None]
        done.sort(key=lambda t: t.rec.ended or 0.0)
        return done

    def detach(self) -> None:
        """Drop the callbacks into the owner once its run is over (they point back at it, a
        reference cycle); submitting afterwards is an error."""
        self._run = _detached
        self._on_finished = None

    async def cancel_all(self) -> None:
        handles = [t.handle for t in self.tasks.values() if t.handle is not None and not t.handle.done()]
        for h in handles:
            h.cancel()
        if handles:
            await asyncio.gather(*handles, return_exceptions=True)
