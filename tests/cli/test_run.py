"""`ponder run`: JSON lines, live rendering, sessions in SQLite, exit codes, and every flag
reaching the engine of both modes (where it means something there)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ponder.cli.main import app
from ponder.core.store import RunStore
from ponder.testing import Reply, ScriptedModel


@pytest.fixture
def calc_model(monkeypatch):
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


def test_json_lines_end_with_run_finished(calc_model):
    r = CliRunner().invoke(app, ["run", "--json", "--tools", "calculator", "--thinking", "on", "17*23?"])
    assert r.exit_code == 0, r.output
    events = [json.loads(line) for line in r.output.splitlines() if line.strip()]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "ok" and events[-1]["answer"] == "391"
    results = [e for e in events if e["type"] == "tool_result"]
    assert results and results[0]["content"] == "391"


def test_live_rendering_shows_panels_answer_and_metrics(calc_model):
    r = CliRunner().invoke(app, ["run", "--tools", "calculator", "--thinking", "on", "17*23?"])
    assert r.exit_code == 0, r.output
    assert "tool call · calculator" in r.output and "answer · ok" in r.output
    assert "2 steps" in r.output and "1 tool calls" in r.output


def test_session_continues_across_invocations_with_reasoning(calc_model, tmp_path):
    db = tmp_path / "p.db"
    args = ["run", "--json", "--tools", "calculator", "--thinking", "on", "--session", "s1", "--db", str(db)]
    assert CliRunner().invoke(app, [*args, "17*23?"]).exit_code == 0
    assert CliRunner().invoke(app, [*args, "and again?"]).exit_code == 0
    second = calc_model[-1]
    sent = [m.get("reasoning_content") for m in second.payloads[0]["messages"] if m["role"] == "assistant"]
    assert sent == ["think 0", "think 1"]
    assert len(RunStore(db).runs("s1")) == 2


def test_bad_options_are_clear_errors(calc_model):
    r = CliRunner().invoke(app, ["run", "--tools", "nope", "x"])
    assert r.exit_code == 2 and "unknown tool 'nope'" in r.output
    r = CliRunner().invoke(app, ["run", "--thinking", "maybe", "x"])
    assert r.exit_code != 0 and "thinking" in r.output


def test_budget_stop_exits_3_and_a_model_error_exits_1(calc_model, monkeypatch):
    r = CliRunner().invoke(app, ["run", "--json", "--tools", "calculator", "--max-steps", "1", "17*23?"])
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert events[-1]["status"] == "budget" and r.exit_code == 3, r.output

    def broken(name, **kw):  # every call fails (a swarm's orchestrator tries again)
        return ScriptedModel(lambda req, n: Reply(error="upstream exploded"))

    monkeypatch.setattr("ponder.models.registry.model", broken)
    for mode in ("interleaved", "swarm"):
        r = CliRunner().invoke(app, ["run", "--mode", mode, "--tools", "", "x"])
        assert r.exit_code == 1, r.output
        assert "upstream exploded" in r.output and "Traceback" not in r.output


# ---- every flag reaches the engine -------------------------------------------------------------
def _corpus(tmp_path):
    d = tmp_path / "zebra-docs"
    d.mkdir()
    (d / "zebras.md").write_text("# Zebras\nZebras have stripes.\n")
    return d


def _run_capturing(monkeypatch, args):
    """Run the CLI; return the engine it built and the run_started event's config."""
    from ponder.engines import build

    engines = []
    real = build.build_engine

    def spy(config, **kw):
        engines.append(real(config, **kw))
        return engines[-1]

    monkeypatch.setattr(build, "build_engine", spy)
    r = CliRunner().invoke(app, ["run", "--json", *args, "what do zebras have?"])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.output
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    started = next(e for e in events if e["type"] == "run_started")
    assert events[-1]["type"] == "run_finished", r.output
    return engines[0], started["config"]


COMMON = ["--thinking", "off", "--no-preserve", "--max-steps", "7", "--max-tool-calls", "9", "--max-tokens", "5000",
          "--max-cost", "0.5", "--timeout", "77", "--tools", "calculator,search", "--self-check", "--no-verify"]


