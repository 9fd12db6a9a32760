"""The swarm's Ray executor: sub-agents in async actors spread over a cluster.

The driver (the process running `Swarm.drive`) keeps everything the run shares: the
scheduler and its task DAG, the shared memory, the swarm-wide tool budget, the journal.
Sub-agents run on cluster hosts (`engines/cluster`), many per host, each the same agent
as in-process (`workers.make_agent`) with its tools running where it runs. Their events
come back over the host's channel and go into the run's one stream (`run.emit`), in the
order they happened, so the journal, telemetry and budgets see exactly what an in-process
run shows.

What a sub-agent needs from the driver is a question on that channel, answered in order
after the events before it: `memory_read` / `memory_write` act on the driver's Blackboard
(provenance, `MemoryWrite` events, the budget: as in-process); a tool that is not idempotent
waits until the driver has committed the journal (the same barrier as in-process). The
swarm-wide tool-call budget is leased: each host asks the driver for calls `LEASE` at a time
(a fair share when few are left), so the cap holds exactly without a round trip per call;
what a host holds unused when the budget runs out elsewhere (at most a share per host) is
why a refusal can come a few calls earlier than in-process, and a lost host's unused share
stays counted.

Failure: when a host dies (its process killed, its node gone), each of its unfinished
sub-agents continues on another host from the events the driver had received, which are
what the journal holds: its lane is rebuilt (`replay`) and `run_turn` resumes it, exactly
as `ponder resume` does; a tool call that was in flight is re-run only if idempotent.
Sub-agents whose result had arrived are finished and never run again.

Models travel as recipes where they hold secrets: an HTTP model is rebuilt on the host from
its catalog spec, and reads its API key from the host's environment (set it on every
machine). Other models and the tools travel pickled, once per host.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.events import (
    Event,
    MessageAppended,
    ModelCallFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    ToolResult,
)
from ...tools.base import Tool, ToolFailure
from ..base import Budgets
from ..cluster.host import JobIO
from ..cluster.pool import FutureHandler, HostLost, HostPool, connect, require_ray
from ..replay import LaneReplay, replay
from ..runtime import RunContext
from .config import ORCH, SwarmConfig
from .memory import Blackboard
from .workers import AgentFactory, _Counted, make_agent, prepare, record_outcome

if TYPE_CHECKING:
    from .engine import Swarm
    from .scheduler import Task
    from .state import SwarmRun

MAX_FAILOVERS = 3  # a sub-agent whose host dies this many times ends in error
STOP_WAIT_S = 5.0  # how long a stopped sub-agent may take to send its last events
_LANE = (MessageAppended, StepStarted, StepFinished, ModelCallFinished, ToolResult)  # what rebuilds a lane


def budget_text(limit: int | None) -> str:
    return f"ERROR: the swarm's tool-call budget ({limit}) is used up; answer now with what you have."


# ---- what travels to the hosts ----------------------------------------------------------------------
@dataclass
class ModelRecipe:
    """An HTTP model rebuilt where it runs: its spec and options travel, its API key does not."""

    cls: type
    spec: Any
    options: dict[str, Any]

    def build(self) -> Any:
        return self.cls(self.spec, **self.options)


def portable_model(m: Any) -> Any:
    oc = sys.modules.get("ponder.models.openai_compat")
    if oc is not None and isinstance(m, oc.OpenAICompatModel) and getattr(m, "_client", None) is None:
        opts = {"max_retries": m.max_retries, "backoff_s": m.backoff_s, "timeout_s": m.timeout_s,
                "idle_timeout_s": m.idle_timeout_s, "first_byte_timeout_s": m.first_byte_timeout_s,
                "connect_timeout_s": m.connect_timeout_s, "stream": m.streaming,
                "max_connections": m._pool_key.max_connections}
        if hasattr(m, "raw_format"):
            opts["raw_format"] = m.raw_format
        return ModelRecipe(type(m), m.spec, opts)
    return m  # test doubles and custom backends: pickled as they are


@dataclass
class _JobState:
    io: JobIO
    model: _Counted
    host: _HostState
    run_id: str


_CUR: contextvars.ContextVar[_JobState] = contextvars.ContextVar("ponder_swarm_job")
LEASE = 32  # tool calls a host asks for at a time (fewer when the budget is nearly spent)


@dataclass
class _HostState:
    cfg: SwarmConfig
    model: Any
    tools: dict[str, Tool]
    memory: list[Tool]
    agent_factory: AgentFactory
    allowance: dict[str, int] = dataclasses.field(default_factory=dict)  # run id -> tool calls left here
    asking: dict[str, asyncio.Future[int]] = dataclasses.field(default_factory=dict)

    async def take(self, j: _JobState) -> bool:
        """One tool call from this host's share of the run's budget; an empty share asks the
        driver for more (one question at a time per run; the others wait for its answer)."""
        run = j.run_id
        while True:
            left = self.allowance.get(run, 0)
            if left > 0:
                self.allowance[run] = left - 1
                return True
            fut = self.asking.get(run)
            if fut is None:
                fut = self.asking[run] = asyncio.get_running_loop().create_future()
                try:
                    granted = int(await j.io.ask("lease", LEASE) or 0)
                finally:
                    del self.asking[run]
                fut.set_result(granted)
                self.allowance[run] = self.allowance.get(run, 0) + granted
            else:
                granted = await fut
            if granted <= 0:
                return False


@dataclass
class SwarmKit:
    """What every sub-agent of one swarm shares on a host: built there once."""

    cfg: SwarmConfig
    model: Any
    tools: list[Tool]
    agent_factory: AgentFactory

    def build(self) -> _HostState:
        model = self.model.build() if isinstance(self.model, ModelRecipe) else self.model
        limit = self.cfg.budgets.max_tool_calls
        tools = {t.name: _guard(t, limit) for t in self.tools}
        memory = [dataclasses.replace(t, fn=_memory_proxy(t.name)) for t in Blackboard().tools("-")]
        return _HostState(self.cfg, model, tools, memory, self.agent_factory)


def _guard(t: Tool, limit: int | None) -> Tool:
    """The tool as a sub-agent on a host calls it: within the swarm's tool-call budget (the
    host's share of it, leased from the driver), and, when a second run would do harm, only
    once the call is in the driver's journal."""
    if limit is None and t.idempotent:
        return t

    async def guarded(**kw: Any) -> Any:
        j = _CUR.get()
        if limit is not None and not await j.host.take(j):
            raise ToolFailure(budget_text(limit))
        if not t.idempotent:
            await j.io.ask("checkpoint")
        return await t._call(kw)

    return dataclasses.replace(t, fn=guarded)


