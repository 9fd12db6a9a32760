"""Durable resume from the journal, at every point a process could die.

Each test runs once uninterrupted, recording the stream; then, for every prefix of that
stream (a process killed after event K), it journals only that prefix, resumes from the
store with a fresh engine and a fresh scripted model (the test double), and checks the
answer is the same, no finished model call is paid for twice, and no tool call that had a
result runs again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ponder import runs
from ponder.core.events import (
    AgentFinished,
    AgentSpawned,
    ModelCallFinished,
    RunFinished,
    RunStarted,
    ToolRecovered,
    ToolResult,
    ToolStarted,
)
from ponder.core.journal import Journal
from ponder.core.messages import ToolCall
from ponder.core.store import RunStore
from ponder.engines.interleaved import Interleaved
from ponder.engines.swarm import Swarm
from ponder.runs import ResumeError
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_swarm import fan_out, n_tool_results, sub_name, subtask, swarm_script  # noqa: E402

pytestmark = pytest.mark.timeout(120)
RUNS: list[str] = []


@tool(idempotent=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool  # not idempotent: on resume a call in flight is reported as unknown, never re-run
def send(x: str) -> str:
    """Send x somewhere (a side effect)."""
    RUNS.append(x)
    return f"sent {x}"


# call ids come from the conversation, as a provider's would be unique, not from the test
# double's own request counter (which starts again in the resumed process)
def interleaved_script(req, n):
    k = n_tool_results(req)
    if k < 3:
        call = ToolCall(id=f"c{k}", name="send", arguments={"x": "k1"}) if k == 1 else \
            ToolCall(id=f"c{k}", name="add", arguments={"a": k, "b": 1})
        return Reply(reasoning=f"step {k}", tool_calls=[call])
    return Reply(reasoning="done", content="answer 42")


def _sub(req, n):
    k = n_tool_results(req)
    name = sub_name(req)
    if k < 2:
        return Reply(reasoning="r", tool_calls=[ToolCall(id=f"{name}-{k}", name="add", arguments={"a": k, "b": len(name)})])
    return Reply(reasoning="done", content=f"result of {name}")


def swarm_model() -> ScriptedModel:
    subs = [subtask(f"w{i}", tools=["add"]) for i in range(4)]
    return ScriptedModel(swarm_script(fan_out(subs, "all: " + " ".join(f"[w{i}]" for i in range(4))), _sub))


async def _crash_and_resume(tmp_path, make_engine, make_model, task):
    full: list = []
    m = make_model()
    fin = await runs.execute(make_engine(m), task, full.append, store=RunStore(tmp_path / "full.db"))
    assert fin.status == "ok"
    run_id = full[0].run_id
    for k in range(1, len(full)):
        if type(full[k - 1]) is AgentSpawned:
            # a plan starts its sub-agents without awaiting in between, and the journal flushes only
            # at await points: a real crash cannot split that burst, so neither does the simulation
            continue
        store = RunStore(tmp_path / f"k{k}.db")
        j = Journal(store)
        for ev in full[:k]:  # the process died after event k
            j(ev)
        j.close()
        assert store.run(run_id)["status"] == "interrupted"
        m2 = make_model()
        RUNS.clear()
        again: list = []
        fin2 = await runs.resume_into(run_id, again.append, store=store, engine=make_engine(m2))
        paid_before = sum(1 for e in full[:k] if type(e) is ModelCallFinished)
        where = f"killed after event {k} ({full[k - 1].type} of {full[k - 1].agent})"
        assert fin2.status == "ok" and fin2.answer == fin.answer, where
        assert fin2.run_id == run_id and isinstance(again[0], RunStarted) and again[0].attempt == 1, where
        # a finished call is re-issued only when its reply had not reached the conversation yet
        assert paid_before + len(m2.requests) <= len(m.requests) + 1, where
        done_results = {e.call_id for e in full[:k] if type(e) is ToolResult}
        assert not done_results & {e.call_id for e in again if type(e) is ToolStarted}, where
        stored = store.events(run_id)
        assert isinstance(stored[-1], RunFinished) and store.run(run_id)["status"] == "ok", where
        assert [r[0] for r in store.event_rows(run_id)] == list(range(len(stored))), where
        assert store.integrity_check() == "ok"
        yield k, full, again, fin2
        store.close()


async def test_interleaved_resumes_from_every_point(tmp_path):
    recovered = set()
    async for _k, _full, again, fin2 in _crash_and_resume(
            tmp_path, lambda m: Interleaved(m, [add, send], thinking="on"), lambda: ScriptedModel(interleaved_script), "go"):
        for ev in again:
            if type(ev) is ToolRecovered:
                recovered.add((ev.name, ev.action))
        assert fin2.metrics.attempts == 2
    # both policies were exercised: the side-effecting tool was never re-run, the pure one was
    assert recovered == {("send", "unknown"), ("add", "rerun")}


async def test_swarm_resumes_from_every_point_without_rerunning_finished_subagents(tmp_path):
    async for k, full, again, fin2 in _crash_and_resume(
            tmp_path, lambda m: Swarm(m, [add]), swarm_model, "go"):
        finished = {e.agent_id for e in full[:k] if type(e) is AgentFinished}
        rerun = {e.agent for e in again if type(e) is ModelCallFinished}
        assert not finished & rerun, f"killed after event {k}: finished sub-agents {finished & rerun} ran again"
        assert fin2.metrics.agents == 4 and fin2.metrics.critical_steps == 5, (
            k, full[k - 1], fin2.metrics.orchestrator_steps, [(t["name"], t["steps"]) for t in fin2.metrics.extra["tasks"]])


async def test_resume_refuses_runs_that_cannot_continue(tmp_path):
    store = RunStore(tmp_path / "r.db")
    fin = await runs.execute(Interleaved(ScriptedModel([Reply(reasoning="r", content="x")])), "t", lambda e: None,
                             store=store)
    with pytest.raises(ResumeError, match="already ended with status 'ok'"):
        await runs.resume_into(fin.run_id, lambda e: None, store=store)
    with pytest.raises(ResumeError, match="no run 'nope'"):
        await runs.resume_into("nope", lambda e: None, store=store)
