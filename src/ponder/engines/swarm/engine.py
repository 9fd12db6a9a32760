"""The Swarm engine: an orchestrator model fanning work out to parallel sub-agents.

Kimi K2.5's Agent Swarm (reference kimi-k2.5.md §2) over any ponder model. One
`SwarmRun` per task holds everything the run shares: the event sink every agent
writes into, the blackboard, the scheduler, and the swarm-wide budget counters that
every agent's tool calls and model calls are checked against. Sub-agents are
`Interleaved` agents (own context, own step budget) created on demand from
instructions the orchestrator wrote; they may run on a cheaper `sub_model`.

Events from all agents are merged into one stream (each carries its agent id); the
sub-agents' own `RunFinished` become `AgentFinished`, so the stream ends with exactly
one `RunFinished`, the swarm's, whose metrics carry critical steps, parallelism, the
serial-collapse and spurious-parallelism flags, and the PARL reward components.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    Event,
    ModelCallFinished,
    RunFinished,
    StepStarted,
)
from ...core.messages import Message
from ...core.telemetry import RunTelemetry
from ...models.base import ChatModel
from ...tools.base import Tool, Toolbox, ToolFailure
from ..base import Budgets, RunMetrics, RunResult
from . import metrics as M
from . import prompts
from .memory import DEFAULT_BUDGET_CHARS, Blackboard
from .metrics import TaskRecord
from .orchestrator import ORCH, orchestrate
from .scheduler import DependencyError, Scheduler, Task, check_dag

ScoreFn = Callable[[str | None], float | Awaitable[float]]
AgentFactory = Callable[..., Any]
_END = object()


def interleaved_factory(model: ChatModel, tools: Sequence[Tool], *, budgets: Budgets, system_prompt: str,
                        agent_id: str, thinking: str) -> Any:
    """The default sub-agent: an Interleaved agent with its own context."""
    from ..interleaved import Interleaved

    return Interleaved(model, tools, thinking=thinking, budgets=budgets,  # type: ignore[arg-type]
                       system_prompt=system_prompt, agent_id=agent_id)


class _Counted:
    """A model proxy that counts one agent's calls (its current step, for memory provenance)
    without wrapping the event stream: `stream` hands back the inner generator untouched."""

    __slots__ = ("inner", "calls")

    def __init__(self, inner: ChatModel):
        self.inner = inner
        self.calls = 0

    def stream(self, request: Any, *, agent: str = "main") -> Any:
        self.calls += 1
        return self.inner.stream(request, agent=agent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass(slots=True)
class AgentDef:
    name: str
    instructions: str
    tools: list[str]
    instances: int = 0


class Swarm:
    """Orchestrated parallel sub-agents. `await Swarm(model, tools).run(task)` or `async for ev in .stream(task)`.

    Budgets: `budgets.max_steps` bounds the orchestrator (default 15), `sub_budgets.max_steps`
    each sub-agent (default 100); `budgets.max_tool_calls` (default 1,500), `max_tokens`,
    `max_cost_usd` and `wall_timeout_s` are swarm-wide, shared by every agent.
    """

    def __init__(
        self,
        model: ChatModel,
        tools: Sequence[Tool | Callable[..., Any]] | Toolbox = (),
        *,
        sub_model: ChatModel | None = None,
        max_parallel: int = 100,
        max_agents: int = 100,
        min_subtasks: int = 1,
        budgets: Budgets | None = None,
        sub_budgets: Budgets | None = None,
        thinking: str = "auto",
        orchestrator_thinking: str | None = None,
        guided: bool | None = None,
        memory_chars: int = DEFAULT_BUDGET_CHARS,
        result_chars: int = 1_500,
        wait_chars: int = 40_000,
        sub_timeout_s: float | None = None,
        orch_max_tokens: int | None = None,
        system_prompt: str | None = None,
        agent_factory: AgentFactory | None = None,
        store: Any | None = None,  # ponder.core.store.RunStore
        reward_lambdas: tuple[float, float] = (0.1, 0.1),
    ):
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1 (got {max_parallel}); 100 is the Kimi K2.5 setting")
        if thinking not in ("on", "off", "auto"):
            raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {thinking!r}")
        self.model = model
        self.sub_model = sub_model or model
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        reserved = {"memory_read", "memory_write"} & set(self.toolbox.names())
        if reserved:
            raise ValueError(f"tool names {sorted(reserved)} are reserved for the swarm's shared memory; rename yours")
        self.max_parallel = max_parallel
        self.max_agents = max(1, max_agents)
        self.min_subtasks = max(1, min(min_subtasks, self.max_agents))
        self.budgets = budgets or Budgets(max_steps=15, max_tool_calls=1_500)
        self.sub_budgets = sub_budgets or Budgets(max_steps=100)
        self.thinking = thinking
        ot = orchestrator_thinking or thinking
        self.orch_thinking = ot if ot in ("on", "off") else None
        self.guided = guided
        self.memory_chars = memory_chars
        self.result_chars = result_chars
        self.wait_chars = wait_chars
        self.sub_timeout_s = sub_timeout_s
        self.orch_max_tokens = orch_max_tokens
        self.system_prompt = system_prompt
        self.agent_factory = agent_factory or interleaved_factory
        self.store = store
        self.reward_lambdas = reward_lambdas

    def guided_for(self, run: SwarmRun) -> bool:
        if self.guided is not None:
            return self.guided
        return self.model.spec.dialect == "embedded" and not self.model.native_thinking

    async def run(self, task: str, *, score_fn: ScoreFn | None = None, cancel: asyncio.Event | None = None) -> RunResult:
        """Run to the end and return the answer, metrics and every event. Events go straight
        into the result's list (no queue): at 100 agents that is a measurable share of a step."""
        _check_task(task)
        events: list[Event] = []
        run = SwarmRun(self, task, events.append)
        final = await self._execute(run, score_fn, cancel)
        events.append(final)
        # model_construct: every part is already typed (the metrics validated just here); a
        # validating constructor would re-check thousands of events one by one
        return RunResult.model_construct(answer=final.answer, status=final.status, reason=final.reason,
                         metrics=RunMetrics.model_validate(final.metrics), events=events,
                         messages=list(run.orch_messages))

    async def stream(self, task: str, *, score_fn: ScoreFn | None = None,
                     cancel: asyncio.Event | None = None) -> AsyncIterator[Event]:
        """Every agent's events as they happen, merged, ending with exactly one `RunFinished`.
        Closing the iterator early cancels the whole tree."""
        _check_task(task)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        run = SwarmRun(self, task, queue.put_nowait)
        driver = asyncio.get_running_loop().create_task(self._execute(run, score_fn, cancel), name="swarm")
        driver.add_done_callback(lambda _t: queue.put_nowait(_END))
        try:
            while (ev := await queue.get()) is not _END:
                yield ev
            yield driver.result()
        finally:
            if not driver.done():
                driver.cancel()
                with contextlib.suppress(BaseException):
                    await driver

    async def _execute(self, run: SwarmRun, score_fn: ScoreFn | None, cancel: asyncio.Event | None) -> RunFinished:
        """The run's life: the orchestrator task, the budgets' and the caller's stops, and the
        end (cancel what is left, compute metrics). Cancelling this cancels the whole tree."""
        loop = asyncio.get_running_loop()
        main = loop.create_task(run.main(), name="swarm-orchestrator")
        run.main_task = main
        timer = None
        if self.budgets.wall_timeout_s is not None:
            timer = loop.call_later(self.budgets.wall_timeout_s, run.hard_stop, "budget", "wall_timeout_s",
                                    self.budgets.wall_timeout_s)
        watcher = None
        if cancel is not None:
            watcher = loop.create_task(cancel.wait())
            watcher.add_done_callback(lambda t: None if t.cancelled() else run.hard_stop("cancelled", "cancel", 0))
        finished = False
        try:
            await asyncio.wait([main])  # returns however main ends (a hard stop cancels it)
            if run.stopped is not None:  # a hard stop wins even if the orchestrator got to answer
                status, answer, reason = run.stopped
            elif main.cancelled():
                status, answer, reason = "cancelled", None, "cancelled"
            else:
                status, answer, reason = main.result()
            run.tree_cancel.set()
            await run.scheduler.cancel_all()
            fin = await run.finish(status, answer, reason, score_fn)
            finished = True
            return fin
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
            if not finished:
                run.tree_cancel.set()
                if not main.done():
                    main.cancel()
                    with contextlib.suppress(BaseException):
                        await main
                await run.scheduler.cancel_all()
            run.release()


