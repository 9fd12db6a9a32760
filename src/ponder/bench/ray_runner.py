"""`ponder compare --ray`: a comparison's units run on a Ray cluster; results land here.

Each unit (suite, task, mode, model) runs on a cluster host (`engines/cluster`), many units
per host: the host rebuilds the comparison's suites from its configuration (they are
generated from the seed, or read from the same paths), makes the model and the engine with
the runner's factories (shipped once per host, pickled; the default makes models by name,
and an HTTP model reads its API key from the host's environment) and runs the task. The
run's events stream back to the driver, which journals them (`runs.recording`: the same
journal as a local unit, so each task still links to its run), grades the answer and writes
the row to the compare store. `--resume` works as before: it skips the stored rows.

A host that dies mid-unit costs no finished work: the unit continues on another host from
the events the driver had received (the run's journal), as `ponder resume` would continue
it; a unit whose result had arrived is never run again. A tool that is not idempotent waits
until its call is in the journal before it runs, as in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import runs
from ..core.events import Event, ModelCallFinished, RunFinished, RunStarted
from ..core.store import RunStore
from ..engines.base import RunResult
from ..engines.cluster.host import JobIO
from ..engines.cluster.pool import FutureHandler, HostLost, HostPool, require_ray
from ..engines.replay import RunReplay, replay
from ..engines.runtime import run_into
from ..models.base import ChatModel
from ..tools.base import Tool
from .suites import BenchTask, Suite

MAX_FAILOVERS = 3
STOP_WAIT_S = 5.0


class ClusterUnitError(RuntimeError):
    """A unit failed on its cluster host (the message is the host's exception)."""


@dataclass
class _UnitState:
    cfg: Any
    tasks: dict[tuple[str, str], tuple[Suite, BenchTask]]
    model_factory: Any
    engine_factory: Any
    models: dict[str, ChatModel] = field(default_factory=dict)

    def model(self, name: str) -> ChatModel:
        m = self.models.get(name)
        if m is None:
            m = self.models[name] = self.model_factory(name)
        return m


@dataclass
class UnitKit:
    """What every unit of one comparison shares on a host (built there once)."""

    config: dict[str, Any]
    model_factory: Any
    engine_factory: Any

    def build(self) -> _UnitState:
        from .runner import CompareConfig, build_suites

        cfg = CompareConfig.from_dict(self.config)
        tasks = {(t.suite, t.task_id): (s, t) for s in build_suites(cfg) for t in s.tasks}
        return _UnitState(cfg, tasks, self.model_factory, self.engine_factory)


def _barrier(t: Tool, io: JobIO) -> Tool:
    """A tool that must not run twice waits until its call is in the driver's journal."""
    if t.idempotent:
        return t

    async def fn(**kw: Any) -> Any:
        await io.ask("checkpoint")
        return await t._call(kw)

    return dataclasses.replace(t, fn=fn)


@dataclass
class UnitJob:
    kit: str
    key: tuple[str, str, str, str]  # suite, task id, mode, model
    engine: str  # what runs: swarm | interleaved | single
    run_id: str | None = None
    replay: RunReplay | None = None

    async def run(self, io: JobIO, st: _UnitState) -> ModelCallFinished | None:
        from .runner import single_call

        found = st.tasks.get((self.key[0], self.key[1]))
        if found is None:
            raise LookupError(f"task {self.key[1]!r} of suite {self.key[0]!r} is not in this host's copy of the "
                              "suites (are the --jsonl files at the same path on every machine?)")
        suite, task = found
        model = st.model(self.key[3])
        if self.engine == "single":
            return await single_call(model, task, st.cfg)
        engine = st.engine_factory(self.engine, model, [_barrier(t, io) for t in suite.tools()], st.cfg)
        await run_into(engine, task.question, io.emit, run_id=self.run_id, replay=self.replay)
        return None


class _Unit(FutureHandler):
    """The driver's end of one unit's channel (a `pool.Handler`)."""

    __slots__ = ("sink", "fut")

    def __init__(self, sink: Any, fut: asyncio.Future[Any]):
        self.sink, self.fut = sink, fut

    def on_event(self, ev: Event) -> None:
        if self.sink is not None:
            self.sink(ev)

    def on_request(self, op: str, args: Any) -> Any:
        if op == "checkpoint" and self.sink is not None:
            self.sink.checkpoint()
        return True



class ClusterUnits:
    """The runner's units on a Ray cluster at `address`."""

    def __init__(self, config: dict[str, Any], model_factory: Any, engine_factory: Any, *, address: str | None = None,
                 hosts: int | None = None):
        require_ray()
        self.kit = UnitKit(config, model_factory, engine_factory)
        self.kit_id = f"compare-{uuid.uuid4().hex[:12]}"
        self.address, self.hosts = address, hosts
        self.pool: HostPool | None = None
        self.failovers = 0
        self._n = 0

    async def open(self) -> ClusterUnits:
        self.pool = await HostPool(self.hosts, address=self.address, label="ponder-compare").open()
        return self

    async def aclose(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.aclose()

    async def _attempt(self, key: tuple[str, str, str, str], engine: str, sink: Any, run_id: str | None,
                       rr: RunReplay | None) -> tuple[str, Any]:
        assert self.pool is not None, "open() first"
        self._n += 1
        jkey = f"{'/'.join(key)}#{self._n}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pool.submit(jkey, UnitJob(self.kit_id, key, engine, run_id, rr), _Unit(sink, fut), self.kit)
        try:
            return await asyncio.shield(fut)  # type: ignore[no-any-return]
        except asyncio.CancelledError:  # the runner's hard limit: stop it there, take in what it sent
            if self.pool.cancel(jkey, "cancelled by the comparison") and not fut.done():
                try:
                    await asyncio.wait({fut}, timeout=STOP_WAIT_S)
                except asyncio.CancelledError:
                    pass
            self.pool.forget(jkey)
            raise

    async def single(self, key: tuple[str, str, str, str]) -> ModelCallFinished:
        for _ in range(MAX_FAILOVERS + 1):
            try:
                status, value = await self._attempt(key, "single", None, None, None)
            except HostLost:
                self.failovers += 1
                continue
            if status != "ok":
                raise ClusterUnitError(str(value))
            return value  # type: ignore[no-any-return]
        raise ClusterUnitError(f"the unit lost its host {MAX_FAILOVERS + 1} times")

    async def engine_run(self, key: tuple[str, str, str, str], engine: str, store: RunStore) -> RunResult:
        """Run one unit's engine on the cluster, journaled here; its result as `runs.run` gives it."""
        events: list[Event] = []
        with runs.recording(events.append, store=store) as sink:
            rr: RunReplay | None = None
            for _ in range(MAX_FAILOVERS + 1):
                try:
                    status, value = await self._attempt(key, engine, sink, rr.run_id if rr else None, rr)
                except HostLost:
                    self.failovers += 1
                    if any(type(e) is RunFinished for e in events):
                        break  # its end had arrived: nothing to run again
                    if any(type(e) is RunStarted for e in events):
                        rr = replay(events)  # continue from what the journal holds
                    continue
                if status != "ok":
                    raise ClusterUnitError(str(value))
                break
            else:
                raise ClusterUnitError(f"the unit lost its host {MAX_FAILOVERS + 1} times")
        fin = next((e for e in reversed(events) if type(e) is RunFinished), None)
        if fin is None:
            raise ClusterUnitError("the unit's run ended without its result")
        return RunResult.model_construct(answer=fin.answer, status=fin.status, reason=fin.reason,  # type: ignore[attr-defined]
                                         run_id=fin.run_id, metrics=fin.metrics, events=events,  # type: ignore[attr-defined]
                                         messages=[])
