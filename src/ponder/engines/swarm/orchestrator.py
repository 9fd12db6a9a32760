"""The orchestrator: a model-driven agent whose tools create, run and await sub-agents.

Nothing about the workflow is predefined: the model writes each sub-agent's
instructions, picks its tools from those the swarm was given, and decides what depends
on what. For small constrained-decoding models (the embedded backend) a *guided* mode
offers one tool per step (plan -> wait -> finish), each generated under its JSON
schema, so a 135M model still produces a valid plan.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...core.events import BudgetHit, ErrorEvent, ModelCallFinished, StepFinished, StepStarted, ToolResult
from ...core.messages import Message
from ...models.base import ChatRequest
from ...tools.base import Tool, Toolbox, ToolFailure, result_message
from . import prompts
from .scheduler import DependencyError

if TYPE_CHECKING:
    from .engine import SwarmRun

ORCH = "orchestrator"

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def orchestrator_tools(run: SwarmRun) -> Toolbox:
    """The orchestrator's tools, bound to one run."""
    sw = run.swarm
    worker_tools = sw.toolbox.names() + ["memory_read", "memory_write"]
    tools_schema = {"type": "array", "items": {"type": "string", "enum": worker_tools}}

    async def create_subagent(name: str, instructions: str = "", tools: list[str] | None = None) -> str:
        a = run.define_agent(name, instructions, tools or [])
        return f"created sub-agent {a.name!r} with tools {a.tools or '(none)'}; give it work with assign_task."

    async def assign_task(agent: str, task: str, depends_on: list[str] | None = None) -> str:
        try:
            t = run.assign(agent, task, list(depends_on or []))
        except DependencyError as e:
            raise ToolFailure(f"ERROR: {e}") from None
        dep = f" after {t.rec.depends_on}" if t.rec.depends_on else ""
        return f"task {t.rec.task_id} assigned to {agent!r}{dep}; it runs in the background (wait to collect it)."

    async def plan(subtasks: list[dict[str, Any]]) -> str:
        try:
            made = run.plan(subtasks)
        except DependencyError as e:
            raise ToolFailure(f"ERROR: {e}") from None
        lines = [f"- {t.rec.task_id}: {t.spec.name}" + (f" (after {t.rec.depends_on})" if t.rec.depends_on else "")
                 for t in made]
        return f"started {len(made)} sub-agents:\n" + "\n".join(lines) + "\nCall wait to collect their results."

    async def wait(task_ids: list[str] | None = None, mode: str = "all") -> str:
        if mode not in ("all", "any"):
            raise ToolFailure(f"ERROR: mode must be 'all' or 'any', not {mode!r}")
        if not run.scheduler.tasks:
            raise ToolFailure("ERROR: no tasks have been assigned yet; use plan or assign_task first.")
        try:
            done = await run.scheduler.wait(list(task_ids or []), mode)  # type: ignore[arg-type]
        except DependencyError as e:
            raise ToolFailure(f"ERROR: {e}") from None
        return run.deliver(done)

    async def memory_write(key: str, value: str) -> str:
        e = run.memory.write(key, str(value), agent=ORCH, step=run.orch_step)
        return f"stored {e.key!r} (version {e.version})"

    async def memory_read(key: str = "", query: str = "") -> str:
        return run.memory.read(key=key or "", query=query or "")

    async def finish(answer: str) -> str:
        if not str(answer or "").strip():
            raise ToolFailure("ERROR: finish needs a non-empty answer; write it, citing sub-agents as [agent-name].")
        pending = run.scheduler.pending()
        if pending and not run.finish_warned and not run.soft_budget:
            run.finish_warned = True
            raise ToolFailure(prompts.FINISH_PENDING.format(n=len(pending), ids=", ".join(pending[:20])))
        run.answer = answer
        run.finished = True
        return "ok"

    subtask = {
        "type": "object",
        "properties": {
            "name": {**_STR, "description": "short unique agent name, e.g. 'prices-2024'"},
            "instructions": {**_STR, "description": "the sub-agent's role and how to work"},
            "task": {**_STR, "description": "what this sub-agent must produce"},
            "tools": tools_schema,
            "depends_on": {**_STR_LIST, "description": "names of subtasks (or task ids) whose results it needs"},
        },
        "required": ["name", "task"],
    }
    never = 10 ** 9  # orchestration tools wait on sub-agents; the swarm's own budgets bound them
    return Toolbox([
        Tool("plan", "Create and start several sub-agents at once, one per subtask.",
             {"type": "object", "properties": {"subtasks": {"type": "array", "items": subtask,
                                                            "minItems": sw.min_subtasks, "maxItems": sw.max_agents}},
              "required": ["subtasks"]}, plan, timeout_s=never),
        Tool("create_subagent", "Define a sub-agent: its name, instructions and the tools it may use.",
             {"type": "object", "properties": {"name": _STR, "instructions": _STR, "tools": tools_schema},
              "required": ["name", "instructions"]}, create_subagent, timeout_s=never),
        Tool("assign_task", "Start a task on a sub-agent in the background; returns its task id.",
             {"type": "object", "properties": {"agent": _STR, "task": _STR, "depends_on": _STR_LIST},
              "required": ["agent", "task"]}, assign_task, timeout_s=never),
        Tool("wait", "Wait for tasks and get their results as they finish (mode 'all' or 'any').",
             {"type": "object", "properties": {"task_ids": _STR_LIST, "mode": {"type": "string", "enum": ["all", "any"]}},
              "required": []}, wait, timeout_s=never, max_output_chars=sw.wait_chars),
        Tool("memory_write", "Write a value to shared memory under a key.",
             {"type": "object", "properties": {"key": _STR, "value": _STR}, "required": ["key", "value"]},
             memory_write, timeout_s=never),
        Tool("memory_read", "Read shared memory: one key, or entries matching a query.",
             {"type": "object", "properties": {"key": _STR, "query": _STR}, "required": []}, memory_read,
             timeout_s=never),
        Tool("finish", "Give the final answer, citing sub-agents as [agent-name].",
             {"type": "object", "properties": {"answer": _STR}, "required": ["answer"]}, finish, timeout_s=never),
    ])