def _memory_proxy(name: str) -> Any:
    async def call(**kw: Any) -> str:
        j = _CUR.get()
        r = await j.io.ask("memory", (name, kw, j.model.calls))
        if r is None:
            raise ToolFailure("ERROR: the swarm's shared memory did not answer; go on without it")
        ok, content = r
        if not ok:
            raise ToolFailure(content)
        return content  # type: ignore[no-any-return]

    return call


@dataclass
class _Lanes:
    """The part of a run's replay a sub-agent reads: its own lane."""

    lanes: dict[str, LaneReplay]


@dataclass
class AgentJob:
    """One sub-agent run on a host (a fresh start, or a continuation of its lane)."""

    kit: str
    run_id: str
    agent_id: str
    system: str
    text: str
    tools: list[str]
    lane: LaneReplay | None = None

    async def run(self, io: JobIO, st: _HostState) -> tuple[str, str | None, str | None, int | None]:
        lane = self.lane
        model = _Counted(st.model, lane.steps if lane is not None else 0)
        names = self.tools
        tools = [st.tools[n] for n in names if n in st.tools]
        if not names or "memory_read" in names or "memory_write" in names:
            tools.extend(m for m in st.memory if m.name in names or not names)
        agent = make_agent(st.agent_factory, st.cfg, model, tools, self.system, self.agent_id)
        ctx = RunContext(run_id=self.run_id, budgets=Budgets(), emit=io.emit,
                         replay=_Lanes({self.agent_id: lane}) if lane is not None else None)  # type: ignore[arg-type]
        io.on_cancel = lambda reason: setattr(ctx, "stop_reason", reason)
        _CUR.set(_JobState(io, model, st, self.run_id))
        outcome = await agent.run_turn(self.text, ctx, emit=io.emit, main=False)
        turn = getattr(agent, "turn", None)
        return outcome.status, outcome.answer, outcome.reason, turn.steps if turn is not None else None