@pytest.mark.parametrize("mode", ["interleaved", "swarm"])
def test_every_run_flag_reaches_the_engine(mode, scripted, monkeypatch, tmp_path):
    corpus = _corpus(tmp_path)
    swarm_flags = ["--sub-model", "y", "--sub-max-steps", "4", "--max-parallel", "6"] if mode == "swarm" else []
    engine, config = _run_capturing(monkeypatch, [
        "--mode", mode, "-m", "x", "--base-url", "http://127.0.0.1:8123/v1", "--dialect", "vllm",
        "--idle-timeout", "3.5", "--corpus", str(corpus), *COMMON, *swarm_flags])

    # the models: endpoint, dialect and idle timeout reach every model the engine uses
    built = {b.name: b.kwargs for b in scripted.built}
    assert set(built) == ({"x", "y"} if mode == "swarm" else {"x"})
    for kw in built.values():
        assert kw["base_url"] == "http://127.0.0.1:8123/v1" and kw["dialect"] == "vllm" and kw["idle_timeout_s"] == 3.5

    if mode == "swarm":
        cfg, budgets = engine.config, engine.config.budgets
        assert engine.sub_model.name == "y" and cfg.sub_budgets.max_steps == 4 and cfg.max_parallel == 6
        assert (cfg.thinking, cfg.preserve_reasoning, cfg.verify_code, cfg.self_check) == ("off", False, False, True)
    else:
        budgets = engine.budgets
        assert (engine.thinking, engine.preserve_reasoning, engine.verify_code, engine.self_check) == \
            ("off", False, False, True)
    assert (budgets.max_steps, budgets.max_tool_calls, budgets.max_tokens, budgets.max_cost_usd,
            budgets.wall_timeout_s) == (7, 9, 5000, 0.5, 77)

    # the tools, and the search tool reads the corpus given
    tools = engine.toolbox
    assert set(tools.names()) == {"calculator", "search", "open_document"}
    found = tools.get("search").fn("zebras stripes")
    assert "zebra-docs" in found["corpus"] and found["results"][0]["title"] == "Zebras"

    # what the run records (and `ponder resume` rebuilds the engine from)
    assert {k: config[k] for k in ("mode", "model", "base_url", "dialect", "thinking", "preserve_reasoning",
                                   "max_steps", "max_tool_calls", "max_tokens", "max_cost_usd", "timeout_s",
                                   "idle_timeout_s", "tools", "corpus", "self_check", "verify_code")} == {
        "mode": mode, "model": "x", "base_url": "http://127.0.0.1:8123/v1", "dialect": "vllm", "thinking": "off",
        "preserve_reasoning": False, "max_steps": 7, "max_tool_calls": 9, "max_tokens": 5000, "max_cost_usd": 0.5,
        "timeout_s": 77, "idle_timeout_s": 3.5, "tools": ["calculator", "search"], "corpus": str(corpus),
        "self_check": True, "verify_code": False}
    if mode == "swarm":
        assert (config["sub_model"], config["sub_max_steps"], config["max_parallel"]) == ("y", 4, 6)


@pytest.mark.parametrize("mode", ["interleaved", "swarm"])
def test_threads_reach_an_embedded_model(mode, scripted, monkeypatch):
    sub = ["--sub-model", "smollm2"] if mode == "swarm" else []
    engine, config = _run_capturing(monkeypatch, ["--mode", mode, "-m", "smollm2", "--threads", "3", "--tools", "",
                                                  *sub])
    assert scripted.built and all(b.kwargs.get("n_threads") == 3 for b in scripted.built)
    assert all("idle_timeout_s" not in b.kwargs for b in scripted.built)  # an HTTP option only
    assert config["threads"] == 3


def test_json_commands_print_only_json_lines(tmp_path, monkeypatch):
    """`--json` on any command: every stdout line parses as JSON (messages go to stderr)."""
    monkeypatch.setenv("PONDER_HOME", str(tmp_path))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Brine Canal\nThe Brine Canal opened in 1871.")
    (tmp_path / "docs" / "b.bin").write_bytes(b"\x00\x01\x02")
    suite = tmp_path / "s.jsonl"
    suite.write_text(json.dumps({"question": "2+2?", "answer": "4", "grader": "number"}) + "\n")
    runner = CliRunner()
    for args in (["models", "--json"], ["corpus", "build", str(tmp_path / "docs"), "--out", str(tmp_path / "ix"), "--json"],
                 ["corpus", "search", "canal", "--index", str(tmp_path / "ix"), "--json"], ["runs", "--json"],
                 ["tco", "--model", "deepseek-v3", "--gpu", "h200", "--json"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        assert lines or args[0] == "runs", args  # (no runs stored yet: no lines)
        try:  # one JSON document (tco's is indented), or JSON lines: nothing else on stdout
            json.loads(r.stdout)
        except ValueError:
            for ln in lines:
                json.loads(ln)