def _forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def _step_tools(run: SwarmRun, box: Toolbox, last: bool) -> tuple[list[dict[str, Any]], Any]:
    """Which tools the next orchestrator call sees, and the tool_choice."""
    if last or run.soft_budget:
        return [box.get("finish").schema()], (_forced("finish") if run.swarm.guided_for(run) else None)  # type: ignore[union-attr]
    if run.swarm.guided_for(run):
        if not run.scheduler.tasks:
            name = "plan"
        elif run.scheduler.undelivered():
            name = "wait"
        else:
            name = "finish"
        return [box.get(name).schema()], _forced(name)  # type: ignore[union-attr]
    return box.schemas(), None


async def orchestrate(run: SwarmRun) -> tuple[str, str | None, str | None]:
    """The orchestrator loop. Returns (status, answer, reason); events go through run.emit."""
    sw = run.swarm
    box = orchestrator_tools(run)
    tool_list = ", ".join(f"{t.name} ({t.description.splitlines()[0][:80]})" for t in sw.toolbox) or "(none)"
    system = sw.system_prompt or prompts.ORCHESTRATOR_SYSTEM.format(
        tool_list=tool_list + "; memory_read, memory_write", max_parallel=sw.max_parallel,
        max_steps=sw.budgets.max_steps, sub_steps=sw.sub_budgets.max_steps)
    msgs = run.orch_messages
    msgs += [Message.system(system), Message.user(run.task)]
    errors = 0
    max_steps = sw.budgets.max_steps
    for step in range(1, max_steps + 1):
        if run.stopped is not None:  # cancellation can be swallowed by wait_for (3.11): check too
            return run.stopped
        run.orch_step = step
        run.emit(StepStarted(step=step, agent=ORCH))
        last = step == max_steps
        schemas, choice = _step_tools(run, box, last)
        extra = [Message.user(prompts.LAST_STEP)] if last else []
        if run.soft_budget and not last:
            extra = [Message.user(prompts.SOFT_BUDGET.format(budget=run.soft_budget))]
        req = ChatRequest(messages=msgs + extra, tools=schemas, tool_choice=choice, thinking=sw.orch_thinking,
                          max_tokens=sw.orch_max_tokens)
        final: ModelCallFinished | None = None
        err: ErrorEvent | None = None
        async for ev in sw.model.stream(req, agent=ORCH):
            run.emit(ev)
            if isinstance(ev, ModelCallFinished):
                final = ev
            elif isinstance(ev, ErrorEvent):
                err = ev
        if final is None:
            errors += 1
            reason = f"orchestrator model error: {err.message if err else 'no result'}"
            run.emit(StepFinished(step=step, tool_calls=0, had_reasoning=False, note=reason, agent=ORCH))
            if errors >= 2:
                return "error", None, reason
            await asyncio.sleep(0)
            continue
        errors = 0
        msg = final.message
        msgs.append(msg)
        had = bool(msg.reasoning and msg.reasoning.text.strip())
        if msg.reasoning and msg.reasoning.text:
            run.orch_reasoning.append(msg.reasoning.text)
        if not msg.tool_calls:
            run.emit(StepFinished(step=step, tool_calls=0, had_reasoning=had, agent=ORCH))
            if msg.content and msg.content.strip():
                return "ok", msg.content, None
            msgs.append(Message.user(prompts.NO_ACTION))
            continue
        allowed = {s["function"]["name"] for s in schemas}
        for call in msg.tool_calls:
            if run.finished or call.name not in allowed:
                text = ("not run: the run finished" if run.finished else
                        f"ERROR: tool {call.name!r} is not available at this step; use one of {sorted(allowed)}")
                msgs.append(Message.tool(call.id, text, call.name))
                continue
            async for ev in box.execute(call, agent=ORCH):
                run.emit(ev)
                if isinstance(ev, ToolResult):
                    msgs.append(result_message(ev))
            if run.stopped is not None:
                return run.stopped
        run.emit(StepFinished(step=step, tool_calls=len(msg.tool_calls), had_reasoning=had, agent=ORCH))
        if run.finished:
            if run.soft_budget:
                return "budget", run.answer, f"swarm {run.soft_budget} budget reached"
            return "ok", run.answer, None
    run.budget_hits.append("max_steps")
    run.emit(BudgetHit(budget="max_steps", limit=float(max_steps), value=float(max_steps), agent=ORCH))
    return "budget", None, f"orchestrator step budget reached ({max_steps} steps)"