# ---- the driver's side -----------------------------------------------------------------------------
class _Agent(FutureHandler):
    """Routes one sub-agent's channel into the run (a `pool.Handler`)."""

    __slots__ = ("run", "rec", "fut", "keep", "pool", "step", "_mem")

    def __init__(self, run: SwarmRun, rec: Any, fut: asyncio.Future[Any], keep: list[Event], pool: HostPool):
        self.run, self.rec, self.fut, self.keep, self.pool = run, rec, fut, keep, pool
        self.step: int | None = None
        self._mem: dict[str, Tool] | None = None

    def on_event(self, ev: Event) -> None:
        tp = type(ev)
        if tp in _LANE:
            self.keep.append(ev)
            if tp is StepStarted:
                self.rec.steps += 1
            elif tp is ModelCallFinished:
                u = ev.usage  # type: ignore[attr-defined]
                self.rec.tokens += u.prompt_tokens + u.completion_tokens
        self.run.emit(ev)

    def on_request(self, op: str, args: Any) -> Any:
        run = self.run
        if op == "checkpoint":
            run.ctx.checkpoint()  # the tool call is in the journal before it runs
            return True
        if op == "lease":  # a host's share of the swarm-wide tool-call budget
            limit = run.cfg.budgets.max_tool_calls
            left = (limit - run.tool_calls_used) if limit is not None else args
            if left <= 0:
                run.count_tool_call()  # refused: counted (and the budget hit reported) as in-process
                return 0
            hosts = len(self.pool.hosts) if self.pool is not None else 1
            grant = min(int(args), left, max(1, -(-left // hosts)))  # a fair share while it runs low
            run.tool_calls_used += grant
            return grant
        if op == "memory":
            return self._memory(*args)
        return None

    async def _memory(self, name: str, kw: dict[str, Any], step: int | None) -> tuple[bool, str]:
        run = self.run
        if run.count_tool_call():
            return False, budget_text(run.cfg.budgets.max_tool_calls)
        if self._mem is None:
            self._mem = {t.name: t for t in run.memory.tools(self.rec.agent_id, step=lambda: self.step)}
        t = self._mem.get(name)
        if t is None:
            return False, f"ERROR: no shared-memory tool {name!r}"
        run.ctx.checkpoint()  # memory tools are not idempotent: as in-process
        self.step = step
        ok, content, _ = await t.run(kw)
        return ok, content



class RayExecutor:
    """Sub-agents on a Ray cluster (see the module docstring)."""

    kind = "ray"

    def __init__(self, swarm: Swarm):
        require_ray()  # fail as the swarm is built, with the fix
        self.swarm = swarm
        self.pool: HostPool | None = None
        self.kit_id = f"swarm-{uuid.uuid4().hex[:12]}"
        self._kit: SwarmKit | None = None
        self._opening: asyncio.Future[HostPool] | None = None
        self.failovers = 0
        self._reported: dict[str, Any] = {}

    def _kit_for_hosts(self) -> SwarmKit:
        if self._kit is None:
            sw = self.swarm
            self._kit = SwarmKit(sw.config, portable_model(sw.sub_model), list(sw.toolbox), sw.agent_factory)
        return self._kit

    async def prepare(self) -> None:
        """Join the cluster now (a wrong address is this run's error, with the fix), and start
        the hosts in the background while the orchestrator plans."""
        connect(self.swarm.config.ray_address)
        self._open_soon()

    def _open_soon(self) -> asyncio.Future[HostPool]:
        loop = asyncio.get_running_loop()
        if self.pool is not None and self.pool.loop is loop:
            fut: asyncio.Future[HostPool] = loop.create_future()
            fut.set_result(self.pool)
            return fut
        if self._opening is None or self._opening.get_loop() is not loop:
            old, self.pool = self.pool, None
            self._reported = {"failovers": self.failovers}
            cfg = self.swarm.config
            self._opening = loop.create_task(self._open(old, HostPool(cfg.ray_hosts, address=cfg.ray_address,
                                                                      cap=cfg.max_parallel, label="ponder-swarm")))
            # retrieved here too: a run whose orchestrator never starts a sub-agent never awaits it
            self._opening.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._opening

    @staticmethod
    async def _open(old: HostPool | None, pool: HostPool) -> HostPool:
        if old is not None:  # a pool of an earlier event loop: its pumps are gone
            await old.aclose()
        return await pool.open()

    async def _ensure(self) -> HostPool:
        loop = asyncio.get_running_loop()
        if self.pool is not None and self.pool.loop is loop:
            return self.pool
        pool = await asyncio.shield(self._open_soon())
        self.pool = pool
        return pool

    async def run_task(self, run: SwarmRun, task: Task) -> None:
        pool = await self._ensure()
        rec = task.rec
        cfg = run.cfg
        system, text, lane = prepare(run, task)
        keep: list[Event] = []
        if lane is not None and run.ctx.replay is not None:  # resumed: its journaled lane so far
            keep = [e for e in run.ctx.replay.events if e.agent == rec.agent_id and type(e) in _LANE]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.sub_timeout_s if cfg.sub_timeout_s is not None else None
        kit = self._kit_for_hosts()
        last = ""
        for attempt in range(MAX_FAILOVERS + 1):
            fut: asyncio.Future[Any] = loop.create_future()
            key = f"{run.ctx.run_id}/{rec.agent_id}/{attempt}"
            job = AgentJob(self.kit_id, run.ctx.run_id, rec.agent_id, system, text, list(task.spec.tools), lane)
            pool.submit(key, job, _Agent(run, rec, fut, keep, pool), kit)
            try:
                async with asyncio.timeout_at(deadline):
                    status, value = await asyncio.shield(fut)
            except HostLost as e:
                self.failovers += 1
                lane = _lane(rec.agent_id, keep)
                last = str(e)
                continue
            except TimeoutError:
                await self._stop(pool, key, fut, "sub-agent timed out")
                rec.status, rec.error = "error", f"sub-agent timed out after {cfg.sub_timeout_s:g}s"
                return
            except asyncio.CancelledError:
                await self._stop(pool, key, fut, run.ctx.stop_reason)
                raise
            if status == "ok":
                record_outcome(rec, *value)
            elif status == "cancelled":
                rec.status, rec.error = "cancelled", "cancelled on its host"
            else:
                rec.status, rec.error = "error", str(value)
            return
        rec.status = "error"
        rec.error = f"sub-agent lost with its host {MAX_FAILOVERS + 1} times; last: {last}"

    async def _stop(self, pool: HostPool, key: str, fut: asyncio.Future[Any], reason: str | None) -> None:
        """Cancel a sub-agent on its host and take in its last events (its conversation
        repaired), for a bounded time; whatever comes later is dropped."""
        if pool.cancel(key, reason) and not fut.done():
            try:
                await asyncio.wait({fut}, timeout=STOP_WAIT_S)
            except asyncio.CancelledError:
                pass
        pool.forget(key)
        if fut.done() and not fut.cancelled():
            fut.exception()  # retrieved: no "exception never retrieved" warning

    def report(self) -> dict[str, Any] | None:
        """Where this run's sub-agents ran (since the previous report: one engine runs one run at a time)."""
        out: dict[str, Any] = {"kind": "ray", "failovers": self.failovers - self._reported.get("failovers", 0)}
        if self.pool is not None:
            placed = self.pool.placement(self._reported.get("placement"))
            self._reported = {"failovers": self.failovers, "placement": placed}
            out.update({k: v for k, v in placed.items() if not k.startswith("_")})
        return out

    async def aclose(self) -> None:
        pool, self.pool = self.pool, None
        opening, self._opening = self._opening, None
        if pool is None and opening is not None and opening.get_loop() is asyncio.get_running_loop():
            try:
                pool = await opening  # still starting: let it, then take its hosts down
            except Exception:  # noqa: BLE001 - it never opened: nothing to close
                pool = None
        if pool is not None:
            await pool.aclose()


def _lane(agent_id: str, keep: list[Event]) -> LaneReplay | None:
    """The sub-agent's lane as the driver received it (what the journal holds)."""
    if not keep:
        return None
    rr = replay([RunStarted(run_id="-", mode="swarm", task="-", agent=ORCH), *keep])
    return rr.lanes.get(agent_id)


__all__ = ["AgentJob", "ModelRecipe", "RayExecutor", "SwarmKit", "portable_model"]
