"""The small public API works as the README shows it (with a scripted test-double model)."""

from __future__ import annotations

import pytest

import ponder
from ponder import Interleaved, Swarm, model, tool
from ponder.testing import Reply, ScriptedModel


async def test_readme_example_shape():
    @tool
    def lookup(company: str) -> str:
        """Return the registry entry for a company."""
        return f"{company}: founded 1901 by Ada"

    m = ScriptedModel([Reply(reasoning="look it up", tool_calls=[("lookup", {"company": "Acme"})]),
                       Reply(reasoning="the registry says 1901", content="1901")])
    run = await Interleaved(m, tools=[lookup], thinking="on").run("When was Acme founded?")
    assert run.answer == "1901" and run.status == "ok"
    assert run.metrics.tool_calls == 1 and run.metrics.steps == 2
    assert run.metrics.ttft_first_s is not None and run.metrics.cost_usd == 0.0
    assert Swarm.__name__ == "Swarm" and callable(model)


def test_unknown_attribute_is_a_clear_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ponder.Nope  # noqa: B018


async def test_runs_are_journaled_and_listed_through_the_public_api(tmp_path):
    m = ScriptedModel([Reply(reasoning="say it", content="hi")])
    res = await ponder.run(Interleaved(m), "greet", db=tmp_path / "p.db")
    assert res.status == "ok" and res.run_id and res.events[0].type == "run_started"
    row = ponder.RunStore(tmp_path / "p.db").run(res.run_id)
    assert row["status"] == "ok" and row["task"] == "greet"
    cfg = ponder.EngineConfig(mode="swarm", model="smollm2", max_parallel=4)
    assert ponder.build_engine(cfg, model_factory=lambda name, c: ScriptedModel([])).config.max_parallel == 4
