"""The viewer's server side: the critical path, the view folded from a journal, the JSON and
SSE routes over real HTTP, finding a running server, `ponder view`, and the compare report's
links. Runs are made with the scripted test doubles through `ponder.runs.execute`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.server.viewer_runs import (
    CRITICAL_AGENTS,
    CRITICAL_ORCH_STEPS,
    SUB_AGENTS,
    demo_swarm,
    run_in_thread,
    serve,
    store_demo_swarm,
    store_interleaved,
    wait_for_row,
)
from typer.testing import CliRunner

from ponder import runs
from ponder.bench.html import render_html
from ponder.bench.store import TaskRecord as BenchRecord
from ponder.cli import render
from ponder.cli.main import app as cli_app
from ponder.core.events import AgentFinished
from ponder.core.journal import Journal
from ponder.core.store import RunStore
from ponder.engines.swarm.metrics import TaskRecord, critical_steps
from ponder.server import discovery
from ponder.server.critical import critical_path
from ponder.server.runview import RunView

pytestmark = pytest.mark.timeout(120)


# ---- the critical path -----------------------------------------------------------------------
@st.composite
def swarms(draw):
    T = draw(st.integers(0, 6))
    n = draw(st.integers(0, 7))
    # launch steps never decrease along dependencies: a task can only depend on one already assigned
    launches = sorted(draw(st.lists(st.integers(0, T), min_size=n, max_size=n)))
    recs = []
    for i in range(n):
        tid = f"t{i + 1}"
        launched = launches[i]
        deps = draw(st.lists(st.sampled_from([f"t{j + 1}" for j in range(i)]), unique=True, max_size=2)) if i else []
        delivered = draw(st.one_of(st.none(), st.integers(max(launched, 0), T + 1)))
        recs.append(TaskRecord(task_id=tid, agent_id=f"ag{i + 1}", name=f"ag{i + 1}", launched_at=launched,
                               depends_on=deps, steps=draw(st.integers(0, 4)), delivered_at=delivered))
    return T, recs


def _brute_force(T: int, recs: list[TaskRecord]) -> tuple[int, set[tuple[str, object]]]:
    """Every path through the metrics module's DAG, enumerated: the longest length, and the
    nodes (with weight) that lie on some longest path."""
    by = {r.task_id: r for r in recs}
    succ: dict[tuple[str, object], list[tuple[str, object]]] = {("O", t): [] for t in range(1, T + 1)}
    succ.update({("S", r.task_id): [] for r in recs})
    for t in range(1, T):
        succ[("O", t)].append(("O", t + 1))
    for r in recs:
        launch = min(max(r.launched_at, 0), T)
        if launch >= 1:
            succ[("O", launch)].append(("S", r.task_id))
        for d in r.depends_on:
            succ[("S", d)].append(("S", r.task_id))
        if r.delivered_at is not None and r.delivered_at + 1 <= T:
            succ[("S", r.task_id)].append(("O", r.delivered_at + 1))

    def w(n: tuple[str, object]) -> int:
        return 1 if n[0] == "O" else by[str(n[1])].steps

    best, nodes = 0, set()

    def walk(n, path, length):  # type: ignore[no-untyped-def]
        nonlocal best, nodes
        path, length = path + [n], length + w(n)
        if length > best:
            best, nodes = length, set()
        if length == best and length > 0:
            nodes |= {p for p in path if w(p) > 0}
        for m in succ[n]:
            walk(m, path, length)

    for n in succ:
        walk(n, [], 0)
    return best, nodes


@settings(max_examples=300, deadline=None)
@given(swarms())
def test_critical_path_is_the_metrics_longest_path(case):
    T, recs = case
    cp = critical_path(T, recs)
    assert cp.length == critical_steps(T, recs)
    best, nodes = _brute_force(T, recs)
    assert cp.length == best
    assert {("O", t) for t in cp.orchestrator_steps} | {("S", t) for t in cp.tasks} == nodes
    assert cp.agents == [next(r.agent_id for r in recs if r.task_id == t) for t in cp.tasks]


def test_critical_path_of_the_synchronous_pattern_ties_all_awaited_tasks():
    # plan and wait in step 1 (the paper's pattern): every equal-length task is critical
    recs = [TaskRecord(task_id=f"t{i}", agent_id=f"s{i}", name=f"s{i}", launched_at=1, steps=s, delivered_at=1)
            for i, s in ((1, 3), (2, 3), (3, 1))]
    cp = critical_path(2, recs)
    assert cp.length == 1 + 3 + 1 == critical_steps(2, recs)
    assert cp.orchestrator_steps == [1, 2] and cp.agents == ["s1", "s2"]


# ---- the view folded from a stored swarm run --------------------------------------------------
async def test_view_of_a_stored_swarm(tmp_path):
    db = tmp_path / "runs.db"
    fin = await store_demo_swarm(db)
    assert fin.status == "ok" and fin.metrics.critical_steps == 5
    with RunStore(db) as store:
        row, rows = store.run(fin.run_id), store.event_rows(fin.run_id)
    v = RunView(row)
    v.feed_rows(rows)
    snap = v.snapshot()
    crit = snap["critical"]
    assert set(crit["agents"]) == CRITICAL_AGENTS and set(crit["orchestrator_steps"]) == CRITICAL_ORCH_STEPS
    assert crit["length"] == fin.metrics.critical_steps == snap["run"]["critical_steps"]
    assert set(snap["agents"]) == {"orchestrator", *SUB_AGENTS}
    st_ = {k: a["status"] for k, a in snap["agents"].items()}
    assert st_ == {"orchestrator": "ok", "a": "ok", "b": "ok", "c": "ok", "d": "budget"}
    assert snap["agents"]["b"]["depends_on"] == ["t1"] and snap["agents"]["a"]["instructions"] == "You do a."
    assert sum(len(s["calls"]) for s in snap["steps"].values()) == fin.metrics.model_calls == 10
    # the calls carry their telemetry: TTFT inside the call's duration, tokens, cost
    a1 = next(s for s in snap["steps"].values() if s["agent"] == "a" and s["step"] == 1)
    call = a1["calls"][0]
    assert 0 < call["ttft_s"] < call["total_s"] and call["end"] - call["start"] == pytest.approx(call["total_s"], abs=1e-5)
    assert call["cost_usd"] > 0 and call["reasoning"].startswith("I need the population")
    assert [t["name"] for t in a1["tools"]] == ["lookup", "memory_write"] and a1["tools"][0]["ok"] is True
    # verification and budget marks, shared memory with provenance
    c1 = next(s for s in snap["steps"].values() if s["agent"] == "c" and s["step"] == 1)
    assert [v_["ok"] for v_ in c1["verifications"]] == [False, True]
    assert c1["tools"][0]["verification"]["ok"] is False and "os" in c1["tools"][0]["verification"]["reason"]
    kinds = [(m["agent"], m["kind"]) for m in snap["markers"]]
    assert kinds.count(("c", "verification")) == 2 and ("d", "budget") in kinds
    assert snap["memory"] == [{"ts": pytest.approx(snap["memory"][0]["ts"]), "agent": "a", "key": "orvan.population",
                               "value": "48,200", "step": 1}]
    assert max(n for _, n in snap["parallelism"]) == fin.metrics.peak_concurrency
    assert snap["parallelism"][-1][1] == 0
    # the same path from the events alone (what a live run shows), without the final metrics
    live = RunView({**row, "status": "running"})
    live.feed_rows(r for r in rows if '"type":"run_finished"' not in r[1])
    assert live.critical() == crit
    assert live.patch()["run"]["status"] == "running"


async def test_view_patches_carry_only_what_changed(tmp_path):
    db = tmp_path / "runs.db"
    fin = await store_demo_swarm(db)
    with RunStore(db) as store:
        row, rows = store.run(fin.run_id), store.event_rows(fin.run_id)
    cut = next(i for i, (_, raw) in enumerate(rows) if '"agent":"b"' in raw)
    v = RunView(row)
    v.feed_rows(rows[:cut])
    first = v.patch()
    assert "b" not in {s["agent"] for s in first["steps"].values()}
    v.feed_rows(rows[cut:])
    second = v.patch()
    assert {s["agent"] for s in second["steps"].values()} >= {"b", "orchestrator"}
    assert not any(k.startswith("a/") for k in second["steps"])  # a had finished before the cut
    assert second["memory"] == [] and second["memory_from"] == 1
    assert v.patch()["steps"] == {}


async def test_interleaved_and_error_runs(tmp_path):
    db = tmp_path / "runs.db"
    ok = await store_interleaved(db)
    bad = await store_interleaved(db, error=True)
    with RunStore(db) as store:
        for fin, status in ((ok, "ok"), (bad, "error")):
            v = RunView(store.run(fin.run_id))
            v.feed_rows(store.event_rows(fin.run_id))
            snap = v.snapshot()
            assert snap["run"]["status"] == status == fin.status
            assert list(snap["agents"]) == ["main"] and snap["critical"]["agents"] == ["main"]
            assert snap["critical"]["length"] == len(snap["steps"]) == fin.metrics.steps
        err_step = [s for s in snap["steps"].values() if any(c.get("error") for c in s["calls"])]
        assert err_step and err_step[0]["calls"][-1]["error"]["message"].endswith("upstream broke")
        assert any(m["kind"] == "error" for m in snap["markers"])


def test_unreadable_journal_row_is_a_mark_not_an_error():
    v = RunView({"id": "x", "mode": "interleaved", "status": "ok", "started": 1.0})
    v.feed(0, '{"agent":"main","ts":1.0,"type":"run_started","run_id":"x","mode":"interleaved","task":"t"}')
    v.feed(1, "{not json")
    snap = v.snapshot()
    assert snap["markers"][0]["kind"] == "error" and "row 1" in snap["markers"][0]["text"]


# ---- the routes ------------------------------------------------------------------------------------
@pytest.fixture
def stored(tmp_path):
    db = tmp_path / "runs.db"

    async def make():
        return [await store_demo_swarm(db), await store_interleaved(db), await store_interleaved(db, error=True)]

    fins = asyncio.run(make())
    with serve(db) as base:
        yield base, db, fins


def test_routes(stored):
    base, _db, (swarm, ok, bad) = stored
    with httpx.Client(base_url=base, timeout=30) as c:
        assert [r["id"] for r in c.get("/api/runs").json()] == [bad.run_id, ok.run_id, swarm.run_id]
        assert [r["id"] for r in c.get("/api/runs", params={"status": "error"}).json()] == [bad.run_id]
        assert [r["id"] for r in c.get("/api/runs", params={"mode": "swarm"}).json()] == [swarm.run_id]
        assert {r["id"] for r in c.get("/api/runs", params={"q": "Orvan"}).json()} == {swarm.run_id, ok.run_id}
        row = c.get("/api/runs", params={"mode": "swarm"}).json()[0]
        assert row["critical_steps"] == 5 and row["tokens"] > 0 and row["agents"] == 4 and row["status"] == "ok"
        r = c.get("/api/runs", params={"status": "sideways"})
        assert r.status_code == 400 and "unknown status 'sideways'" in r.json()["detail"]
        r = c.get("/api/runs/nope")
        assert r.status_code == 404 and "no run 'nope'" in r.json()["detail"]
        view = c.get(f"/api/runs/{swarm.run_id[:8]}").json()  # a unique prefix will do
        assert view["run"]["id"] == swarm.run_id and set(view["critical"]["agents"]) == CRITICAL_AGENTS
        assert c.get(f"/api/runs/{swarm.run_id}/summary").json()["id"] == swarm.run_id
        evs = c.get(f"/api/runs/{ok.run_id}/events").json()
        assert evs[0]["seq"] == 0 and evs[0]["event"]["type"] == "run_started"
        assert evs[-1]["event"]["type"] == "run_finished" and evs[-1]["event"]["answer"] == "48,200"
        assert [e["seq"] for e in c.get(f"/api/runs/{ok.run_id}/events", params={"after": 3}).json()][0] == 4
        for path, kind in (("/", "text/html"), (f"/runs/{swarm.run_id}", "text/html"),
                           ("/static/viewer/run.js", "text/javascript"), ("/static/viewer/viewer.css", "text/css")):
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind), path
        static = Path(discovery.__file__).parent / "static"
        assert not [f.name for f in static.iterdir() if re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", f.read_text())]
        for bad_path in ("/static/viewer/..%2Fapp.py", "/static/viewer/.hidden.js", "/static/viewer/nothing.js"):
            assert c.get(bad_path).status_code == 404
        # a finished run's stream is one patch and the end
        with c.stream("GET", f"/api/runs/{swarm.run_id}/stream") as r:
            events = _sse(r)
        assert [e for e, _ in events] == ["patch", "end"] and events[1][1]["status"] == "ok"


def _sse(resp: httpx.Response) -> list[tuple[str, dict]]:
    out, event = [], None
    for line in resp.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            out.append((event, json.loads(line[5:])))
            if event == "end":
                break
    return out


def test_stream_follows_a_live_run(tmp_path):
    db = tmp_path / "runs.db"
    RunStore(db).close()  # create the store first: two connections creating one race on its schema
    gate = threading.Event()
    writer = run_in_thread(lambda: store_demo_swarm(db, run_id="live-1", delay=0.05, decode=0.02, gate=gate))
    with serve(db) as base, httpx.Client(base_url=base, timeout=60) as c:
        wait_for_row(db, "live-1")
        first = c.get("/api/runs/live-1").json()
        assert first["run"]["status"] == "running"
        assert not [s for s in first["steps"].values() if s["calls"]]  # the gate holds the first call
        with c.stream("GET", "/api/runs/live-1/stream", params={"after": first["seq"]}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            gate.set()
            events = _sse(r)
    writer.join(timeout=30)
    patches = [d for e, d in events if e == "patch"]
    assert events[-1] == ("end", {"status": "ok", "seq": patches[-1]["seq"]})
    assert patches[0]["run"]["status"] == "running" and patches[-1]["run"]["status"] == "ok"
    seqs = [p["seq"] for p in patches]
    assert seqs == sorted(seqs) and len(set(seqs)) >= 3  # it arrived in several pieces, in order
    agents = {k for p in patches for k in p["agents"]}
    assert agents == {"orchestrator", *SUB_AGENTS}
    steps = {k: s for p in patches for k, s in p["steps"].items()}
    assert sum(len(s["calls"]) for s in steps.values()) == 10
    assert set(patches[-1]["critical"]["agents"]) == CRITICAL_AGENTS


def test_stream_resumes_after_last_event_id(stored):
    base, _db, (swarm, _ok, _bad) = stored
    with httpx.Client(base_url=base, timeout=30) as c:
        whole = c.get(f"/api/runs/{swarm.run_id}").json()
        last = whole["seq"] - 3
        with c.stream("GET", f"/api/runs/{swarm.run_id}/stream", headers={"Last-Event-ID": str(last)}) as r:
            patch = _sse(r)[0][1]
    assert patch["seq"] == whole["seq"] and len(patch["steps"]) < len(whole["steps"])


_KILLED_RUN = """
import asyncio, sys
from ponder import runs
from ponder.engines.interleaved import Interleaved
from ponder.testing import Reply, ScriptedModel
eng = Interleaved(ScriptedModel([Reply(reasoning="slow", content="never", delay_s=120)]))
asyncio.run(runs.execute(eng, "a run whose process is killed", lambda e: None, db=sys.argv[1], run_id=sys.argv[2]))
"""


def test_an_interrupted_run_is_listed_and_its_stream_ends(tmp_path):
    db = tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(db), "doomed"], env={**os.environ})
    try:
        wait_for_row(db, "doomed", events=3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with serve(db) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert [r["id"] for r in c.get("/api/runs", params={"status": "interrupted"}).json()] == ["doomed"]
        with c.stream("GET", "/api/runs/doomed/stream") as r:
            events = _sse(r)
        assert events[-1][0] == "end" and events[-1][1]["status"] == "interrupted"
        assert events[0][1]["run"]["status"] == "interrupted"


# ---- finding the server: `ponder run`'s link and `ponder view` ------------------------------------------
def test_viewer_url_finds_the_announced_server(stored, capsys):
    base, db, (swarm, _ok, _bad) = stored
    port = int(base.rsplit(":", 1)[1])
    assert discovery.viewer_url(swarm.run_id, candidates=[]) is None
    with discovery.announce("127.0.0.1", port, db) as f:
        assert json.loads(f.read_text())["pid"] == os.getpid()
        assert discovery.viewer_url(swarm.run_id) == f"{base}/runs/{swarm.run_id}"
        assert discovery.viewer_url(swarm.run_id[:6]) == f"{base}/runs/{swarm.run_id}"
        assert discovery.viewer_url("not-a-run") is None
        render.show_final(swarm, "swarm")
        assert f"view {base}/runs/{swarm.run_id}" in capsys.readouterr().out
    assert not f.exists() and discovery.announced() is None
    render.show_final(swarm, "swarm")  # no server file: no link (the default port holds nothing here)
    assert "view http" not in capsys.readouterr().out
    f.write_text(json.dumps({"pid": 2 ** 22 + 12345, "url": base}))  # a server that died
    assert discovery.announced() is None


def test_ponder_view_uses_a_running_server(stored):
    base, db, (swarm, _ok, _bad) = stored
    port = int(base.rsplit(":", 1)[1])
    runner = CliRunner()
    with discovery.announce("127.0.0.1", port, db):
        res = runner.invoke(cli_app, ["view", swarm.run_id[:8], "--db", str(db), "--no-browser"])
    assert res.exit_code == 0, res.output
    assert f"view {base}/runs/{swarm.run_id}" in res.output
    res = runner.invoke(cli_app, ["view", "zzz-unknown", "--db", str(db), "--no-browser"])
    assert res.exit_code == 2 and "no run 'zzz-unknown'" in res.output


def test_ponder_view_starts_a_server_when_none_is_up(tmp_path):
    db = tmp_path / "runs.db"
    fin = asyncio.run(store_interleaved(db))
    proc = subprocess.Popen([sys.executable, "-m", "ponder.cli.main", "view", fin.run_id, "--db", str(db),
                             "--no-browser", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        url = None
        deadline = time.time() + 60
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("view "):
                url = line.split()[1]
        assert url and url.endswith(f"/runs/{fin.run_id}"), url
        assert discovery.viewer_url(fin.run_id) == url  # announced while it serves
        with httpx.Client(timeout=30) as c:
            assert c.get(url).status_code == 200
            assert c.get(url.replace("/runs/", "/api/runs/")).json()["run"]["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert discovery.announced() is None


# ---- the compare report links each task to its run page ---------------------------------------------------
def test_compare_report_links_runs():
    recs = [BenchRecord(comparison_id="c1", suite="wide", task_id=f"q{i}", mode="swarm", model="m", engine="swarm",
                        status="ok", steps=3, critical_steps=2, detail={"run_id": f"run-{i}"} if i else {})
            for i in range(3)]
    html = render_html(recs, "c1")
    assert "href='http://127.0.0.1:8700/runs/run-1'" in html and "href='http://127.0.0.1:8700/runs/run-2'" in html
    assert html.count("/runs/") == 2  # q0 has no run id
    assert "href='http://box:9000/runs/run-1'" in render_html(recs, "c1", viewer_base="http://box:9000/")
    assert "<h2>Runs</h2>" not in render_html(recs[:1], "c1")


async def test_view_of_a_resumed_swarm(tmp_path):
    """A process dies mid-swarm (its journal stops after a sub-agent finished); the run is
    resumed: the view shows one run with a resume mark and the engine's critical path."""
    full: list = []
    await runs.execute(demo_swarm(), "What is twice the population of Orvan?", full.append,
                       store=RunStore(tmp_path / "full.db"))
    k = next(i for i, e in enumerate(full) if type(e) is AgentFinished) + 1
    store = RunStore(tmp_path / "crashed.db")
    j = Journal(store)
    for ev in full[:k]:
        j(ev)
    j.close()
    run_id = full[0].run_id
    assert store.run(run_id)["status"] == "interrupted"
    v = RunView(store.run(run_id))
    v.feed_rows(store.event_rows(run_id))
    assert v.snapshot()["run"]["status"] == "interrupted"
    fin = await runs.resume_into(run_id, lambda ev: None, store=store, engine=demo_swarm())
    assert fin.status == "ok" and fin.metrics.attempts == 2
    v = RunView(store.run(run_id))
    v.feed_rows(store.event_rows(run_id))
    snap = v.snapshot()
    assert snap["run"]["status"] == "ok" and snap["run"]["attempts"] == 2
    assert [m["kind"] for m in snap["markers"]].count("resume") >= 1
    assert snap["critical"]["length"] == fin.metrics.critical_steps
    assert set(snap["critical"]["agents"]) == CRITICAL_AGENTS
    assert {a["status"] for a in snap["agents"].values()} == {"ok", "budget"}
    store.close()
