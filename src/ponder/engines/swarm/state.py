"""One swarm run's shared state: agent definitions, the task DAG, shared memory, budgets.

The orchestrator's tools act on it (`define_agent`, `assign`, `plan`, `deliver`); the
workers read it (`task_text`, `tools_for`). Everything that changes it is also an event
(`AgentSpawned`, `AgentFinished`, `ResultsDelivered`, `MemoryWrite`), which is why
`restore` can rebuild it from a journal: finished sub-agents are never run again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    MemoryWrite,
    ResultsDelivered,
    StepStarted,
    ToolResult,
)
from ...tools.base import Tool, ToolFailure
from . import prompts
from .config import ORCH
from .memory import Blackboard
from .metrics import TaskRecord
from .scheduler import DependencyError, Scheduler, Task, check_dag

if TYPE_CHECKING:
    from ..runtime import RunContext
    from .engine import Swarm


@dataclass(slots=True)
class AgentDef:
    name: str
    instructions: str
    tools: list[str]
    instances: int = 0


_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")


def unlisted(text: str) -> str:
    """A list item without its number or bullet ("3. Vanquork Energy" -> "Vanquork Energy")."""
    return _LIST_MARK.sub("", text, count=1)


class SwarmRun:
    """Everything one swarm run shares between its agents."""

    def __init__(self, swarm: Swarm, task: str, ctx: RunContext, run_task: Callable[[SwarmRun, Task], Any]):
        self.swarm = swarm
        self.cfg = swarm.config
        self.task = task
        self.ctx = ctx
        self.emit = ctx.emit
        self.memory = Blackboard(self.cfg.memory_chars, emit=self.emit)
        self.scheduler = Scheduler(lambda t: run_task(self, t), max_parallel=self.cfg.max_parallel,
                                   on_finished=self._on_finished)
        self.agents: dict[str, AgentDef] = {}
        self.orch_step = 0
        self.soft_budget: str | None = None
        self.budget_hits: list[str] = []
        self.tool_calls_used = 0
        self.answer: str | None = None
        self.finished = False
        self.finish_warned = False
        self.inputs: dict[str, dict[str, str]] = {}
        self._guarded: dict[str, Tool] = {}

    def release(self) -> None:
        """Break the run's reference cycles (its callbacks point back at it) once it is over,
        so that its agents' work is freed by reference counting as soon as the caller drops
        the result, instead of surviving until the next full garbage collection."""
        self.memory.detach()
        self.scheduler.detach()
        self._guarded.clear()
        self.emit = _drop

    # ---- budgets --------------------------------------------------------------------------------
    def count_tool_call(self) -> bool:
        """True when the swarm-wide tool-call budget refuses this call."""
        self.tool_calls_used += 1
        limit = self.cfg.budgets.max_tool_calls
        if limit is not None and self.tool_calls_used > limit:
            if self.soft_budget is None:
                self.soft_budget = "max_tool_calls"
                self.budget_hits.append("max_tool_calls")
                self.emit(BudgetHit(budget="max_tool_calls", limit=float(limit), value=float(self.tool_calls_used),
                                    agent=ORCH))
            return True
        return False

    def _guard(self, t: Tool) -> Tool:
        run = self

        async def guarded(**kw: Any) -> Any:
            if run.count_tool_call():
                raise ToolFailure(f"ERROR: the swarm's tool-call budget ({run.cfg.budgets.max_tool_calls}) is used up; "
                                  "answer now with what you have.")
            return await t._call(kw)

        return dataclasses.replace(t, fn=guarded)

    # ---- the orchestrator's actions ------------------------------------------------------------
    def define_agent(self, name: str, instructions: str, tools: list[str]) -> AgentDef:
        name = "-".join(str(name or "").split())
        if not name:
            raise ToolFailure("ERROR: a sub-agent needs a non-empty name, e.g. 'researcher-1'")
        if name in self.agents:
            raise ToolFailure(f"ERROR: sub-agent {name!r} already exists; assign_task to it or choose another name")
        self.check_tools(tools)
        a = AgentDef(name, instructions or prompts.SUBAGENT_DEFAULT_INSTRUCTIONS, list(dict.fromkeys(tools)))
        self.agents[name] = a
        return a

    def check_tools(self, tools: list[str]) -> None:
        avail = self.swarm.toolbox.names() + ["memory_read", "memory_write"]
        bad = [t for t in tools if t not in avail]
        if bad:
            raise ToolFailure(f"ERROR: unknown tools {bad}; sub-agents may use: {', '.join(avail)}")

    def _resolve_dep(self, d: str) -> str:
        """A dependency may name a task id or an agent (meaning that agent's latest task)."""
        if d in self.scheduler.tasks:
            return d
        for tid in reversed(list(self.scheduler.tasks)):
            if self.scheduler.tasks[tid].spec.name == d:
                return tid
        return d

    def assign(self, agent: str, text: str, depends_on: list[str]) -> Task:
        a = self.agents.get(agent)
        if a is None:
            known = ", ".join(self.agents) or "none yet"
            raise ToolFailure(f"ERROR: no sub-agent named {agent!r} (known: {known}); create_subagent first")
        if not text or not str(text).strip():
            raise ToolFailure("ERROR: assign_task needs a non-empty task")
        if len(self.scheduler.tasks) >= self.cfg.max_agents:
            raise ToolFailure(f"ERROR: the swarm's limit of {self.cfg.max_agents} sub-agent tasks is reached")
        deps = [self._resolve_dep(d) for d in depends_on]
        tid = self.scheduler.new_id()
        check_dag({tid: deps}, self.scheduler.tasks)
        return self._submit(tid, a, str(text), deps)

    def _task(self, tid: str, a: AgentDef, text: str, deps: list[str], launched_at: int) -> Task:
        a.instances += 1
        agent_id = a.name if a.instances == 1 else f"{a.name}#{a.instances}"
        rec = TaskRecord(task_id=tid, agent_id=agent_id, name=a.name, launched_at=launched_at, depends_on=deps)
        return Task(rec=rec, text=text, spec=a)

    def _submit(self, tid: str, a: AgentDef, text: str, deps: list[str]) -> Task:
        t = self._task(tid, a, text, deps, self.orch_step)
        self.emit(AgentSpawned(agent=ORCH, agent_id=t.rec.agent_id, parent=ORCH, name=a.name, goal=text,
                               model=self.swarm.sub_model.name, depends_on=deps, task_id=tid,
                               instructions=a.instructions, tools=a.tools, launched_at=self.orch_step))
        return self.scheduler.submit(t)

    def plan(self, subtasks: list[dict[str, Any]]) -> list[Task]:
        """Validate a whole plan first (names, tools, dependencies, cycles), then start it."""
        if not isinstance(subtasks, list) or not subtasks:
            raise ToolFailure("ERROR: plan needs a non-empty list of subtasks")
        room = self.cfg.max_agents - len(self.scheduler.tasks)
        if len(subtasks) > room:
            raise ToolFailure(f"ERROR: the plan has {len(subtasks)} subtasks but only {room} more sub-agent tasks "
                              f"are allowed (limit {self.cfg.max_agents}); merge some")
        items: list[tuple[str, dict[str, Any]]] = []
        taken = set(self.agents)
        for i, st in enumerate(subtasks, 1):
            if not isinstance(st, dict):
                raise ToolFailure(f"ERROR: subtask {i} must be an object with name, instructions, task, depends_on")
            task = str(st.get("task") or "").strip()
            if not task:
                raise ToolFailure(f"ERROR: subtask {i} ({st.get('name')!r}) has an empty task")
            base = "-".join(str(st.get("name") or "").split()) or f"agent-{i}"
            name, k = base, 1
            while name in taken:  # duplicates are renamed; dependencies on the name mean its first use
                k += 1
                name = f"{base}-{k}"
            taken.add(name)
            tools = [str(x) for x in (st.get("tools") or [])]
            if not tools and self.swarm.guided:
                tools = self.swarm.toolbox.names()  # a guided subtask is its task alone: it gets every tool
            self.check_tools(tools)
            items.append((name, {**st, "name": base, "task": task, "tools": tools}))
        ids: dict[str, str] = {}
        order: list[str] = []
        for name, st in items:
            tid = self.scheduler.new_id()
            order.append(tid)
            ids.setdefault(st["name"], tid)
            ids.setdefault(name, tid)
        new: dict[str, list[str]] = {}
        for tid, (_name, st) in zip(order, items, strict=True):
            deps = st.get("depends_on") or []
            if isinstance(deps, str):
                deps = [deps]
            new[tid] = [ids.get(str(d), self._resolve_dep(str(d))) for d in deps]
        try:
            topo = check_dag(new, self.scheduler.tasks)
        except DependencyError as e:
            names = {tid: n for tid, (n, _) in zip(order, items, strict=True)}
            msg = str(e)
            for tid, n in names.items():
                msg = msg.replace(f"'{tid}'", f"'{n}'").replace(f" {tid} ", f" {n} ")
            raise DependencyError(msg + f" (subtask task ids: {names})") from None
        by_id = dict(zip(order, items, strict=True))
        made = []
        for tid in topo:  # dependencies first: the scheduler only accepts known dependencies
            name, st = by_id[tid]
            a = AgentDef(name, str(st.get("instructions") or prompts.SUBAGENT_DEFAULT_INSTRUCTIONS), st["tools"])
            self.agents[name] = a
            made.append(self._submit(tid, a, st["task"], new[tid]))
        made.sort(key=lambda t: order.index(t.rec.task_id))
        return made

    def deliver(self, done: list[Task]) -> str:
        """Hand finished results to the orchestrator (each once) and record when, for critical steps."""
        for t in done:
            t.rec.delivered_at = self.orch_step
        if done:
            self.emit(ResultsDelivered(task_ids=[t.rec.task_id for t in done], step=self.orch_step, agent=ORCH))
        clip = self.cfg.result_chars
        lines = []
        for t in done:
            r = t.rec
            body = (r.answer or "").strip() if r.status in ("ok", "budget") else f"ERROR: {r.error}"
            if len(body) > clip:
                body = body[:clip] + f"… [clipped: {len(body)} chars]"
            if self.swarm.guided:  # "<n>. <the subtask>: <its result>", the line the guided finish offers
                lines.append(self.result_line(t, body))
            else:
                lines.append(f"[{r.name}] task {r.task_id} {r.status} ({r.steps} steps): {body or '(empty)'}")
        pending = self.scheduler.pending()
        head = f"{len(done)} result(s)" if done else "no task finished yet"
        tail = f"\nstill running: {', '.join(pending)}" if pending else "\nall tasks are done."
        return head + (":\n" + "\n".join(lines) if lines else "") + tail

    def result_line(self, t: Task, body: str) -> str:
        """A guided result as the orchestrator sees and picks it: numbered in plan order, so
        that a 135M orchestrator lists them 1, 2, 3... (unnumbered, it repeated picks and
        dropped results: item F1 0.55 against 0.88 on the same task)."""
        n = list(self.scheduler.tasks).index(t.rec.task_id) + 1
        return " ".join(f"{n}. {unlisted(t.text)}: {body or '(empty)'}".split())[: self.cfg.result_chars]

    # ---- what a sub-agent sees ---------------------------------------------------------------
    def task_text(self, task: Task) -> str:
        # guided: the piece without its list number (a 135M sub-agent handed "3. Tryththouzur
        # Energy" looked up "3th")
        parts = [unlisted(task.text) if self.swarm.guided else task.text]
        if self.swarm.guided:
            # a guided subtask is often just an item ("3. Vanquork Energy"): a 135M worker given the
            # bare item does not know what to do with it (measured: it looked up "lookup" or "year"
            # for 7 of 8 items); under the first line of the whole task it looked up 8 of 8 right
            head = self.task.strip().splitlines()[0].strip()
            if head and head not in task.text:
                parts.insert(0, head)
        if task.rec.depends_on:
            parts.append("Results of the tasks you depend on:")
            for d in task.rec.depends_on:
                dr = self.scheduler.tasks[d].rec
                body = (dr.answer or "").strip() if dr.status in ("ok", "budget") else f"ERROR: {dr.error}"
                parts.append(f"- [{dr.name}] ({d}, {dr.status}): {body[: self.cfg.result_chars]}")
        if self.memory.entries:
            parts.append("Shared memory:\n" + self.memory.render())
        return "\n".join(parts)

    def tools_for(self, task: Task, step: Callable[[], int | None]) -> list[Tool]:
        a: AgentDef = task.spec
        out = []
        for name in a.tools:
            t = self.swarm.toolbox.get(name)
            if t is None:
                continue
            g = self._guarded.get(name)
            if g is None:
                g = self._guarded[name] = self._guard(t)
            out.append(g)
        if "memory_read" in a.tools or "memory_write" in a.tools or not a.tools:
            mem = self.memory.tools(task.rec.agent_id, step=step)
            out.extend(self._guard(m) for m in mem if m.name in a.tools or not a.tools)
        return out

    def _on_finished(self, task: Task) -> None:
        r = task.rec
        status = r.status if r.status in ("ok", "error", "cancelled", "budget") else "error"
        self.emit(AgentFinished(agent=r.agent_id, agent_id=r.agent_id, status=status, answer=r.answer,  # type: ignore[arg-type]
                                steps=r.steps, error=r.error))

    def fallback_answer(self, reason: str | None) -> str | None:
        recs = [t.rec for t in self.scheduler.tasks.values() if t.rec.status in ("ok", "budget") and t.rec.answer]
        if not recs:
            return None
        body = "\n".join(f"[{r.name}] {r.answer.strip()[: self.cfg.result_chars]}" for r in recs if r.answer)
        return f"(the orchestrator did not finish: {reason}; the sub-agents' results follow)\n{body}"

    # ---- resume -----------------------------------------------------------------------------------
    def restore(self, events: list[Any]) -> None:
        """Rebuild the run's state from its journal, then start what had not finished.

        Finished sub-agents keep their results and are not run again; unfinished ones are
        started again and continue from their own journaled conversation (see `AgentLoop`).
        A delivery counts only once the orchestrator's `wait` result reached the journal:
        otherwise the re-run `wait` hands those results over again."""
        specs: dict[str, AgentSpawned] = {}
        finished: dict[str, AgentFinished] = {}
        delivered: dict[str, int] = {}
        unconfirmed: dict[str, int] = {}
        first_step: dict[str, float] = {}
        for ev in events:
            tp = type(ev)
            if tp is StepStarted and ev.agent not in first_step:
                first_step[ev.agent] = ev.ts
            if tp is AgentSpawned and ev.task_id:
                specs[ev.task_id] = ev
            elif tp is AgentFinished:
                finished[ev.agent_id] = ev
            elif tp is ResultsDelivered:
                unconfirmed.update(dict.fromkeys(ev.task_ids, ev.step))
            elif tp is ToolResult:
                if ev.agent == ORCH:
                    if ev.name == "wait":
                        delivered.update(unconfirmed)
                        unconfirmed.clear()
                else:
                    self.tool_calls_used += 1
            elif tp is MemoryWrite:
                e = self.memory.write(ev.key, ev.value, agent=ev.agent, step=ev.step, quiet=True)
                e.ts = ev.ts
            elif tp is StepStarted and ev.agent == ORCH:
                self.orch_step = max(self.orch_step, ev.step)
            elif tp is BudgetHit and ev.budget == "max_tool_calls" and ev.agent == ORCH:
                self.soft_budget = "max_tool_calls"
                self.budget_hits.append("max_tool_calls")
        self._restore_definitions()
        top = 0
        for tid, sp in sorted(specs.items(), key=lambda kv: int(kv[0][1:]) if kv[0][1:].isdigit() else 0):
            top = max(top, int(tid[1:]) if tid[1:].isdigit() else 0)
            a = self.agents.get(sp.name)
            if a is None:
                a = self.agents[sp.name] = AgentDef(sp.name, sp.instructions or prompts.SUBAGENT_DEFAULT_INSTRUCTIONS,
                                                    list(sp.tools or []))
            t = self._task(tid, a, sp.goal, list(sp.depends_on), sp.launched_at or 0)
            if t.rec.agent_id != sp.agent_id:  # numbering follows the journal, not the replay order
                t.rec.agent_id = sp.agent_id
            t.rec.delivered_at = delivered.get(tid)
            fin = finished.get(sp.agent_id)
            if fin is not None:
                t.rec.status, t.rec.answer, t.rec.steps, t.rec.error = fin.status, fin.answer, fin.steps, fin.error
                t.rec.started, t.rec.ended = first_step.get(sp.agent_id, fin.ts), fin.ts
                self.scheduler.restore(t)
            else:
                self.scheduler.submit(t)
        self.scheduler.seq = max(self.scheduler.seq, top)

    def _restore_definitions(self) -> None:
        """Sub-agents defined with `create_subagent` (an event only once they get a task) come
        back from the orchestrator's journaled calls that succeeded."""
        lane = self.ctx.replay.lanes.get(ORCH) if self.ctx.replay is not None else None
        if lane is None:
            return
        ok = {m.tool_call_id for m in lane.messages if m.role == "tool" and not (m.content or "").startswith("ERROR")}
        ok |= {cid for cid, r in lane.results.items() if r.ok}  # results that reached the journal before their message
        for m in lane.messages:
            for c in m.tool_calls:
                if c.name == "create_subagent" and c.id in ok and isinstance(c.arguments, dict):
                    name = "-".join(str(c.arguments.get("name") or "").split())
                    if name and name not in self.agents:
                        tools = c.arguments.get("tools") or []
                        self.agents[name] = AgentDef(name, str(c.arguments.get("instructions") or
                                                               prompts.SUBAGENT_DEFAULT_INSTRUCTIONS),
                                                     [str(x) for x in tools] if isinstance(tools, list) else [])
                if c.name == "finish" and c.id in ok and isinstance(c.arguments, dict):
                    self.answer = str(c.arguments.get("answer") or "")
                    self.finished = True


def _drop(_ev: Any) -> None:
    return None
