"""Trajectory export (store -> JSONL, CLI) and the live view's state, on the ScriptedModel test double."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from ponder import runs
from ponder.core.messages import ToolCall
from ponder.core.store import RunStore
from ponder.engines.swarm import Swarm
from ponder.engines.swarm.trajectories import iter_store_trajectories, trajectory, write_jsonl
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool

_SUB = re.compile(r"You are sub-agent (\S+) in a swarm")


def _script(req, n):
    names = [t["function"]["name"] for t in req.tools]
    if "plan" in names:
        turn = sum(1 for m in req.messages if m.role == "assistant")
        if turn == 0:
            subs = [{"name": x, "instructions": f"do {x}", "task": f"task {x}", "tools": ["echo"]} for x in ("p", "q")]
            return Reply(reasoning="split", tool_calls=[ToolCall(id="o1", name="plan", arguments={"subtasks": subs}),
                                                        ToolCall(id="o2", name="wait", arguments={})])
        return Reply(reasoning="merge", tool_calls=[ToolCall(id="o3", name="finish", arguments={"answer": "[p] and [q]"})])
    name = next(_SUB.search(m.content or "").group(1) for m in req.messages if m.role == "system")
    if not any(m.role == "tool" for m in req.messages):
        return Reply(reasoning="use echo", tool_calls=[ToolCall(id=f"{name}-1", name="echo", arguments={"text": name})])
    return Reply(reasoning="done", content=f"{name} says {req.messages[-1].content}")


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo:{text}"


async def _stored_run(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    res = await runs.run(Swarm(ScriptedModel(_script), [echo]), "split and merge", store=store, score_fn=lambda a: 1.0)
    return store, res


async def test_trajectory_from_events_has_messages_per_agent_and_rewards(tmp_path):
    store, res = await _stored_run(tmp_path)
    t = trajectory(res.events, task="split and merge")
    assert set(t["agents"]) == {"orchestrator", "p", "q"}
    orch = t["agents"]["orchestrator"]
    assert orch["role"] == "orchestrator" and orch["messages"][0]["role"] == "system"
    assert orch["messages"][1] == {"role": "user", "content": "split and merge", "tool_calls": []}
    assert [c["name"] for c in orch["tool_calls"]] == ["plan", "wait", "finish"]
    p = t["agents"]["p"]
    assert p["messages"][0]["content"].startswith("do p") and p["messages"][1]["content"] == "task p"
    assert [m["role"] for m in p["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert p["messages"][2]["reasoning"]["text"] == "use echo"
    assert p["tool_calls"][0] == {"call_id": "p-1", "name": "echo", "arguments": {"text": "p"}, "ok": True,
                                  "duration_s": p["tool_calls"][0]["duration_s"]}
    assert p["status"] == "ok" and p["answer"] == "p says echo:p"
    assert t["rewards"]["r_perf"] == 1.0 and "r_parallel" in t["rewards"] and "r_finish" in t["rewards"]
    assert t["metrics"]["agents"] == 2 and t["citations"]["cited"] == ["p", "q"]
    store.close()


async def test_store_roundtrip_and_cli_export(tmp_path):
    store, res = await _stored_run(tmp_path)
    runs = store.runs()
    assert len(runs) == 1 and runs[0]["mode"] == "swarm" and runs[0]["answer"] == "[p] and [q]"
    from_store = next(iter_store_trajectories(store))
    live = trajectory(res.events, task="split and merge", run_id=runs[0]["id"], mode="swarm")
    assert from_store == live  # the store keeps everything a trajectory needs
    out = tmp_path / "t.jsonl"
    assert write_jsonl([from_store, from_store], out) == 2 and len(out.read_text().splitlines()) == 2
    store.close()

    import typer

    from ponder.cli import export

    app = typer.Typer()
    export.register(app)
    app.command("noop")(lambda: None)  # typer collapses a single-command app
    out2 = tmp_path / "cli.jsonl"
    r = CliRunner().invoke(app, ["export-trajectories", "--db", str(tmp_path / "runs.db"), "--out", str(out2),
                                 "--run", runs[0]["id"][:6]])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out2.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["run_id"] == runs[0]["id"] and set(rows[0]["agents"]) == {"orchestrator", "p", "q"}
    bad = CliRunner().invoke(app, ["export-trajectories", "--db", str(tmp_path / "runs.db"), "--run", "nope"])
    assert bad.exit_code == 2 and "no run 'nope'" in bad.output


async def test_live_view_state_from_events():
    from ponder.cli.render import SwarmView, metrics_text

    res = await Swarm(ScriptedModel(_script), [echo]).run("split and merge")
    v = SwarmView()
    for ev in res.events:
        v.observe(ev)
    assert set(v.rows) == {"p", "q"}
    assert all(r.status == "ok" and r.steps == 2 and r.tokens > 0 for r in v.rows.values())
    assert v.orch_steps == 2 and "merge" in v.reasoning
    assert v.final is not None and v.final.answer == "[p] and [q]"
    from rich.console import Console

    c = Console(record=True, width=120)
    c.print(v.render())
    text = c.export_text()
    assert "task p" in text and "ok 2" in text
    assert "critical" in metrics_text(v.final.metrics, "swarm") and "serial collapse: no" in metrics_text(v.final.metrics, "swarm")
