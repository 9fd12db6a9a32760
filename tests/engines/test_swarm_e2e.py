"""End-to-end swarms on real backends: the embedded SmolLM2 (offline) and the HTTP backend
against the mock OpenAI-compatible server (a test double in its own process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ponder.core.events import AgentFinished, AgentSpawned, RunFinished
from ponder.engines.base import Budgets
from ponder.engines.swarm import Swarm
from ponder.tools.base import tool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from mock_openai_server import MockServer  # noqa: E402


@tool
async def work(item: int = 0) -> str:
    """Do one unit of work."""
    return f"item {item} ok"


@pytest.mark.timeout(120)
async def test_swarm_over_http_backend_against_mock_server():
    from ponder.models.registry import model

    with MockServer(0.05) as url:
        m = model(f"openai:{url}#mock")
        res = await Swarm(m, [work], max_parallel=20, sub_budgets=Budgets(max_steps=6)).run("FANOUT 20 STEPS 2: go")
    assert res.status == "ok", res.reason
    assert len([e for e in res.events if isinstance(e, AgentSpawned)]) == 20
    assert {e.status for e in res.events if isinstance(e, AgentFinished)} == {"ok"}
    assert res.metrics.peak_concurrency == 20
    assert res.metrics.critical_steps == 1 + 3 + 1  # plan, a sub-agent's 2 tool steps + answer, finish
    assert res.metrics.steps == 3 + 20 * 3
    assert res.answer and res.answer.count("[w") == 20 and res.metrics.extra["citations"]["unknown"] == []


@pytest.mark.slow
@pytest.mark.timeout(300)  # a hang guard, not a speed target (those live in benchmarks/)
async def test_swarm_on_embedded_smollm2_spawns_and_answers():
    from ponder.models.registry import model

    m = model("smollm2", max_tokens=160)
    sw = Swarm(m, [], max_parallel=3, max_agents=3, min_subtasks=3, thinking="off",
               budgets=Budgets(max_steps=5), sub_budgets=Budgets(max_steps=2), orch_max_tokens=320)
    res = await sw.run("Name three fruits and say one fact about each.")
    spawned = [e for e in res.events if isinstance(e, AgentSpawned)]
    assert len(spawned) >= 3, [e for e in res.events if getattr(e, "name", "") == "plan"]
    fin = res.events[-1]
    assert isinstance(fin, RunFinished) and fin.answer and fin.answer.strip()
    assert len([e for e in res.events if isinstance(e, AgentFinished)]) == len(spawned)
