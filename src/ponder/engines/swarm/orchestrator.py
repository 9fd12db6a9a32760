"""The orchestrator: the shared agent loop, specialised by its step hooks, whose tools
create, run and await sub-agents.

Nothing about the workflow is predefined: the model writes each sub-agent's
instructions, picks its tools from those the swarm was given, and decides what depends
on what. For small constrained-decoding models (the embedded backend) a *guided* mode
offers one tool per step (plan -> wait -> finish), each generated under its JSON
schema, so a 135M model still produces a valid plan.

What differs from the Interleaved defaults, all as hooks of `AgentLoop`: the tools offered
per step (guided mode, the last step and an exhausted tool budget offer only `finish`),
one tolerated model error, tools run one after another (a plan before its wait), a reply
without a tool call and without text gets a nudge instead of ending the run, and
`finish` ends the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ...core.events import ToolResult
from ...core.messages import Message, ToolCall
from ...models.base import ChatModel
from ...tools.base import Tool, Toolbox, ToolFailure
from ..base import Budgets, Outcome
from ..loop import AgentLoop, StepPlan, Turn
from . import prompts
from .config import ORCH
from .scheduler import DependencyError

if TYPE_CHECKING:
    from .state import SwarmRun

__all__ = ["ORCH", "Orchestrator", "orchestrator_tools", "task_pieces"]

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": {"type": "string"}}


def orchestrator_tools(run: SwarmRun) -> Toolbox:
    """The orchestrator's tools, bound to one run."""
    sw, cfg = run.swarm, run.cfg
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

    async def finish(answer: str | list[str]) -> str:
        if isinstance(answer, list):  # guided mode: the results the model listed, one per line, each once
            answer = "\n".join(dict.fromkeys(str(x) for x in answer))
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
    max_items = cfg.max_agents
    if sw.guided:
        # a constrained 135M model fills the first field with the content and the rest with
        # filler: in guided mode a subtask is its task alone (each gets the swarm's tools, no
        # dependencies: guided plans are flat), and `wait` waits for everything
        pieces = task_pieces(run.task)
        task_field: dict[str, Any] = {**_STR, "description": "what this sub-agent must find"}
        if len(pieces) >= cfg.min_subtasks:
            # each subtask is one of the task's own pieces (a line, or an item of a "; " list):
            # the model chooses which pieces become sub-agents and how many, but cannot garble
            # a name while copying it (measured: "3ththouzur Energy"; a whole plan of "plan";
            # for a one-line task, eight sub-agents told "create_subagent(name,"). A task of
            # one piece gets one sub-agent: the serial collapse the metrics then report is
            # what a 135M orchestrator can do with a task it cannot split. (Fewer pieces than
            # the configured `min_subtasks`: the subtasks are free text, as that asks.)
            task_field["enum"] = pieces
            max_items = min(max_items, len(pieces))  # a piece twice is one sub-agent too many
        subtask = {"type": "object", "properties": {"task": task_field}, "required": ["task"]}
        wait_params: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    else:
        wait_params = {"type": "object", "properties": {"task_ids": _STR_LIST, "mode": {"type": "string",
                                                                                       "enum": ["all", "any"]}},
                       "required": []}
    never = 10 ** 9  # orchestration tools wait on sub-agents; the swarm's own budgets bound them
    return Toolbox([
        Tool("plan", "Create and start several sub-agents at once, one per subtask.",
             {"type": "object", "properties": {"subtasks": {"type": "array", "items": subtask,
                                                            "minItems": cfg.min_subtasks, "maxItems": max_items}},
              "required": ["subtasks"]}, plan, timeout_s=never),
        Tool("create_subagent", "Define a sub-agent: its name, instructions and the tools it may use.",
             {"type": "object", "properties": {"name": _STR, "instructions": _STR, "tools": tools_schema},
              "required": ["name", "instructions"]}, create_subagent, timeout_s=never),
        Tool("assign_task", "Start a task on a sub-agent in the background; returns its task id.",
             {"type": "object", "properties": {"agent": _STR, "task": _STR, "depends_on": _STR_LIST},
              "required": ["agent", "task"]}, assign_task, timeout_s=never),
        Tool("wait", "Wait for tasks and get their results as they finish (mode 'all' or 'any').",
             wait_params, wait, timeout_s=never, max_output_chars=cfg.wait_chars, idempotent=True),
        Tool("memory_write", "Write a value to shared memory under a key.",
             {"type": "object", "properties": {"key": _STR, "value": _STR}, "required": ["key", "value"]},
             memory_write, timeout_s=never, idempotent=True),
        Tool("memory_read", "Read shared memory: one key, or entries matching a query.",
             {"type": "object", "properties": {"key": _STR, "query": _STR}, "required": []}, memory_read,
             timeout_s=never, idempotent=True),
        Tool("finish", "Give the final answer, citing sub-agents as [agent-name].",
             {"type": "object", "properties": {"answer": {"type": ["string", "array"]}}, "required": ["answer"]},
             finish, timeout_s=never, idempotent=True),
    ])


