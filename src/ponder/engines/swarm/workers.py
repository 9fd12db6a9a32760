"""Sub-agents: ordinary agents (the shared loop), each with its own context, run as tasks.

A sub-agent is an `Interleaved` agent made on demand from instructions the orchestrator
wrote (or by a custom `agent_factory`), driven in the scheduler's task for it with
`run_turn` into the run's one event stream: no queue and no extra task per agent. On
resume it continues from its own journaled conversation (its lane).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...core.events import Event, ModelCallFinished, StepStarted
from ...models.base import ChatModel
from ...tools.base import Tool
from ..base import Budgets, check_answer
from . import prompts
from .scheduler import Task

if TYPE_CHECKING:
    from ..replay import LaneReplay
    from .config import SwarmConfig
    from .state import SwarmRun

AgentFactory = Callable[..., Any]


def interleaved_factory(model: ChatModel, tools: Sequence[Tool], *, budgets: Budgets, system_prompt: str,
                        agent_id: str, thinking: str, **options: Any) -> Any:
    """The default sub-agent: an Interleaved agent with its own context. `options` carries
    the swarm's `preserve_reasoning`, `verify_code`, `self_check` and `first_tool_choice`."""
    from ..interleaved import Interleaved

    return Interleaved(model, tools, thinking=thinking, budgets=budgets,  # type: ignore[arg-type]
                       system_prompt=system_prompt, agent_id=agent_id, **options)


class _Counted:
    """A model proxy that counts one agent's calls (its current step, for memory provenance)
    without wrapping the event stream: `stream` hands back the inner generator untouched."""

    __slots__ = ("inner", "calls")

    def __init__(self, inner: ChatModel, calls: int = 0):
        self.inner = inner
        self.calls = calls

    def stream(self, request: Any, *, agent: str = "main") -> Any:
        self.calls += 1
        return self.inner.stream(request, agent=agent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def prepare(run: SwarmRun, task: Task) -> tuple[str, str, LaneReplay | None]:
    """A sub-agent's system prompt, its task text and (resumed) its journaled lane; the
    inputs are recorded for the trajectory export. Shared by every executor."""
    rec, a = task.rec, task.spec
    suffix = prompts.SUBAGENT_SUFFIX_SHARED if run.swarm.guided else prompts.SUBAGENT_SUFFIX.format(name=a.name)
    system = a.instructions + suffix
    lane = run.ctx.replay.lanes.get(rec.agent_id) if run.ctx.replay is not None else None
    users = [m.content or "" for m in lane.messages if m.role == "user"] if lane is not None else []
    text = users[0] if users else run.task_text(task)  # resumed: the very text it was given
    run.inputs[rec.agent_id] = {"system": system, "user": text}
    return system, text, lane


def make_agent(factory: AgentFactory, cfg: SwarmConfig, model: Any, tools: Sequence[Tool], system: str,
               agent_id: str) -> Any:
    """One sub-agent, the same wherever it runs (this process or a cluster host)."""
    return factory(model, tools, budgets=cfg.sub_budgets, system_prompt=system, agent_id=agent_id,
                   thinking=cfg.thinking, preserve_reasoning=cfg.preserve_reasoning, verify_code=cfg.verify_code,
                   self_check=cfg.self_check, first_tool_choice=cfg.first_tool_choice)


async def run_task(run: SwarmRun, task: Task) -> None:
    """Run one sub-agent task to its end, recording the outcome on the task's record."""
    rec = task.rec
    cfg = run.cfg
    system, text, lane = prepare(run, task)
    model = _Counted(run.swarm.sub_model, lane.steps if lane is not None else 0)
    tools = run.tools_for(task, lambda: model.calls)
    agent = make_agent(run.swarm.agent_factory, cfg, model, tools, system, rec.agent_id)
    emit = run.emit

    def sink(ev: Event) -> None:
        tp = type(ev)
        if tp is StepStarted:
            rec.steps += 1
        elif tp is ModelCallFinished:
            u = ev.usage  # type: ignore[attr-defined]
            rec.tokens += u.prompt_tokens + u.completion_tokens
        emit(ev)

    try:
        async with asyncio.timeout(cfg.sub_timeout_s):
            # no cancel event (a watcher task per agent): the end of the run cancels every
            # sub-agent's task itself (`scheduler.cancel_all`)
            outcome = await agent.run_turn(text, run.ctx, emit=sink, main=False)
    except TimeoutError:
        rec.status = "error"
        rec.error = f"sub-agent timed out after {cfg.sub_timeout_s:g}s"
        return
    outcome = check_answer(outcome)  # "done" or nothing is not a sub-agent's result
    turn = getattr(agent, "turn", None)
    record_outcome(rec, outcome.status, outcome.answer, outcome.reason, turn.steps if turn is not None else None)


def record_outcome(rec: Any, status: str, answer: str | None, reason: str | None, steps: int | None) -> None:
    if steps is not None:
        rec.steps = steps
    rec.answer = answer
    rec.status = status
    if status != "ok":
        rec.error = reason or status
