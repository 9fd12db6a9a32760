"""Where a swarm's sub-agents run: this process, or a Ray cluster.

An executor is the one thing the scheduler calls per sub-agent task (`run_task(run,
task)`); everything else (the task DAG, the shared memory, the budgets, the journal) stays
with the driver whatever the executor. `SwarmConfig.executor` chooses:

* `"local"` (`LocalExecutor`): each sub-agent is a task on this process's event loop
  (`workers.run_task`);
* `"ray"` (`ray_executor.RayExecutor`): sub-agents run in Ray async actors spread over a
  cluster, their events streamed back into the run's one stream.

Ray is imported only when a swarm asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .workers import run_task

if TYPE_CHECKING:
    from .engine import Swarm
    from .scheduler import Task
    from .state import SwarmRun


class Executor(Protocol):
    kind: str

    async def prepare(self) -> None:
        """Called as a run starts: fail now (with the fix) if sub-agents cannot run, and get
        ready in the background while the orchestrator plans."""

    async def run_task(self, run: SwarmRun, task: Task) -> None:
        """Run one sub-agent task to its end; its events go into `run.emit`, its outcome
        onto `task.rec` (status, answer, steps, error)."""

    def report(self) -> dict[str, Any] | None:
        """What the run's metrics say about where the sub-agents ran (None: nothing)."""

    async def aclose(self) -> None:
        """Release what the executor holds (actors, connections)."""


class LocalExecutor:
    """Sub-agents as tasks on the driver's event loop (the default)."""

    kind = "local"

    async def prepare(self) -> None:
        return None

    async def run_task(self, run: SwarmRun, task: Task) -> None:
        await run_task(run, task)

    def report(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        return None


def make_executor(swarm: Swarm) -> Executor:
    if swarm.config.executor == "ray":
        from .ray_executor import RayExecutor  # imports ray when it runs

        return RayExecutor(swarm)
    return LocalExecutor()