def task_pieces(task: str) -> list[str]:
    """The pieces a guided plan may hand out: the task's non-empty lines, with a line that
    lists items ("...: A; B; C.") split into its items. A piece keeps its list number: a
    135M orchestrator picking from "1. A", "2. B", ... lists them in order, each once
    (unnumbered, it picked out of order and repeated some: 7 of 8 items covered)."""
    out: list[str] = []
    for line in task.splitlines():
        line = line.strip()
        if not line:
            continue
        _, sep, tail = line.partition(": ")
        items = [x for x in (y.strip().rstrip(".").strip() for y in tail.split(";")) if x] if sep else []
        out.extend(items if len(items) >= 2 else [line])
    return list(dict.fromkeys(x[:300] for x in out))


def _forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


class Orchestrator(AgentLoop):
    """The orchestrator's loop: `AgentLoop` with the swarm's step hooks (module docstring)."""

    max_model_errors = 2  # one failed call is retried at the next step; two in a row end the run
    concurrent_tools = False  # a plan must start before the wait that collects it
    repeat_guard = False  # waiting again is normal

    def __init__(self, model: ChatModel, box: Toolbox, run: SwarmRun, *, system_prompt: str, guided: bool):
        cfg = run.cfg
        super().__init__(model, box, agent_id=ORCH, thinking="off", budgets=Budgets(max_steps=cfg.budgets.max_steps),
                         system_prompt=system_prompt, verify_code=False, reask_missing_reasoning=False)
        self.run = run
        self.guided = guided
        self.budget_label = "orchestrator "

    def plan_step(self, turn: Turn) -> StepPlan:
        run, box = self.run, self.toolbox
        run.orch_step = turn.steps
        last = turn.steps >= self.budgets.max_steps
        if last or run.soft_budget:
            tools = [self._guided_finish() if self.guided else box.get("finish").schema()]  # type: ignore[union-attr]
            choice: Any = _forced("finish") if self.guided else None
        elif self.guided:
            # the same three tools every step, the step's one forced by the grammar: the tool list
            # in the prompt then never changes, and the embedded model reuses the prompt's prefix
            name = "plan" if not run.scheduler.tasks else "wait" if run.scheduler.undelivered() else "finish"
            tools = [box.get("plan").schema(), box.get("wait").schema(), self._guided_finish()]  # type: ignore[union-attr]
            choice = _forced(name)
        else:
            tools, choice = box.schemas(), None
        extra: tuple[Message, ...] = ()
        if last:
            extra = (Message.user(prompts.LAST_STEP),)
        elif run.soft_budget:
            extra = (Message.user(prompts.SOFT_BUDGET.format(budget=run.soft_budget)),)
        return StepPlan(tools=tools, tool_choice=choice, extra=extra, thinking=run.cfg.orch_thinking,
                        max_tokens=run.cfg.orch_max_tokens)

    def _guided_finish(self) -> dict[str, Any]:
        """Guided `finish`: the answer is a list of picks from the results the orchestrator
        holds, each "<the subtask it wrote>: <what its sub-agent answered>" (an enum under
        constrained decoding), one pick per result; a repeated pick drops a result. So a 135M
        orchestrator chooses which results answer the task but cannot garble or invent one;
        with no result yet it writes the answer itself. (With one pick required, not one per
        result, SmolLM2 stopped after the first pick in 6 of 6 measured runs: item F1 0.22
        on 8 items, against 0.86-1.0 with one pick per result.)"""
        results = list(dict.fromkeys(
            self.run.result_line(t, (t.rec.answer or "").strip())
            for t in self.run.scheduler.tasks.values()
            if t.rec.status in ("ok", "budget") and (t.rec.answer or "").strip()))
        if not results:
            answer: dict[str, Any] = _STR
        else:
            answer = {"type": "array", "items": {"type": "string", "enum": results}, "minItems": len(results),
                      "maxItems": len(results)}
        return {"type": "function", "function": {
            "name": "finish", "description": "Give the final answer: the results that answer the task.",
            "parameters": {"type": "object", "properties": {"answer": answer}, "required": ["answer"]}}}

    def on_answer(self, turn: Turn, msg: Message) -> Outcome | None:
        if msg.content and msg.content.strip():
            return Outcome("ok", msg.content, None)
        self.append(Message.user(prompts.NO_ACTION))
        return None

    def skip_call(self, turn: Turn, call: ToolCall) -> str | None:
        return "not run: the run finished" if self.run.finished else None

    def recover_call(self, turn: Turn, call: ToolCall) -> ToolResult | Literal["rerun"] | None:
        """The orchestration tools' effects live only in the journal: a `plan` or `assign_task`
        whose sub-agents reached it took effect (its result is rebuilt); one that left nothing
        there never happened, so it runs again, as does `create_subagent`."""
        if call.name in ("plan", "assign_task"):
            made = [t for t in self.run.scheduler.tasks.values() if t.rec.launched_at == turn.steps]
            if not made:
                return "rerun"
            lines = [f"- {t.rec.task_id}: {t.spec.name}" for t in made]
            text = (f"started {len(made)} sub-agents (recovered from the journal):\n" + "\n".join(lines)
                    + "\nCall wait to collect their results.")
            return ToolResult(call_id=call.id, name=call.name, ok=True, content=text, agent=ORCH)
        if call.name == "create_subagent":
            return "rerun"
        return None

    def after_tools(self, turn: Turn) -> Outcome | None:
        run = self.run
        if not run.finished:
            return None
        if run.soft_budget:
            return Outcome("budget", run.answer, f"swarm {run.soft_budget} budget reached")
        return Outcome("ok", run.answer, None)
