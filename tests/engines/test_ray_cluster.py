"""Swarms and comparisons on a real multi-node Ray cluster (three nodes on this machine,
`ray.cluster_utils.Cluster`, one CPU each), against the mock OpenAI-compatible server (a test
double in its own process, reachable from every node on loopback).

One cluster for the module (started and stopped here); each test opens its own hosts and
closes them. The node-removal test runs last: it leaves the cluster one node short.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ponder import runs
from ponder.core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    MemoryWrite,
    MessageAppended,
    ModelCallFinished,
    RunFinished,
    StepStarted,
    ToolResult,
)
from ponder.core.store import RunStore
from ponder.engines.base import Budgets
from ponder.engines.replay import replay
from ponder.engines.swarm import Swarm
from ponder.models.registry import model
from ponder.tools.base import tool

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from mock_openai_server import MockServer  # noqa: E402

SCRIPTS = str(Path(__file__).resolve().parent / "ray_scripts.py")
DRIVER = str(Path(__file__).resolve().parent / "ray_driver.py")

pytestmark = pytest.mark.timeout(120)


@tool
async def work(item: int = 0) -> str:
    """Do one unit of work (not idempotent: each call waits for the journal first)."""
    await asyncio.sleep(0.01)
    return f"item {item} ok"


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    # this module's tools travel to the hosts by value (the hosts cannot import a test module)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 2}})
    for _ in range(2):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="WARNING")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def store(tmp_path):
    st = RunStore(tmp_path / "runs.db")
    yield st
    st.close()


def _ids(events) -> dict[str, str]:
    return {e.name: e.agent_id for e in events if isinstance(e, AgentSpawned)}


def test_without_ray_nothing_imports_ray():
    code = (
        "import asyncio, sys\n"
        "import ponder\n"
        "from ponder.engines.swarm import Swarm\n"
        "from ponder.engines.build import EngineConfig, build_engine\n"
        "from ponder.testing import Reply, ScriptedModel\n"
        "def script(req, n):\n"
        "    names = [t['function']['name'] for t in req.tools]\n"
        "    if 'plan' in names and not any(m.role == 'tool' for m in req.messages):\n"
        "        return Reply(tool_calls=[('plan', {'subtasks': [{'name': 'a', 'task': 'x'}, {'name': 'b', 'task': 'y'}]})])\n"
        "    if 'plan' in names:\n"
        "        return Reply(tool_calls=[('finish', {'answer': 'done [a] [b]'})]) if sum(m.role == 'tool' for m in req.messages) > 1 "
        "else Reply(tool_calls=[('wait', {})])\n"
        "    return Reply(reasoning='r', content='sub answer')\n"
        "res = asyncio.run(Swarm(ScriptedModel(script), []).run('go'))\n"
        "assert res.status == 'ok' and res.metrics.agents == 2, (res.status, res.reason)\n"
        "build_engine(EngineConfig(mode='swarm', model='smollm2', tools=[]))\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "sys.modules['ray'] = None  # as if Ray were not installed: asking for it is one clear error\n"
        "from ponder.core.errors import ConfigError\n"
        "try:\n"
        "    Swarm(ScriptedModel(script), [], executor='ray')\n"
        "except ConfigError as e:\n"
        "    assert \"pip install 'ponder[ray]'\" in str(e), e\n"
        "else:\n"
        "    raise AssertionError('no error without Ray')\n"
        "print('no ray')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no ray" in out.stdout


def test_unreachable_cluster_is_one_clear_error(tmp_path):
    from ponder.engines.cluster.pool import ClusterError, _probe

    out = subprocess.run([sys.executable, "-m", "ponder.cli.main", "run", "--mode", "swarm", "--ray-address",
                          "127.0.0.1:9", "--model", "openai:http://127.0.0.1:9/v1#mock", "--db", str(tmp_path / "r.db"),
                          "--json", "q"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    fin = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 1 and fin["status"] == "error", out.stderr[-2000:]
    assert "no Ray cluster answers at 127.0.0.1:9" in fin["reason"] and "ray start --head" in fin["reason"]
    with pytest.raises(ClusterError, match="not a Ray address"):
        _probe("my-cluster")


async def test_swarm_spreads_over_nodes_and_is_journaled(cluster, store):
    with MockServer(0.05) as url:
        sw = Swarm(model(f"openai:{url}#mock"), [work], max_parallel=20, executor="ray",
                   sub_budgets=Budgets(max_steps=6))
        try:
            res = await runs.run(sw, "FANOUT 9 STEPS 2: split the work", store=store)
        finally:
            await sw.aclose()
    assert res.status == "ok", res.reason
    assert res.metrics.agents == 9 and res.answer and res.answer.count("[w") == 9
    where = res.metrics.extra["executor"]
    assert where["kind"] == "ray" and where["hosts"] == 3 and where["nodes"] == 3, where  # one host per node
    assert sorted(where["jobs_per_host"].values()) == [3, 3, 3]
    fins = [e for e in res.events if isinstance(e, AgentFinished)]
    assert sorted(e.agent_id for e in fins) == sorted(_ids(res.events).values()) and {e.status for e in fins} == {"ok"}
    assert res.metrics.critical_steps == 1 + 3 + 1 and res.metrics.steps == 3 + 9 * 3
    # every event the hosts produced is in the driver's journal, in order
    stored = store.events(res.run_id)
    assert [type(e) for e in stored if not type(e).__name__.endswith("Delta")] == \
        [type(e) for e in res.events if not type(e).__name__.endswith("Delta")]
    rr = replay(stored)
    for agent in _ids(res.events).values():  # each sub-agent's conversation: system, task, 2 x (call, result), answer
        assert [m.role for m in rr.lanes[agent].messages] == ["system", "user"] + ["assistant", "tool"] * 2 + ["assistant"]


async def test_shared_memory_round_trip_reaches_the_driver(cluster, store):
    with MockServer(0.02, f"{SCRIPTS}:memory_script") as url:
        sw = Swarm(model(f"openai:{url}#mock"), [], executor="ray", sub_budgets=Budgets(max_steps=5))
        try:
            res = await runs.run(sw, "record findings", store=store)
        finally:
            await sw.aclose()
    assert res.status == "ok", res.reason
    ids = _ids(res.events)
    writes = [e for e in res.events if isinstance(e, MemoryWrite)]
    # written on the driver's blackboard, credited to the sub-agent that wrote it, at its step
    assert sorted((e.key, e.value, e.agent, e.step) for e in writes) == \
        sorted((f"finding/{i}", f"value-{i}", ids[f"m{i}"], 1) for i in range(3))
    for i in range(3):  # each read its own entry back through the driver
        fin = next(e for e in res.events if isinstance(e, AgentFinished) and e.agent_id == ids[f"m{i}"])
        assert f"value-{i}" in (fin.answer or "") and f"by {ids[f'm{i}']}" in (fin.answer or "")
    assert all(f"value-{i}" in (res.answer or "") for i in range(3))  # the orchestrator read all three
    stored = [e for e in store.events(res.run_id) if isinstance(e, MemoryWrite)]
    assert len(stored) == 3


async def test_swarm_wide_tool_budget_is_counted_by_the_driver(cluster):
    with MockServer(0.02) as url:
        sw = Swarm(model(f"openai:{url}#mock"), [work], executor="ray", ray_hosts=2,
                   budgets=Budgets(max_steps=6, max_tool_calls=5), sub_budgets=Budgets(max_steps=8))
        try:
            res = await sw.run("FANOUT 4 STEPS 3: split")
        finally:
            await sw.aclose()
    ran = [e for e in res.events if isinstance(e, ToolResult) and e.agent != "orchestrator" and e.ok]
    refused = [e for e in res.events if isinstance(e, ToolResult) and e.agent != "orchestrator" and not e.ok]
    assert len(ran) == 5 and len(refused) == 4 * 3 - 5, (len(ran), len(refused))
    assert all("tool-call budget (5) is used up" in (e.content or "") for e in refused)
    assert [e.budget for e in res.events if isinstance(e, BudgetHit)] == ["max_tool_calls"]
    assert res.status == "budget"


def _slow_and_quick(events) -> tuple[list[str], list[str]]:
    ids = _ids(events)
    return [ids[f"quick{i}"] for i in range(4)], [ids[f"slow{i}"] for i in range(4)]


async def _run_and_break(sw: Swarm, store: RunStore, brk, pick=lambda h: True) -> tuple[list, int, set[str], list[str]]:
    """Run the mixed swarm; once the quick sub-agents are done and the slow ones are half way,
    `brk(hosts)` takes a host (or its node) away. Returns the events, the index of the break,
    the sub-agents finished before it and those running on the lost host."""
    events: list = []
    cut, done_before, lost = -1, set(), []
    async for ev in runs.stream(sw, "mixed work", store=store):
        events.append(ev)
        if cut < 0 and isinstance(ev, StepStarted) and ev.step >= 3 and ev.agent.startswith("slow"):
            quick, _ = _slow_and_quick(events)
            done_before = {e.agent_id for e in events if isinstance(e, AgentFinished)}
            if set(quick) <= done_before:
                victim = next(h for h in sw.executor.pool.hosts if h.alive and h.jobs and pick(h))
                lost = [key.split("/")[1] for key in victim.jobs]
                await brk(victim)
                cut = len(events)
    return events, cut, done_before, lost


def _check_continued(events, cut: int, done_before: set[str], lost: list[str], store: RunStore) -> None:
    fin = events[-1]
    assert isinstance(fin, RunFinished) and fin.status == "ok", (fin.status, fin.reason)
    quick, slow = _slow_and_quick(events)
    assert cut > 0 and set(quick) <= done_before
    # finished sub-agents are never run again: nothing from them after the break
    assert not [e for e in events[cut:] if e.agent in done_before]
    for a in quick + slow:
        assert [e.status for e in events if isinstance(e, AgentFinished) and e.agent_id == a] == ["ok"]
    assert lost and set(lost) <= set(slow), lost
    for a in lost:
        # continued from its journaled lane (the message numbering goes on), not restarted:
        # at most the one tool call in flight at the break runs again
        after = [e for e in events[cut:] if isinstance(e, MessageAppended) and e.agent == a]
        assert after and after[0].index > 2, [e.index for e in after]
        assert len([e for e in events if isinstance(e, ToolResult) and e.agent == a]) <= 6 + 1
        assert len([e for e in events if isinstance(e, ModelCallFinished) and e.agent == a]) <= 7 + 1
    where = fin.metrics.extra["executor"]
    assert where["failovers"] >= len(lost) and where["hosts_lost"] >= 1, where
    rr = replay(store.events(fin.run_id))  # the journal holds one whole conversation per sub-agent
    for a in slow:
        assert [m.role for m in rr.lanes[a].messages] == ["system", "user"] + ["assistant", "tool"] * 6 + ["assistant"]


async def test_killed_worker_sub_agents_continue_elsewhere(cluster, store):
    async def kill(victim):
        os.kill(victim.pid, signal.SIGKILL)  # the host's Ray worker process, mid-run

    with MockServer(0.2, f"{SCRIPTS}:mixed_script") as url:
        sw = Swarm(model(f"openai:{url}#mock"), [work], executor="ray", sub_budgets=Budgets(max_steps=10))
        try:
            events, cut, done_before, lost = await _run_and_break(sw, store, kill)
        finally:
            await sw.aclose()
    _check_continued(events, cut, done_before, lost, store)


@pytest.mark.timeout(180)
async def test_killed_driver_run_resumes_from_its_journal(cluster, tmp_path):
    db = tmp_path / "runs.db"
    with MockServer(0.2, f"{SCRIPTS}:mixed_script") as url:
        driver = await asyncio.create_subprocess_exec(
            sys.executable, DRIVER, cluster.address, url, str(db), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        store = RunStore(db)
        try:
            events: list = []
            for _ in range(600):  # until the quick sub-agents are done and the slow ones half way
                await asyncio.sleep(0.1)
                rows = store.runs(limit=1)
                if not rows:
                    continue
                events = store.events(rows[0]["id"])
                if len(_ids(events)) == 8:
                    quick, slow = _slow_and_quick(events)
                    done = {e.agent_id for e in events if isinstance(e, AgentFinished)}
                    if set(quick) <= done and any(isinstance(e, StepStarted) and e.agent in slow and e.step >= 3
                                                  for e in events):
                        break
            assert driver.returncode is None, "the driver ended before it was killed"
        finally:
            driver.kill()  # the driver dies: no cancellation, nothing more reaches the journal
            await driver.wait()
        run_id = rows[0]["id"]
        assert store.run(run_id)["status"] == "interrupted"
        events = store.events(run_id)
        sw = Swarm(model(f"openai:{url}#mock"), [work], executor="ray", sub_budgets=Budgets(max_steps=10))
        try:
            res = await runs.resume(run_id, store=store, engine=sw)
        finally:
            await sw.aclose()
    assert res.status == "ok", res.reason
    quick, slow = _slow_and_quick(events)
    assert not [e for e in res.events if e.agent in quick]  # finished before the crash: not run again
    for a in slow:
        if any(isinstance(e, AgentFinished) and e.agent_id == a for e in events):
            continue
        again = [e for e in res.events if isinstance(e, MessageAppended) and e.agent == a]
        assert again and again[0].index > 2  # each continues its own conversation
    rr = replay(store.events(run_id))
    assert rr.attempts == 2
    for a in slow:
        assert [m.role for m in rr.lanes[a].messages] == ["system", "user"] + ["assistant", "tool"] * 6 + ["assistant"]
    store.close()


def test_cli_run_swarm_with_ray_flag(cluster, tmp_path):
    from typer.testing import CliRunner

    from ponder.cli.main import app

    with MockServer(0.02, f"{SCRIPTS}:calc_script") as url:
        r = CliRunner().invoke(app, ["run", "--mode", "swarm", "--ray", "--model", f"openai:{url}#mock",
                                     "--tools", "calculator", "--db", str(tmp_path / "r.db"), "--json", "compute"])
    assert r.exit_code == 0, r.output[-2000:]
    evs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    fin = evs[-1]
    assert fin["type"] == "run_finished" and fin["status"] == "ok", fin
    assert fin["metrics"]["extra"]["executor"]["kind"] == "ray"
    answers = sorted(e["answer"] for e in evs if e["type"] == "agent_finished")
    assert answers == ['part 0: "0"', 'part 1: "7"', 'part 2: "14"']  # the calculator ran on the hosts
    stored = RunStore(tmp_path / "r.db").run(fin["run_id"])
    assert stored["status"] == "ok" and stored["config"].get("executor") == "ray"

    bad = CliRunner().invoke(app, ["run", "--ray", "--model", f"openai:{url}#mock", "q"])
    assert bad.exit_code == 2 and "--ray runs a swarm's sub-agents" in bad.output


async def test_compare_on_cluster_lands_in_the_stores_and_resumes(cluster, tmp_path):
    from ponder.bench.runner import CompareConfig, Runner
    from ponder.bench.store import CompareStore

    with MockServer(0.02, f"{SCRIPTS}:compare_script") as url:
        cfg = CompareConfig(suites=["wide"], modes=["swarm", "interleaved", "single"], models=[f"openai:{url}#mock"],
                            n=2, concurrency=1, max_steps=8, task_timeout_s=60.0, executor="ray")
        store = CompareStore(tmp_path / "compare.db")
        first = Runner(cfg, store, progress=False, run_db=str(tmp_path / "runs.db"))
        first.on_record = lambda rec: setattr(first.cfg, "time_budget_s", 0.0)  # stop after one: the rest is for --resume
        cid = await first.run()
        assert len(store.results(cid)) == 1
        done_first = store.results(cid)[0]
        again = Runner(CompareConfig.from_dict(store.config(cid)), store, progress=False, run_db=str(tmp_path / "runs.db"))
        assert again.cfg.executor == "ray"
        await again.run(cid)
    recs = store.results(cid)
    assert len(recs) == 2 * 3 and {r.status for r in recs} == {"ok"}, [(r.mode, r.status, r.error) for r in recs]
    assert next(r for r in recs if r.key == done_first.key).finished_at == done_first.finished_at  # not run again
    runs_db = RunStore(tmp_path / "runs.db")
    for r in recs:
        if r.mode == "single":
            assert r.model_calls == 1 and r.answer
            continue
        row = runs_db.run(r.detail["run_id"])  # journaled on the driver, linked from the row
        assert row["status"] == "ok" and row["mode"] == r.mode
        if r.mode == "swarm":
            assert r.agents == 2


def test_cli_compare_with_ray_flag_resumes_on_the_cluster(cluster, tmp_path):
    import sqlite3

    from typer.testing import CliRunner

    from ponder.bench.store import CompareStore
    from ponder.cli.main import app

    db, out = str(tmp_path / "compare.db"), str(tmp_path / "report.html")
    with MockServer(0.02) as url:
        first = CliRunner().invoke(app, ["compare", "--ray", "--suite", "reason", "--mode", "single", "--mode",
                                         "interleaved", "--model", f"openai:{url}#mock", "--n", "2", "--db", db,
                                         "--out", out, "--no-progress"])
        assert first.exit_code == 0, first.output[-2000:]
        cid = CompareStore(db).comparisons()[-1][0]
        kept = {r.key: r.finished_at for r in CompareStore(db).results(cid) if r.mode == "single"}
        with sqlite3.connect(db) as c:  # as if the comparison had been stopped before its interleaved units
            c.execute("DELETE FROM bench_results WHERE mode = 'interleaved'")
        again = CliRunner().invoke(app, ["compare", "--resume", cid, "--ray", "--db", db, "--out", out, "--no-progress"])
    assert again.exit_code == 0, again.output[-2000:]
    recs = CompareStore(db).results(cid)
    assert len(recs) == 4 and {r.status for r in recs} == {"ok"}, [(r.mode, r.status, r.error) for r in recs]
    assert {r.key: r.finished_at for r in recs if r.mode == "single"} == kept  # stored rows not run again


async def test_compare_unit_continues_when_its_host_dies(cluster, tmp_path):
    from ponder.bench.runner import CompareConfig, Runner
    from ponder.bench.store import CompareStore

    with MockServer(0.25) as url:
        cfg = CompareConfig(suites=["wide"], modes=["interleaved"], models=[f"openai:{url}#mock"], n=1,
                            concurrency=1, max_steps=8, task_timeout_s=60.0, executor="ray")
        store = CompareStore(tmp_path / "compare.db")
        runner = Runner(cfg, store, progress=False, run_db=str(tmp_path / "runs.db"))
        job = asyncio.ensure_future(runner.run())
        for _ in range(600):
            if runner.cluster and runner.cluster.pool and any(h.jobs for h in runner.cluster.pool.hosts):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)  # a few steps in
        os.kill(next(h for h in runner.cluster.pool.hosts if h.jobs).pid, signal.SIGKILL)
        cid = await job
    [rec] = store.results(cid)
    assert rec.status == "ok", (rec.status, rec.error)
    row = RunStore(tmp_path / "runs.db").run(rec.detail["run_id"])
    assert row["status"] == "ok" and row["attempts"] == 2  # one run, continued on another host
    rr = replay(RunStore(tmp_path / "runs.db").events(row["id"]))
    assert [m.role for m in rr.lanes["main"].messages].count("user") == 1  # not started over


@pytest.mark.timeout(180)
async def test_removed_node_sub_agents_continue_elsewhere(cluster, store):
    head = cluster.head_node.node_id  # keep the head: the driver and the cluster's control live there

    async def remove(victim):
        node = next(n for n in cluster.worker_nodes if n.node_id == victim.node)
        await asyncio.to_thread(cluster.remove_node, node)  # the whole node: raylet, workers

    with MockServer(0.2, f"{SCRIPTS}:mixed_script") as url:
        sw = Swarm(model(f"openai:{url}#mock"), [work], executor="ray", sub_budgets=Budgets(max_steps=10))
        try:
            events, cut, done_before, lost = await _run_and_break(sw, store, remove, pick=lambda h: h.node != head)
        finally:
            await sw.aclose()
    _check_continued(events, cut, done_before, lost, store)