def _drop(_ev: Any) -> None:
    return None


def _check_task(task: str) -> None:
    if not task or not task.strip():
        raise ValueError("the swarm needs a non-empty task")


class SwarmRun:
    """Everything one swarm run shares between its agents."""

    def __init__(self, swarm: Swarm, task: str, sink: Callable[[Event], Any]):
        self.swarm = swarm
        self.task = task
        self.t0 = time.perf_counter()
        self.sink = sink  # where every agent's events go: the result's list, or stream()'s queue
        self.log: list[Event] | None = [] if swarm.store is not None else None  # for the store only
        self.telemetry = RunTelemetry()
        self.memory = Blackboard(swarm.memory_chars, emit=self.emit)
        self.scheduler = Scheduler(self.run_task, max_parallel=swarm.max_parallel, on_finished=self._on_finished)
        self.agents: dict[str, AgentDef] = {}
        self.orch_messages: list[Message] = []
        self.orch_reasoning: list[str] = []
        self.orch_step = 0
        self.tree_cancel = asyncio.Event()
        self.main_task: asyncio.Task[Any] | None = None
        self.stopped: tuple[str, str | None, str] | None = None
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
        so that its agents' work is freed as soon as the caller drops the result, by reference
        counting, instead of surviving until the next full garbage collection."""
        self.memory.detach()
        self.scheduler.detach()
        self._guarded.clear()
        self.sink = _drop
        self.main_task = None

    # ---- events and budgets ------------------------------------------------------------------
    def emit(self, ev: Any) -> None:
        self.sink(ev)
        if self.log is not None:
            self.log.append(ev)
        tp = type(ev)
        if tp is ModelCallFinished:
            self.telemetry.observe(ev)
            b = self.swarm.budgets
            if b.max_tokens is not None and self.telemetry.total_tokens >= b.max_tokens:
                self.hard_stop("budget", "max_tokens", b.max_tokens, self.telemetry.total_tokens)
            elif b.max_cost_usd is not None and self.telemetry.cost_usd >= b.max_cost_usd:
                self.hard_stop("budget", "max_cost_usd", b.max_cost_usd, self.telemetry.cost_usd)
        else:
            self.telemetry.observe(ev)

    def hard_stop(self, status: str, budget: str, limit: float, value: float | None = None) -> None:
        """Stop the whole tree now (token/cost/wall budgets, or the caller's cancel)."""
        if self.stopped is not None or (self.main_task is not None and self.main_task.done()):
            return
        if status == "budget":
            v = value if value is not None else round(time.perf_counter() - self.t0, 3)
            self.emit(BudgetHit(budget=budget, limit=float(limit), value=float(v), agent=ORCH))
            self.budget_hits.append(budget)
            reason = f"swarm {budget} budget reached ({v:g} of {limit:g})"
        else:
            reason = "cancelled by the caller"
        self.stopped = (status, None, reason)
        self.tree_cancel.set()
        if self.main_task is not None:
            self.main_task.cancel()

    def _count_tool_call(self) -> bool:
        """True when the swarm-wide tool-call budget refuses this call."""
        self.tool_calls_used += 1
        limit = self.swarm.budgets.max_tool_calls
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
            if run._count_tool_call():
                raise ToolFailure(f"ERROR: the swarm's tool-call budget ({run.swarm.budgets.max_tool_calls}) is used up; "
                                  "answer now with what you have.")
            return await t._call(kw)

        return dataclasses.replace(t, fn=guarded)

    # ---- the orchestrator's actions ------------------------------------------------------------
    async def main(self) -> tuple[str, str | None, str | None]:
        try:
            return await orchestrate(self)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - an engine bug still ends the run with a RunFinished
            return "error", None, f"engine error: {type(e).__name__}: {e}"

    def define_agent(self, name: str, instructions: str, tools: list[str]) -> AgentDef:
        name = "-".join(str(name or "").split())
        if not name:
            raise ToolFailure("ERROR: a sub-agent needs a non-empty name, e.g. 'researcher-1'")
        if name in self.agents:
            raise ToolFailure(f"ERROR: sub-agent {name!r} already exists; assign_task to it or choose another name")
        self._check_tools(tools)
        a = AgentDef(name, instructions or prompts.SUBAGENT_DEFAULT_INSTRUCTIONS, list(dict.fromkeys(tools)))
        self.agents[name] = a
        return a

    def _check_tools(self, tools: list[str]) -> None:
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
        if len(self.scheduler.tasks) >= self.swarm.max_agents:
            raise ToolFailure(f"ERROR: the swarm's limit of {self.swarm.max_agents} sub-agent tasks is reached")
        deps = [self._resolve_dep(d) for d in depends_on]
        tid = self.scheduler.new_id()
        check_dag({tid: deps}, self.scheduler.tasks)
        return self._submit(tid, a, str(text), deps)

    def _submit(self, tid: str, a: AgentDef, text: str, deps: list[str]) -> Task:
        a.instances += 1
        agent_id = a.name if a.instances == 1 else f"{a.name}#{a.instances}"
        rec = TaskRecord(task_id=tid, agent_id=agent_id, name=a.name, launched_at=self.orch_step, depends_on=deps)
        t = Task(rec=rec, text=text, spec=a)
        self.emit(AgentSpawned(agent=ORCH, agent_id=agent_id, parent=ORCH, name=a.name, goal=text,
                               model=self.swarm.sub_model.name, depends_on=deps))
        return self.scheduler.submit(t)

    def plan(self, subtasks: list[dict[str, Any]]) -> list[Task]:
        """Validate a whole plan first (names, tools, dependencies, cycles), then start it."""
        if not isinstance(subtasks, list) or not subtasks:
            raise ToolFailure("ERROR: plan needs a non-empty list of subtasks")
        room = self.swarm.max_agents - len(self.scheduler.tasks)
        if len(subtasks) > room:
            raise ToolFailure(f"ERROR: the plan has {len(subtasks)} subtasks but only {room} more sub-agent tasks "
                              f"are allowed (limit {self.swarm.max_agents}); merge some")
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
            self._check_tools(tools)
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
        clip = self.swarm.result_chars
        lines = []
        for t in done:
            r = t.rec
            body = (r.answer or "").strip() if r.status in ("ok", "budget") else f"ERROR: {r.error}"
            if len(body) > clip:
                body = body[:clip] + f"… [clipped: {len(body)} chars]"
            lines.append(f"[{r.name}] task {r.task_id} {r.status} ({r.steps} steps): {body or '(empty)'}")
        pending = self.scheduler.pending()
        head = f"{len(done)} result(s)" if done else "no task finished yet"
        tail = f"\nstill running: {', '.join(pending)}" if pending else "\nall tasks are done."
        return head + (":\n" + "\n".join(lines) if lines else "") + tail

    # ---- sub-agents ----------------------------------------------------------------------------
    def _task_text(self, task: Task) -> str:
        parts = [task.text]
        if task.rec.depends_on:
            parts.append("Results of the tasks you depend on:")
            for d in task.rec.depends_on:
                dr = self.scheduler.tasks[d].rec
                body = (dr.answer or "").strip() if dr.status in ("ok", "budget") else f"ERROR: {dr.error}"
                parts.append(f"- [{dr.name}] ({d}, {dr.status}): {body[: self.swarm.result_chars]}")
        if self.memory.entries:
            parts.append("Shared memory:\n" + self.memory.render())
        return "\n".join(parts)

    def _tools_for(self, task: Task, step: Callable[[], int | None]) -> list[Tool]:
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

    async def run_task(self, task: Task) -> None:
        rec, a = task.rec, task.spec
        system = a.instructions + prompts.SUBAGENT_SUFFIX.format(name=a.name)
        text = self._task_text(task)
        self.inputs[rec.agent_id] = {"system": system, "user": text}
        model = _Counted(self.swarm.sub_model)
        tools = self._tools_for(task, lambda: model.calls)
        agent = self.swarm.agent_factory(model, tools, budgets=self.swarm.sub_budgets,
                                         system_prompt=system, agent_id=rec.agent_id, thinking=self.swarm.thinking)
        final: RunFinished | None = None
        emit = self.emit

        def sink(ev: Event) -> None:
            if type(ev) is StepStarted:
                rec.steps += 1
            emit(ev)

        try:
            async with asyncio.timeout(self.swarm.sub_timeout_s):
                run_into = getattr(agent, "run_into", None)
                if run_into is not None:  # in this task, one call per event: no queue, no task switch
                    # no cancel event (a watcher task per agent): the end of the run cancels
                    # every sub-agent's task itself (`scheduler.cancel_all`)
                    final = await run_into(text, sink)
                else:  # any agent with the Interleaved-style stream() works too
                    stream = agent.stream(text, cancel=self.tree_cancel)
                    try:
                        async for ev in stream:
                            if type(ev) is RunFinished:
                                final = ev
                            else:
                                sink(ev)
                    finally:
                        await stream.aclose()
        except TimeoutError:
            rec.status = "error"
            rec.error = f"sub-agent timed out after {self.swarm.sub_timeout_s:g}s"
            return
        if final is None:
            rec.status, rec.error = "error", "sub-agent ended without a result"
            return
        rec.steps = int(final.metrics.get("steps") or rec.steps)
        u = final.metrics.get("usage") or {}
        rec.tokens = int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0))
        rec.answer = final.answer
        rec.status = final.status
        if final.status != "ok":
            rec.error = final.reason or final.status

    def _on_finished(self, task: Task) -> None:
        r = task.rec
        status = r.status if r.status in ("ok", "error", "cancelled", "budget") else "error"
        self.emit(AgentFinished(agent=r.agent_id, agent_id=r.agent_id, status=status, answer=r.answer,  # type: ignore[arg-type]
                                steps=r.steps, error=r.error))

    # ---- the end ------------------------------------------------------------------------------
    def _fallback_answer(self, reason: str | None) -> str | None:
        recs = [t.rec for t in self.scheduler.tasks.values() if t.rec.status in ("ok", "budget") and t.rec.answer]
        if not recs:
            return None
        body = "\n".join(f"[{r.name}] {r.answer.strip()[: self.swarm.result_chars]}" for r in recs if r.answer)
        return f"(the orchestrator did not finish: {reason}; the sub-agents' results follow)\n{body}"

    async def finish(self, status: str, answer: str | None, reason: str | None, score_fn: ScoreFn | None) -> RunFinished:
        if self.soft_budget and status == "ok":
            status, reason = "budget", f"swarm {self.soft_budget} budget reached"
        if not answer and status != "ok":
            answer = self._fallback_answer(reason)
        score = None
        if score_fn is not None:
            s = score_fn(answer)
            score = float(await s) if inspect.isawaitable(s) else float(s)
        recs = [t.rec for t in self.scheduler.tasks.values()]
        stats = M.compute(self.orch_step, recs, score=score, lambdas=self.swarm.reward_lambdas)
        tel = self.telemetry.summary()
        cites = M.citations(answer, [r.name for r in recs] + [r.agent_id for r in recs])
        m = RunMetrics(
            steps=stats.total_steps, critical_steps=stats.critical_steps, tool_calls=self.telemetry.tool_calls,
            tool_errors=self.telemetry.tool_errors, model_calls=self.telemetry.model_calls, usage=copy.copy(self.telemetry.usage),
            cost_usd=self.telemetry.cost_usd, ttft_first_s=tel["ttft_first_s"], ttft_median_s=tel["ttft_median_s"],  # type: ignore[arg-type]
            decode_tps_median=tel["decode_tps_median"], wall_s=round(time.perf_counter() - self.t0, 4),  # type: ignore[arg-type]
            agents=len(recs), parallelism=stats.parallelism, serial_collapse=stats.serial_collapse,
            spurious_agents=len(stats.spurious_tasks), rewards=stats.rewards,
            extra={
                "orchestrator_steps": self.orch_step,
                "peak_concurrency": stats.peak_concurrency,
                "max_parallel": self.swarm.max_parallel,
                "spurious_tasks": stats.spurious_tasks,
                "citations": cites,
                "budget_hits": self.budget_hits,
                "stages": M.stage_breakdown(self.orch_step, recs),
                "tasks": [{"task_id": r.task_id, "agent_id": r.agent_id, "name": r.name, "status": r.status,
                           "steps": r.steps, "tokens": r.tokens, "depends_on": r.depends_on,
                           "launched_at": r.launched_at, "delivered_at": r.delivered_at, "error": r.error}
                          for r in recs],
                "agent_inputs": self.inputs,
                "orchestrator_system": self.orch_messages[0].content if self.orch_messages else None,
                "model": self.swarm.model.name, "sub_model": self.swarm.sub_model.name,
            },
        )
        fin = RunFinished(status=status, answer=answer, reason=reason, metrics=m.model_dump(), agent=ORCH)  # type: ignore[arg-type]
        if self.swarm.store is not None and self.log is not None:
            self.log.append(fin)
            try:
                self.swarm.store.record_run(task=self.task, mode="swarm", model=self.swarm.model.name,
                                            events=self.log, finished=fin)
            except Exception as e:  # noqa: BLE001 - storage trouble must not lose the answer
                fin.metrics["extra"]["store_error"] = f"{type(e).__name__}: {e}"
        return fin
