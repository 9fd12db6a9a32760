"""Swarm engine tests on the ScriptedModel test double (no network, no real model)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest

from ponder.core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    MemoryWrite,
    RunFinished,
    StepStarted,
    ToolResult,
)
from ponder.core.messages import ToolCall
from ponder.engines.base import Budgets
from ponder.engines.swarm import Blackboard, Swarm, TaskRecord, check_dag, critical_steps, stage_breakdown
from ponder.engines.swarm.scheduler import DependencyError
from ponder.models.base import ChatRequest
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool

pytestmark = pytest.mark.timeout(60)

# ---- test-double scripts: one function plays the orchestrator and every sub-agent ------------
_SUB = re.compile(r"You are sub-agent (\S+) in a swarm")


def tool_names(req: ChatRequest) -> list[str]:
    return [t["function"]["name"] for t in req.tools]


def is_orchestrator(req: ChatRequest) -> bool:
    return bool({"finish", "wait", "plan"} & set(tool_names(req)))


def orch_turn(req: ChatRequest) -> int:
    return sum(1 for m in req.messages if m.role == "assistant")


def sub_name(req: ChatRequest) -> str:
    for m in req.messages:
        if m.role == "system" and (mm := _SUB.search(m.content or "")):
            return mm.group(1)
    return "?"


def sub_task(req: ChatRequest) -> str:
    return next((m.content or "" for m in req.messages if m.role == "user"), "")


def n_tool_results(req: ChatRequest) -> int:
    return sum(1 for m in req.messages if m.role == "tool")


_ids = iter(range(10**9))


def call(name: str, /, **args: object) -> ToolCall:
    return ToolCall(id=f"c{next(_ids)}", name=name, arguments=dict(args))


def subtask(name: str, task: str | None = None, depends_on: list[str] | None = None,
            tools: list[str] | None = None) -> dict[str, object]:
    return {"name": name, "instructions": f"You do {name}.", "task": task or f"work on {name}",
            "depends_on": depends_on or [], "tools": tools or []}


Script = Callable[[ChatRequest, int], Reply]


def swarm_script(orch: Script, sub: Script | None = None) -> Script:
    def default_sub(req: ChatRequest, n: int) -> Reply:
        return Reply(reasoning="thinking", content=f"answer from {sub_name(req)}")

    sub_fn = sub or default_sub
    return lambda req, n: orch(req, n) if is_orchestrator(req) else sub_fn(req, n)


def fan_out(subtasks: list[dict[str, object]], answer: str = "done") -> Script:
    """Orchestrator: step 1 plan, step 2 wait(all), step 3 finish(answer)."""
    def orch(req: ChatRequest, n: int) -> Reply:
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="plan it", tool_calls=[call("plan", subtasks=subtasks)])
        if t == 1:
            return Reply(reasoning="wait", tool_calls=[call("wait", task_ids=[], mode="all")])
        return Reply(reasoning="done", tool_calls=[call("finish", answer=answer)])

    return orch


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def tool_results(events: list, name: str) -> list[ToolResult]:
    return [e for e in of(events, ToolResult) if e.name == name]


# ---- the basics ------------------------------------------------------------------------------
async def test_fan_out_answer_metrics_and_single_run_finished():
    m = ScriptedModel(swarm_script(fan_out([subtask("a"), subtask("b"), subtask("c")], "A [a], B [b], C [c]")))
    res = await Swarm(m).run("do three things")
    assert res.status == "ok" and res.answer == "A [a], B [b], C [c]"
    assert len(of(res.events, AgentSpawned)) == 3
    assert {e.status for e in of(res.events, AgentFinished)} == {"ok"}
    assert len(of(res.events, RunFinished)) == 1 and isinstance(res.events[-1], RunFinished)
    # orchestrator 3 steps + 3 sub-agents x 1 step; the three ran in parallel with the
    # orchestrator's wait step: critical = plan, max(sub, wait step), finish = 3
    assert res.metrics.steps == 6 and res.metrics.critical_steps == 3
    assert res.metrics.parallelism == pytest.approx(2.0)
    assert res.metrics.agents == 3 and res.metrics.serial_collapse is False
    assert res.metrics.extra["citations"]["cited"] == ["a", "b", "c"]
    wait_text = tool_results(res.events, "wait")[0].content
    assert "[a] task t1 ok" in wait_text and "answer from b" in wait_text


async def test_orchestrator_may_answer_in_content_and_citations_are_checked():
    def orch(req, n):
        if orch_turn(req) == 0:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("x"), subtask("y")]),
                                                    call("wait")])
        return Reply(reasoning="r", content="X is [x]; Z is [ghost]")

    res = await Swarm(ScriptedModel(swarm_script(orch))).run("t")
    assert res.status == "ok" and res.answer == "X is [x]; Z is [ghost]"
    c = res.metrics.extra["citations"]
    assert c["cited"] == ["x"] and c["unknown"] == ["ghost"] and "y" in c["uncited"]


async def test_create_subagent_and_assign_task_with_tools_and_sub_model():
    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"value of {q}"

    def orch(req, n):
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="r", tool_calls=[call("create_subagent", name="finder", instructions="Find facts.",
                                                         tools=["lookup"]),
                                                    call("assign_task", agent="finder", task="find x")])
        if t == 1:
            return Reply(reasoning="r", tool_calls=[call("wait", task_ids=["t1"])])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="x per [finder]")])

    def sub(req, n):
        if n_tool_results(req) == 0:
            return Reply(reasoning="r", tool_calls=[call("lookup", q="x")])
        return Reply(reasoning="r", content="found: " + req.messages[-1].content)

    boss, worker = ScriptedModel(swarm_script(orch), name_="boss"), ScriptedModel(swarm_script(orch, sub), name_="worker")
    res = await Swarm(boss, [lookup], sub_model=worker).run("find x")
    assert res.status == "ok"
    assert all(is_orchestrator(r) for r in boss.requests) and not any(is_orchestrator(r) for r in worker.requests)
    assert tool_names(worker.requests[0]) == ["lookup"]  # only the tools the orchestrator granted
    fin = of(res.events, AgentFinished)[0]
    assert fin.agent_id == "finder" and fin.answer == "found: value of x" and fin.steps == 2
    assert of(res.events, AgentSpawned)[0].model == "worker"


async def test_unknown_tool_for_subagent_is_a_tool_error():
    def orch(req, n):
        if orch_turn(req) == 0:
            return Reply(reasoning="r", tool_calls=[call("create_subagent", name="a", instructions="i", tools=["nope"])])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="no")])

    res = await Swarm(ScriptedModel(swarm_script(orch))).run("t")
    r = tool_results(res.events, "create_subagent")[0]
    assert not r.ok and "unknown tools ['nope']" in r.content


# ---- scheduling -------------------------------------------------------------------------------
async def test_dag_order_and_dependency_results_flow_in():
    subs = [subtask("c", depends_on=["b"]), subtask("a"), subtask("b", depends_on=["a"])]

    def sub(req, n):
        return Reply(reasoning="r", content=f"out-{sub_name(req)}", delay_s=0.05)

    m = ScriptedModel(swarm_script(fan_out(subs), sub))
    res = await Swarm(m).run("chain")
    first_step = {e.agent: e.ts for e in reversed(of(res.events, StepStarted))}
    done = {e.agent_id: e.ts for e in of(res.events, AgentFinished)}
    assert done["a"] <= first_step["b"] and done["b"] <= first_step["c"]
    c_req = next(r for r in m.requests if sub_name(r) == "c")
    assert "Results of the tasks you depend on" in sub_task(c_req) and "[b]" in sub_task(c_req) and "out-b" in sub_task(c_req)
    tasks = {t["name"]: t for t in res.metrics.extra["tasks"]}
    assert tasks["c"]["depends_on"] == [tasks["b"]["task_id"]]
    # a -> b -> c is a chain: critical = plan step + 3 sub steps + finish step (wait step overlaps)
    assert res.metrics.critical_steps == 5


async def test_cycle_and_unknown_dependency_are_rejected_as_tool_errors():
    def orch(req, n):
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("a", depends_on=["b"]),
                                                                           subtask("b", depends_on=["a"])])])
        if t == 1:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("a", depends_on=["zzz"])])])
        if t == 2:
            return Reply(reasoning="r", tool_calls=[call("create_subagent", name="s", instructions="i"),
                                                    call("assign_task", agent="s", task="x", depends_on=["t99"])])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="gave up")])

    res = await Swarm(ScriptedModel(swarm_script(orch))).run("t")
    plans = tool_results(res.events, "plan")
    assert not plans[0].ok and "cycle" in plans[0].content and "'a'" in plans[0].content
    assert not plans[1].ok and "unknown dependencies ['zzz']" in plans[1].content
    assign = tool_results(res.events, "assign_task")[0]
    assert not assign.ok and "t99" in assign.content
    assert of(res.events, AgentSpawned) == []


def test_check_dag_unit():
    check_dag({"t2": ["t1"], "t3": ["t2", "t1"]}, ["t1"])
    with pytest.raises(DependencyError, match="cycle"):
        check_dag({"a": ["c"], "b": ["a"], "c": ["b"]}, [])
    with pytest.raises(DependencyError, match="itself"):
        check_dag({"a": ["a"]}, [])
    with pytest.raises(DependencyError, match="unknown"):
        check_dag({"a": ["x"]}, [])


@pytest.mark.parametrize("max_parallel,expected_peak", [(100, 100), (7, 7)])
async def test_100_concurrent_subagents_bounded_by_max_parallel(max_parallel, expected_peak):
    subs = [subtask(f"w{i}") for i in range(100)]

    def sub(req, n):
        return Reply(reasoning="r", content=f"result {sub_name(req)}", delay_s=0.1)

    res = await Swarm(ScriptedModel(swarm_script(fan_out(subs), sub)), max_parallel=max_parallel).run("many")
    assert res.status == "ok" and res.metrics.agents == 100
    assert res.metrics.peak_concurrency == expected_peak
    assert all(e.status == "ok" for e in of(res.events, AgentFinished))
    assert res.metrics.spurious_agents == 0


async def test_wait_any_delivers_results_as_they_finish():
    delays = {"fast": 0.02, "slow": 0.4}

    def sub(req, n):
        return Reply(reasoning="r", content=f"done {sub_name(req)}", delay_s=delays[sub_name(req)])

    def orch(req, n):
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("slow"), subtask("fast")])])
        if t in (1, 2):
            return Reply(reasoning="r", tool_calls=[call("wait", mode="any")])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="[fast] [slow]")])

    res = await Swarm(ScriptedModel(swarm_script(orch, sub))).run("t")
    waits = tool_results(res.events, "wait")
    assert "[fast]" in waits[0].content and "[slow]" not in waits[0].content and "still running: t1" in waits[0].content
    assert "[slow]" in waits[1].content and "[fast]" not in waits[1].content
    assert waits[0].ts < of(res.events, AgentFinished)[-1].ts  # the first result came before the slow one ended


# ---- failure isolation, budgets, cancellation --------------------------------------------------
async def test_failing_subagents_are_isolated():
    def sub(req, n):
        if sub_name(req) == "bad":
            return Reply(error="model exploded")
        return Reply(reasoning="r", content="fine")

    def factory(model, tools, **kw):
        if kw["agent_id"] == "crash":
            raise RuntimeError("factory crashed")
        from ponder.engines.swarm import interleaved_factory
        return interleaved_factory(model, tools, **kw)

    m = ScriptedModel(swarm_script(fan_out([subtask("good"), subtask("bad"), subtask("crash")], "[good]"), sub))
    res = await Swarm(m, agent_factory=factory).run("t")
    st = {e.agent_id: e for e in of(res.events, AgentFinished)}
    assert st["good"].status == "ok"
    assert st["bad"].status == "error" and "model exploded" in (st["bad"].error or "")
    assert st["crash"].status == "error" and "factory crashed" in (st["crash"].error or "")
    assert res.status == "ok" and res.answer == "[good]"
    assert "ERROR:" in tool_results(res.events, "wait")[0].content


async def test_subagent_timeout_is_an_error_result():
    def sub(req, n):
        return Reply(reasoning="r", content="late", delay_s=5.0 if sub_name(req) == "slow" else 0.0)

    t0 = time.perf_counter()
    res = await Swarm(ScriptedModel(swarm_script(fan_out([subtask("slow"), subtask("quick")]), sub)),
                      sub_timeout_s=0.2).run("t")
    st = {e.agent_id: e for e in of(res.events, AgentFinished)}
    assert st["slow"].status == "error" and "timed out" in (st["slow"].error or "")
    assert st["quick"].status == "ok" and res.status == "ok" and time.perf_counter() - t0 < 3


async def test_orchestrator_step_budget():
    def orch(req, n):
        assert "finish" in tool_names(req)
        if tool_names(req) == ["finish"]:  # last step: only finish is offered
            return Reply(reasoning="r", content="")
        return Reply(reasoning="r", tool_calls=[call("memory_write", key=f"k{orch_turn(req)}", value="v")])

    res = await Swarm(ScriptedModel(swarm_script(orch)), budgets=Budgets(max_steps=3)).run("loop forever")
    assert res.status == "budget" and "3 steps" in (res.reason or "")
    assert any(b.budget == "max_steps" for b in of(res.events, BudgetHit))
    assert res.metrics.orchestrator_steps == 3


async def test_subagent_step_budget():
    @tool
    def work(item: int = 0) -> str:
        """Do work."""
        return "ok"

    def sub(req, n):
        return Reply(reasoning="r", tool_calls=[call("work", item=n)])

    res = await Swarm(ScriptedModel(swarm_script(fan_out([subtask("loop", tools=["work"])]), sub)), [work],
                      sub_budgets=Budgets(max_steps=2)).run("t")
    fin = of(res.events, AgentFinished)[0]
    assert fin.status == "budget" and fin.steps == 2


async def test_swarm_tool_call_budget_is_shared():
    @tool
    async def work(item: int = 0) -> str:
        """Do work."""
        return "ok"

    def sub(req, n):
        if n_tool_results(req) < 3:
            return Reply(reasoning="r", tool_calls=[call("work", item=n)])
        return Reply(reasoning="r", content=f"done {sub_name(req)}")

    subs = [subtask(f"w{i}", tools=["work"]) for i in range(4)]
    res = await Swarm(ScriptedModel(swarm_script(fan_out(subs, "partial [w0]"), sub)), [work],
                      budgets=Budgets(max_steps=5, max_tool_calls=5)).run("t")
    works = tool_results(res.events, "work")
    assert sum(1 for r in works if r.ok) == 5  # exactly the budget ran, across all agents
    assert any("tool-call budget" in r.content for r in works if not r.ok)
    assert [b.budget for b in of(res.events, BudgetHit)].count("max_tool_calls") == 1
    assert res.status == "budget" and res.answer == "partial [w0]"


async def test_token_budget_stops_the_tree():
    def sub(req, n):
        return Reply(reasoning="r", content="x " * 50, delay_s=0.05)

    subs = [subtask(f"w{i}") for i in range(5)]
    res = await Swarm(ScriptedModel(swarm_script(fan_out(subs), sub)), budgets=Budgets(max_steps=15, max_tokens=150)).run("t")
    assert res.status == "budget" and "max_tokens" in (res.reason or "")
    assert of(res.events, BudgetHit)[0].budget == "max_tokens"
    assert isinstance(res.events[-1], RunFinished)


async def test_wall_budget():
    def sub(req, n):
        return Reply(reasoning="r", content="zzz", delay_s=10)

    t0 = time.perf_counter()
    res = await Swarm(ScriptedModel(swarm_script(fan_out([subtask("a"), subtask("b")]), sub)),
                      budgets=Budgets(max_steps=15, wall_timeout_s=0.3)).run("t")
    assert time.perf_counter() - t0 < 3
    assert res.status == "budget" and "wall_timeout_s" in (res.reason or "")
    assert {e.status for e in of(res.events, AgentFinished)} == {"cancelled"}


async def test_cancellation_of_the_whole_tree():
    def sub(req, n):
        return Reply(reasoning="r", content="never", delay_s=30)

    cancel = asyncio.Event()
    sw = Swarm(ScriptedModel(swarm_script(fan_out([subtask(f"w{i}") for i in range(10)]), sub)))
    events = []
    t0 = time.perf_counter()
    async for ev in sw.stream("t", cancel=cancel):
        events.append(ev)
        if isinstance(ev, AgentSpawned) and len(of(events, AgentSpawned)) == 10:
            asyncio.get_running_loop().call_later(0.1, cancel.set)
    assert time.perf_counter() - t0 < 5
    fin = events[-1]
    assert isinstance(fin, RunFinished) and fin.status == "cancelled"
    finished = of(events, AgentFinished)
    assert len(finished) == 10 and {e.status for e in finished} == {"cancelled"}
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("swarm-")]


async def test_consumer_stopping_early_cancels_subagents():
    def sub(req, n):
        return Reply(reasoning="r", content="never", delay_s=30)

    sw = Swarm(ScriptedModel(swarm_script(fan_out([subtask("a"), subtask("b")]), sub)))
    gen = sw.stream("t")
    async for ev in gen:
        if isinstance(ev, AgentSpawned) and ev.agent_id == "b":
            break
    await gen.aclose()
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("swarm-") and not t.done()]


# ---- metrics ------------------------------------------------------------------------------------
def test_critical_steps_hand_checked():
    # Synchronous stages (the PARL formula): step 1 launches and awaits A(3) and B(5),
    # step 2 launches and awaits C(2), step 3 finishes.
    #   Σ_t (1 + max S_sub) = (1+5) + (1+2) + (1+0) = 10
    recs = [TaskRecord("t1", "A", "A", launched_at=1, steps=3, delivered_at=1),
            TaskRecord("t2", "B", "B", launched_at=1, steps=5, delivered_at=1),
            TaskRecord("t3", "C", "C", launched_at=2, steps=2, delivered_at=2)]
    assert critical_steps(3, recs) == 10
    assert [s["term"] for s in stage_breakdown(3, recs)] == [6, 3, 1]
    # Asynchronous: the same work, but awaited one step later (steps 2 and 4); the
    # orchestrator's step 2 runs while A and B work, so it is not added on top:
    #   O1=1; A ends 1+3=4, B ends 1+5=6; O2=2; O3=max(O2, A, B)+1=7; C ends 7+2=9;
    #   O4=8; O5=max(O4, C)+1=10
    recs2 = [TaskRecord("t1", "A", "A", launched_at=1, steps=3, delivered_at=2),
             TaskRecord("t2", "B", "B", launched_at=1, steps=5, delivered_at=2),
             TaskRecord("t3", "C", "C", launched_at=3, steps=2, delivered_at=4)]
    assert critical_steps(5, recs2) == 10
    # A dependency chain inside a stage: D(4) waits for A(3): 1 + 3 + 4, then the next step
    recs3 = [TaskRecord("t1", "A", "A", launched_at=1, steps=3, delivered_at=1),
             TaskRecord("t2", "D", "D", launched_at=1, steps=4, delivered_at=1, depends_on=["t1"])]
    assert critical_steps(2, recs3) == 1 + 3 + 4 + 1
    # never delivered (cancelled / answered without waiting) still bounds the run's end
    assert critical_steps(2, [TaskRecord("t1", "A", "A", launched_at=1, steps=9)]) == 10


async def test_critical_steps_end_to_end_matches_hand_count():
    steps = {"A": 3, "B": 5, "C": 2}

    def sub(req, n):
        name = sub_name(req)
        if n_tool_results(req) < steps[name] - 1:
            return Reply(reasoning="r", tool_calls=[call("memory_write", key=f"{name}{n}", value="v")])
        return Reply(reasoning="r", content=f"{name} done")

    def orch(req, n):
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("A"), subtask("B")]), call("wait")])
        if t == 1:
            return Reply(reasoning="r", tool_calls=[call("plan", subtasks=[subtask("C")]), call("wait")])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="[A][B][C]")])

    res = await Swarm(ScriptedModel(swarm_script(orch, sub))).run("t")
    assert {t["name"]: t["steps"] for t in res.metrics.extra["tasks"]} == steps
    assert res.metrics.critical_steps == 10  # (1+5) + (1+2) + (1+0)
    assert res.metrics.steps == 3 + 3 + 5 + 2
    assert res.metrics.parallelism == pytest.approx(13 / 10)
    assert [s["term"] for s in res.metrics.extra["stages"]] == [6, 3, 1]
    assert len(of(res.events, MemoryWrite)) == 2 + 4 + 1


async def test_serial_collapse_flagged_and_r_parallel_zero():
    def orch(req, n):
        t = orch_turn(req)
        if t < 4:  # create/assign one task, wait for it, then the next: one at a time
            k = t // 2
            if t % 2 == 0:
                return Reply(reasoning="r", tool_calls=[call("create_subagent", name=f"s{k}", instructions="i"),
                                                        call("assign_task", agent=f"s{k}", task=f"part {k}")])
            return Reply(reasoning="r", tool_calls=[call("wait")])
        return Reply(reasoning="r", tool_calls=[call("finish", answer="[s0] [s1]")])

    serial = await Swarm(ScriptedModel(swarm_script(orch))).run("t")
    assert serial.metrics.serial_collapse is True and serial.metrics.rewards["r_parallel"] == 0.0
    parallel = await Swarm(ScriptedModel(swarm_script(fan_out([subtask("a"), subtask("b")]),
                                                      lambda r, n: Reply(reasoning="r", content=sub_name(r),
                                                                         delay_s=0.05)))).run("t")
    assert parallel.metrics.serial_collapse is False and parallel.metrics.rewards["r_parallel"] > 0


async def test_spurious_parallelism_flagged():
    def sub(req, n):
        return Reply(reasoning="r", content={"a": "same answer", "b": "Same answer!", "c": "", "d": "distinct"}[sub_name(req)])

    res = await Swarm(ScriptedModel(swarm_script(fan_out([subtask(x) for x in "abcd"]), sub))).run("t",
                                                                                                  score_fn=lambda a: 0.5)
    assert res.metrics.spurious_agents == 2  # one duplicate of "same answer", one empty
    assert res.metrics.rewards["r_finish"] == pytest.approx(0.5)
    assert res.metrics.rewards["r_perf"] == 0.5
    r = res.metrics.rewards
    assert r["r_parl"] == pytest.approx(0.1 * r["r_parallel"] + 0.1 * r["r_finish"] + 0.5)


# ---- shared memory --------------------------------------------------------------------------------
async def test_shared_memory_provenance_between_agents():
    def sub(req, n):
        name = sub_name(req)
        if name == "writer" and n_tool_results(req) == 0:
            return Reply(reasoning="r", tool_calls=[call("memory_write", key="fact", value="42")])
        if name == "reader" and n_tool_results(req) == 0:
            return Reply(reasoning="r", tool_calls=[call("memory_read", key="fact")])
        return Reply(reasoning="r", content=f"{name}: " + (req.messages[-1].content or ""))

    subs = [subtask("writer"), subtask("reader", depends_on=["writer"])]
    res = await Swarm(ScriptedModel(swarm_script(fan_out(subs), sub))).run("t")
    mw = of(res.events, MemoryWrite)[0]
    assert (mw.agent, mw.key, mw.value, mw.step) == ("writer", "fact", "42", 1)
    reader = next(e for e in of(res.events, AgentFinished) if e.agent_id == "reader")
    assert "fact (by writer, step 1): 42" in (reader.answer or "")


def test_blackboard_budget_truncates_and_says_so():
    b = Blackboard(budget_chars=300)
    for i in range(20):
        b.write(f"k{i}", "x" * 100, agent=f"a{i}", step=i)
    text = b.read()
    assert len(text) < 300 + 200 and "truncated" in text and "of 20 entries" in text
    assert "k3 (by a3, step 3)" in b.read(key="k3")
    assert b.search("k7")[0].key == "k7"
    assert "x" * 100 in b.read(key="k5")


# ---- guided mode (small constrained models) --------------------------------------------------------
async def test_guided_mode_forces_plan_wait_finish():
    def orch(req, n):
        # the same three tools every step (a prompt prefix that never changes), one forced
        assert tool_names(req) == ["plan", "wait", "finish"]
        forced = req.tool_choice["function"]["name"]
        if forced == "plan":
            return Reply(tool_calls=[call("plan", subtasks=[subtask("a"), subtask("a"), subtask("b")])])
        if forced == "wait":
            return Reply(tool_calls=[call("wait")])
        return Reply(tool_calls=[call("finish", answer="[a] [a-2] [b]")])

    m = ScriptedModel(swarm_script(orch))
    res = await Swarm(m, guided=True, min_subtasks=3).run("Find these:\nitem one\nitem two\nitem three")
    assert [r.tool_choice["function"]["name"] for r in m.requests if is_orchestrator(r)] == ["plan", "wait", "finish"]
    plan_params = m.requests[0].tools[0]["function"]["parameters"]["properties"]["subtasks"]
    assert plan_params["minItems"] == 3 and plan_params["maxItems"] == 4  # one sub-agent per piece at most
    # a subtask is one of the task's own lines: a constrained decoder cannot garble a name
    assert plan_params["items"]["properties"]["task"]["enum"] == ["Find these:", "item one", "item two", "item three"]
    assert sorted(e.agent_id for e in of(res.events, AgentSpawned)) == ["a", "a-2", "b"]  # duplicates renamed
    assert res.status == "ok"


def test_task_pieces_are_lines_and_listed_items():
    from ponder.engines.swarm.orchestrator import task_pieces

    assert task_pieces("Find the year for each:\n1. A Co\n\n2) B Co\n1. A Co") == [
        "Find the year for each:", "1. A Co", "2) B Co"]
    from ponder.engines.swarm.state import unlisted

    assert [unlisted(x) for x in ("1. A Co", "2) B Co", "- C Co", "1990 Expo")] == ["A Co", "B Co", "C Co", "1990 Expo"]
    assert task_pieces("For each of 3 companies, find the CEO: Alpha Labs; Beta Works; Gamma Inc.\nUse the tools.") == [
        "Alpha Labs", "Beta Works", "Gamma Inc", "Use the tools."]
    assert task_pieces("One question: what is 2+2?") == ["One question: what is 2+2?"]
