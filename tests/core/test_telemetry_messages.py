"""Direct tests of the spine's small parts: telemetry aggregation and the message model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.core.events import ErrorEvent, ModelCallFinished, ToolResult
from ponder.core.messages import Message, Reasoning, ToolCall, Usage
from ponder.core.telemetry import RunTelemetry


def _call(agent: str, prompt: int, out: int, ttft: float | None, tps: float | None, cost: float) -> ModelCallFinished:
    return ModelCallFinished(model="m", message=Message.assistant("x"), usage=Usage(prompt_tokens=prompt, completion_tokens=out),
                             cost_usd=cost, ttft_s=ttft, total_s=1.0, decode_tokens_per_s=tps, agent=agent)


def test_telemetry_aggregates_calls_tools_errors_and_damage_per_agent():
    t = RunTelemetry()
    for ev in (_call("a", 10, 5, 0.3, 40.0, 0.01), _call("b", 20, 1, None, None, 0.02), _call("a", 5, 5, 0.1, 60.0, 0.0),
               ToolResult(call_id="c", name="t", ok=True, content="ok"), ToolResult(call_id="d", name="t", ok=False, content="e"),
               ErrorEvent(error_type="StreamDamaged", message="bad chunk"), ErrorEvent(error_type="ModelError", message="x")):
        t.observe(ev)
    s = t.summary()
    assert (t.model_calls, t.tool_calls, t.tool_errors, t.model_errors, t.damaged_streams) == (3, 2, 1, 2, 1)
    assert t.usage.total_tokens == 46 and t.per_agent_calls == {"a": 2, "b": 1}
    assert s["ttft_first_s"] == 0.3 and s["ttft_median_s"] == pytest.approx(0.2) and s["decode_tps_median"] == 50.0
    assert s["cost_usd"] == pytest.approx(0.03) and s["model_time_s"] == 3.0


def test_usage_adds_in_place_and_by_value():
    a, b = Usage(prompt_tokens=3, cached_prompt_tokens=1, completion_tokens=2, reasoning_tokens=1), Usage(prompt_tokens=1)
    c = a + b
    assert c.prompt_tokens == 4 and a.prompt_tokens == 3  # + makes a new one
    a.add(b)
    assert a.prompt_tokens == 4 and a.total_tokens == 6


def test_messages_are_frozen_keep_reasoning_and_raw_arguments():
    m = Message.assistant(None, reasoning="think", tool_calls=[ToolCall(id="1", name="f", arguments={"a": 1},
                                                                         raw_arguments='{"a": 1 }')])
    assert m.reasoning == Reasoning(text="think") and m.tool_calls[0].arguments_json() == '{"a": 1 }'
    with pytest.raises(ValidationError):
        m.content = "changed"  # type: ignore[misc]
    assert Message.model_validate_json(m.model_dump_json()) == m  # byte-exact round trip
    assert ToolCall(id="2", name="g", arguments={"b": [1]}).arguments_json() == '{"b": [1]}'
    assert m.wire_cache() is m.wire_cache() and m.model_copy().wire_cache() is not m.wire_cache()


def test_run_metrics_never_share_their_dicts_between_runs():
    from ponder.engines.base import Budgets
    from ponder.engines.runtime import RunContext

    a, b = RunContext(run_id="a", budgets=Budgets()), RunContext(run_id="b", budgets=Budgets())
    ma, mb = a.base_metrics(), b.base_metrics()
    ma.extra["x"] = 1
    ma.usage.prompt_tokens = 5
    assert mb.extra == {} and mb.rewards is not ma.rewards and b.telemetry.usage.prompt_tokens == 0
