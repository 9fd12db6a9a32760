"""The Swarm engine: an orchestrator model fanning work out to parallel sub-agents.

Kimi K2.5's Agent Swarm (reference kimi-k2.5.md §2) over any ponder model. The package is
split by role, with imports pointing one way (config <- state <- workers, orchestrator <- engine):

* `config.py` — `SwarmConfig`, the run's options as one frozen object;
* `state.py` — `SwarmRun`, one run's shared state (agents, the task DAG, shared memory,
  swarm-wide tool budget) and its rebuild from a journal;
* `workers.py` — sub-agents: ordinary `Interleaved` agents run as scheduler tasks;
* `orchestrator.py` — the orchestrator: the shared agent loop with the swarm's step hooks,
  and its tools (plan, create_subagent, assign_task, wait, memory, finish);
* `scheduler.py`, `memory.py`, `metrics.py`, `trajectories.py` — as named.

This module is the engine contract around them. Events from all agents go into the run's
one stream (each carries its agent id); sub-agents end with `AgentFinished`, so the stream
ends with exactly one `RunFinished`, the swarm's, whose metrics carry critical steps,
parallelism, the serial-collapse and spurious-parallelism flags, and the PARL rewards.
The run-wide token and cost limits stop the whole tree at once (`hard_spend_limits`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from ...core.messages import Message
from ...core.metrics import RunMetrics
from ...models.base import ChatModel
from ...tools.base import Tool, Toolbox
from ..base import Outcome
from ..loop import elicitation
from ..runtime import RunContext, Runnable
from . import metrics as M
from . import prompts
from .config import ORCH, SwarmConfig
from .executors import Executor, make_executor
from .orchestrator import Orchestrator, orchestrator_tools
from .state import SwarmRun
from .workers import AgentFactory, interleaved_factory

ScoreFn = Callable[[str | None], float | Awaitable[float]]

__all__ = ["ORCH", "Swarm", "SwarmConfig", "interleaved_factory"]


class Swarm(Runnable):
    """Orchestrated parallel sub-agents. `await Swarm(model, tools).run(task)` or `async for ev in .stream(task)`.

    Options are `SwarmConfig`'s fields, given as keywords or as `config=`."""

    mode: ClassVar[str] = "swarm"
    checks_answer: ClassVar[bool] = True  # a placeholder answer ("all tasks are done") is not `ok`
    hard_spend_limits: ClassVar[bool] = True

    def __init__(
        self,
        model: ChatModel,
        tools: Sequence[Tool | Callable[..., Any]] | Toolbox = (),
        *,
        sub_model: ChatModel | None = None,
        config: SwarmConfig | None = None,
        agent_factory: AgentFactory | None = None,
        **options: Any,
    ):
        unknown = sorted(set(options) - set(SwarmConfig.names()))
        if unknown:
            raise TypeError(f"unknown Swarm option(s) {unknown}; the options are SwarmConfig's: {SwarmConfig.names()}")
        self.config = dataclasses.replace(config, **options) if config is not None else SwarmConfig(**options)
        self.model = model
        self.sub_model = sub_model or model
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        reserved = {"memory_read", "memory_write"} & set(self.toolbox.names())
        if reserved:
            raise ValueError(f"tool names {sorted(reserved)} are reserved for the swarm's shared memory; rename yours")
        self.agent_factory = agent_factory or interleaved_factory
        self.settings: dict[str, Any] | None = None  # set by build_engine: what rebuilds this engine
        self._orch: Orchestrator | None = None
        self.executor: Executor = make_executor(self)  # where sub-agents run (config.executor)

    @property
    def budgets(self):  # type: ignore[no-untyped-def]
        return self.config.budgets

    @property
    def main_agent(self) -> str:
        return ORCH

    @property
    def guided(self) -> bool:
        """One forced tool per orchestrator step: by default for models that are driven by
        constrained decoding rather than by their own reasoning (the embedded 135M model)."""
        if self.config.guided is not None:
            return self.config.guided
        return elicitation(self.model) == "schema"

    def describe(self) -> dict[str, Any]:
        if self.settings is not None:
            return self.settings
        return {"mode": self.mode, "model": self.model.name, "sub_model": self.sub_model.name,
                "tools": self.toolbox.names(), **self.config.describe()}

    def check_options(self, options: dict[str, Any]) -> None:
        unknown = set(options) - {"score_fn"}
        if unknown:
            raise TypeError(f"unknown run option(s) {sorted(unknown)} for a swarm; it takes score_fn")

    # ---- the engine contract ----------------------------------------------------------------
    async def drive(self, task: str, ctx: RunContext) -> Outcome:
        await self.executor.prepare()  # e.g. join the Ray cluster: a wrong address ends the run here
        run = SwarmRun(self, task, ctx, self.executor.run_task)
        ctx.state = run
        cfg = self.config
        tool_list = ", ".join(f"{t.name} ({t.description.splitlines()[0][:80]})" for t in self.toolbox) or "(none)"
        system = cfg.system_prompt or prompts.ORCHESTRATOR_SYSTEM.format(
            tool_list=tool_list + "; memory_read, memory_write", max_parallel=cfg.max_parallel,
            max_steps=cfg.budgets.max_steps, sub_steps=cfg.sub_budgets.max_steps)
        orch = self._orch = Orchestrator(self.model, orchestrator_tools(run), run, system_prompt=system,
                                         guided=self.guided)
        try:
            if ctx.replay is not None:
                run.restore(ctx.replay.events)
                if run.finished:  # `finish` had reached the journal: the answer is in hand
                    return Outcome("budget" if run.soft_budget else "ok", run.answer,
                                   f"swarm {run.soft_budget} budget reached" if run.soft_budget else None)
            return await orch.run_turn(task, ctx, main=False)
        finally:  # however it ended (an answer, a stop, a cancel): no sub-agent outlives the run
            await run.scheduler.cancel_all()

    async def conclude(self, ctx: RunContext, outcome: Outcome) -> tuple[Outcome, RunMetrics]:
        run: SwarmRun | None = ctx.state
        if run is None:
            return outcome, ctx.base_metrics()
        try:
            status, answer, reason = outcome.status, outcome.answer, outcome.reason
            if run.soft_budget and status == "ok":
                status, reason = "budget", f"swarm {run.soft_budget} budget reached"
            if status == "budget" and reason and "step budget" in reason and "max_steps" not in run.budget_hits:
                run.budget_hits.append("max_steps")
            elif status == "budget" and ctx.stop_reason:
                run.budget_hits.append(ctx.stop_reason.split(" budget")[0])
            if not answer and status != "ok":
                answer = run.fallback_answer(reason)
            score = None
            score_fn: ScoreFn | None = ctx.options.get("score_fn")
            if score_fn is not None:
                s = score_fn(answer)
                score = float(await s) if inspect.isawaitable(s) else float(s)
            orch_steps = self._orch.turn.steps if self._orch is not None and self._orch.turn is not None else run.orch_step
            recs = [t.rec for t in run.scheduler.tasks.values()]
            stats = M.compute(orch_steps, recs, score=score, lambdas=self.config.reward_lambdas)
            cites = M.citations(answer, [r.name for r in recs] + [r.agent_id for r in recs])
            metrics = ctx.base_metrics(
                steps=stats.total_steps, critical_steps=stats.critical_steps, agents=len(recs),
                orchestrator_steps=orch_steps, peak_concurrency=stats.peak_concurrency,
                parallelism=stats.parallelism, serial_collapse=stats.serial_collapse,
                spurious_agents=len(stats.spurious_tasks), rewards=stats.rewards,
                extra={
                    "orchestrator_steps": orch_steps,
                    "peak_concurrency": stats.peak_concurrency,
                    "max_parallel": self.config.max_parallel,
                    "spurious_tasks": stats.spurious_tasks,
                    "citations": cites,
                    "budget_hits": run.budget_hits,
                    "stages": M.stage_breakdown(orch_steps, recs),
                    "tasks": [{"task_id": r.task_id, "agent_id": r.agent_id, "name": r.name, "status": r.status,
                               "steps": r.steps, "tokens": r.tokens, "depends_on": r.depends_on,
                               "launched_at": r.launched_at, "delivered_at": r.delivered_at, "error": r.error}
                              for r in recs],
                    "agent_inputs": run.inputs,
                    "model": self.model.name, "sub_model": self.sub_model.name,
                },
            )
            where = self.executor.report()
            if where is not None:
                metrics.extra["executor"] = where
            return Outcome(status, answer, reason), metrics
        finally:
            run.release()
            ctx.state = None

    def history(self) -> list[Message]:
        return list(self._orch.messages) if self._orch is not None else []

    async def aclose(self) -> None:
        """Release the executor's resources (a Ray executor's actors); the models stay open."""
        await self.executor.aclose()
