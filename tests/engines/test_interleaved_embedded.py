"""End to end on the embedded SmolLM2 (offline, in-process): think, call python, answer."""

from __future__ import annotations

import pytest

from ponder.core.events import ReasoningDelta, ToolResult
from ponder.engines.base import Budgets
from ponder.engines.interleaved import Interleaved
from ponder.models.registry import model
from ponder.tools.sandbox import python_tool


@pytest.mark.slow
async def test_embedded_model_thinks_uses_python_and_answers():
    m = model("smollm2", temperature=0.0, max_tokens=200)
    # first_tool_choice="required": a 135M model otherwise often answers from memory (wrongly)
    eng = Interleaved(m, [python_tool()], thinking="on", budgets=Budgets(max_steps=4, wall_timeout_s=240),
                      first_tool_choice="required")
    res = await eng.run("Use the python tool to compute 17*23 and print it. Then answer with the number.")
    assert res.status == "ok", (res.status, res.reason)
    ran = [e for e in res.events if isinstance(e, ToolResult) and e.name == "python" and e.ok]
    assert ran, [e for e in res.events if isinstance(e, ToolResult)]
    # the schema puts `thinking` first: reasoning streams before every action
    assert any(isinstance(e, ReasoningDelta) for e in res.events)
    assert res.metrics.violations == 0
    assert res.metrics.usage.reasoning_tokens > 0 and res.metrics.ttft_first_s is not None
