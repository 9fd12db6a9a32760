"""Timeouts that mean what they say, through the real CLI against a stalling OpenAI-compatible
server (`MockOpenAIServer`, a test double on loopback): `--idle-timeout` reaches the HTTP model
of every mode, `--timeout` bounds `run` (both modes), `chat` and each `compare` task, and a
stalled sub-agent holds its swarm no longer than its own limit.

The wall-clock bounds asserted here are hang guards, far above the limits set and far below
the defaults a lost flag would fall back to (30 s idle, 60 s first byte, 300 s per call)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from ponder.bench.store import CompareStore
from ponder.cli.main import app
from ponder.core.store import RunStore
from ponder.testing_http import FAULTS, MockReply, Pause, sse_text_reply

HANG_GUARD_S = 20.0


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _model(srv) -> str:
    return f"openai:{srv.base_url}#mock"


def test_run_idle_timeout_ends_a_stalled_stream(mock_server):
    srv = mock_server(lambda p, n: FAULTS["stall_after_first_token"](n))
    r = CliRunner().invoke(app, ["run", "--json", "-m", _model(srv), "--tools", "", "--idle-timeout", "0.5", "hi"])
    assert r.exit_code == 1, r.output
    evs = _events(r.stdout)
    err = next(e for e in evs if e["type"] == "error")
    assert "no data for 0.5 s" in err["message"]  # the flag's value, not the 30 s default
    fin = evs[-1]
    assert fin["status"] == "error" and fin["metrics"]["wall_s"] < HANG_GUARD_S
    stored = RunStore().run(fin["run_id"])
    assert stored["status"] == "error"  # recorded as it ended, not left running

    # the default view says so in one line, and exits 1
    r = CliRunner().invoke(app, ["run", "-m", _model(srv), "--tools", "", "--idle-timeout", "0.5", "hi"])
    assert r.exit_code == 1 and "stream stalled: no data for 0.5 s" in " ".join(r.output.split())


@pytest.mark.parametrize("mode", ["interleaved", "swarm"])
def test_run_timeout_bounds_both_modes_before_the_first_byte(mode, mock_server):
    srv = mock_server(lambda p, n: FAULTS["stall_before_headers"](n))
    r = CliRunner().invoke(app, ["run", "--json", "--mode", mode, "-m", _model(srv), "--tools", "", "--timeout", "1",
                                 "hi"])
    assert r.exit_code == 3, r.output  # a budget stop
    fin = _events(r.stdout)[-1]
    assert fin["status"] == "budget" and "wall_timeout_s = 1s" in fin["reason"]
    assert fin["metrics"]["wall_s"] < HANG_GUARD_S


def _swarm_handler(stall: str):
    """An orchestrator that plans three sub-agents, waits, and finishes; the sub-agent whose
    task names `stall` sends one chunk and then nothing."""

    def handler(payload: dict[str, Any], n: int) -> MockReply:
        tools = [t["function"]["name"] for t in payload.get("tools") or []]
        msgs = payload["messages"]
        if "plan" in tools or "wait" in tools or tools == ["finish"]:
            called = [tc["function"]["name"] for m in msgs if m["role"] == "assistant" for tc in m.get("tool_calls") or []]
            if "plan" in tools and "plan" not in called:
                subtasks = [{"name": f"w{i}", "instructions": "You are a worker.", "task": f"part {i}", "tools": [],
                             "depends_on": []} for i in range(3)]
                return sse_text_reply(reasoning="split it", tool_calls=[{"name": "plan", "arguments": {"subtasks": subtasks}}])
            if "wait" in tools and "wait" not in called:
                return sse_text_reply(reasoning="wait", tool_calls=[{"name": "wait", "arguments": {"task_ids": [],
                                                                                                  "mode": "all"}}])
            return sse_text_reply(reasoning="done", tool_calls=[{"name": "finish", "arguments": {"answer": "all parts [w0]"}}])
        user = "\n".join(str(m.get("content") or "") for m in msgs if m["role"] == "user")
        if stall in user:
            return MockReply(sse=[{"choices": [{"index": 0, "delta": {"reasoning_content": "let me see"}}]}, Pause(3600)])
        return sse_text_reply(reasoning="easy", content=f"result of {user.splitlines()[0][:40]}")

    return handler


def test_a_stalled_sub_agent_holds_the_swarm_only_for_its_idle_limit(mock_server):
    srv = mock_server(_swarm_handler(stall="part 1"))
    r = CliRunner().invoke(app, ["run", "--json", "--mode", "swarm", "-m", _model(srv), "--tools", "",
                                 "--idle-timeout", "0.5", "do three parts"])
    evs = _events(r.stdout)
    fin = evs[-1]
    assert fin["type"] == "run_finished" and fin["status"] == "ok", r.output
    spawned = {e["agent_id"]: e["name"] for e in evs if e["type"] == "agent_spawned"}
    status = {spawned[e["agent_id"]]: e["status"] for e in evs if e["type"] == "agent_finished"}
    assert status == {"w0": "ok", "w1": "error", "w2": "ok"}, r.output
    stalled = next(e for e in evs if e["type"] == "error" and "no data for 0.5 s" in e["message"])
    assert stalled["agent"] != "orchestrator"
    assert fin["metrics"]["wall_s"] < HANG_GUARD_S
    assert r.exit_code == 0


def test_chat_idle_timeout_and_timeout(mock_server):
    srv = mock_server(lambda p, n: FAULTS["stall_after_first_token"](n))
    r = CliRunner().invoke(app, ["chat", "-m", _model(srv), "--idle-timeout", "0.5", "hi"])
    assert r.exit_code == 1 and "no data for 0.5 s" in " ".join(r.stderr.split()), r.output
    assert "The" in r.stdout  # the partial output stays on screen
    srv2 = mock_server(lambda p, n: FAULTS["stall_before_headers"](n))
    r = CliRunner().invoke(app, ["chat", "-m", _model(srv2), "--timeout", "1", "hi"])
    assert r.exit_code == 3 and "no complete reply within --timeout 1s" in " ".join(r.stderr.split()), r.output


@pytest.mark.parametrize("mode,status", [("single", "timeout"), ("interleaved", "budget"), ("swarm", "budget")])
def test_compare_task_timeout_bounds_every_mode(mode, status, mock_server, tmp_path):
    srv = mock_server(lambda p, n: FAULTS["stall_before_headers"](n))
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"question": "What is six times seven?", "answer": "42", "grader": "number"}\n')
    db = tmp_path / "c.db"
    r = CliRunner().invoke(app, ["compare", "--jsonl", str(suite), "--mode", mode, "-m", _model(srv),
                                 "--task-timeout", "1", "--db", str(db), "--out", str(tmp_path / "r.html"),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    store = CompareStore(db)
    (rec,) = store.results()
    assert rec.status == status and rec.wall_s < HANG_GUARD_S
    assert [s for _, s in store.comparisons()] == ["done"]
