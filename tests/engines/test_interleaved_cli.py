"""`ponder run --mode interleaved`: JSON lines, live rendering, sessions in SQLite, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ponder.cli.main import app
from ponder.core.store import RunStore
from ponder.testing import Reply, ScriptedModel


@pytest.fixture
def scripted(monkeypatch):
    made: list[ScriptedModel] = []

    def fake_model(name, **kw):
        m = ScriptedModel(lambda req, n: (
            Reply(reasoning=f"think {n}", tool_calls=[("calculator", {"expression": "17*23"})])
            if not any(x.role == "tool" for x in req.messages[-1:]) and n % 2 == 0
            else Reply(reasoning=f"think {n}", content="391")), wire_dialect="kimi")
        made.append(m)
        return m

    monkeypatch.setattr("ponder.models.registry.model", fake_model)
    return made


def test_json_lines_end_with_run_finished(scripted):
    r = CliRunner().invoke(app, ["run", "--json", "--tools", "calculator", "--thinking", "on", "17*23?"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.output.splitlines() if line.strip()]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "ok" and events[-1]["answer"] == "391"
    results = [e for e in events if e["type"] == "tool_result"]
    assert results and results[0]["content"] == "391"


def test_live_rendering_shows_panels_answer_and_metrics(scripted):
    r = CliRunner().invoke(app, ["run", "--tools", "calculator", "--thinking", "on", "17*23?"])
    assert r.exit_code == 0, r.output
    assert "tool call · calculator" in r.output and "answer · ok" in r.output
    assert "2 steps" in r.output and "1 tool calls" in r.output


def test_session_continues_across_invocations_with_reasoning(scripted, tmp_path):
    db = tmp_path / "p.db"
    args = ["run", "--json", "--tools", "calculator", "--thinking", "on", "--session", "s1", "--db", str(db)]
    assert CliRunner().invoke(app, [*args, "17*23?"]).exit_code == 0
    assert CliRunner().invoke(app, [*args, "and again?"]).exit_code == 0
    second = scripted[-1]
    sent = [m.get("reasoning_content") for m in second.payloads[0]["messages"] if m["role"] == "assistant"]
    assert sent == ["think 0", "think 1"]
    assert len(RunStore(db).runs("s1")) == 2


def test_bad_options_are_clear_errors(scripted):
    r = CliRunner().invoke(app, ["run", "--tools", "nope", "x"])
    assert r.exit_code == 2 and "unknown tool 'nope'" in r.output
    r = CliRunner().invoke(app, ["run", "--thinking", "maybe", "x"])
    assert r.exit_code != 0 and "thinking" in r.output
