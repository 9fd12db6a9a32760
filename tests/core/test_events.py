from __future__ import annotations

import pytest

from ponder.core.events import (
    AgentSpawned,
    ContentDelta,
    ErrorEvent,
    MessageAppended,
    ModelCallFinished,
    ResultsDelivered,
    RunFinished,
    RunStarted,
    ToolRecovered,
    ToolResult,
    event_from_json,
    event_to_json,
)
from ponder.core.messages import Message, Reasoning, ToolCall, Usage
from ponder.core.metrics import RunMetrics
from ponder.core.telemetry import RunTelemetry
from ponder.models.base import CallAssembler
from ponder.models.catalog import resolve


def test_every_event_round_trips_through_json():
    msg = Message.assistant("hi", reasoning=Reasoning(text="r", model="m", dialect="kimi"),
                            tool_calls=[ToolCall(id="functions.f:0", name="f", arguments={"a": [1, "x"]})])
    evs = [
        ContentDelta(text="he", agent="sub-3"),
        ModelCallFinished(model="m", message=msg, usage=Usage(prompt_tokens=3, completion_tokens=2), ttft_s=0.1),
        ToolResult(call_id="c", name="python", ok=False, content="ERROR: x", error="x"),
        AgentSpawned(agent_id="a1", name="n", goal="g", depends_on=["a0"]),
        ErrorEvent(error_type="ModelError", message="cut", partial=msg),
        RunFinished(status="budget", answer=None, reason="max_steps", metrics=RunMetrics(steps=3), run_id="r"),
        RunStarted(run_id="r", mode="swarm", task="t", config={"mode": "swarm", "max_parallel": 4}, attempt=2),
        MessageAppended(index=2, message=msg, agent="w1"),
        ResultsDelivered(task_ids=["t1", "t2"], step=3, agent="orchestrator"),
        ToolRecovered(call_id="c9", name="python", action="unknown"),
    ]
    for ev in evs:
        back = event_from_json(event_to_json(ev))
        assert type(back) is type(ev) and back == ev


def test_bad_event_json_is_rejected():
    with pytest.raises(ValueError):
        event_from_json('{"type": "nope"}')


def test_assembler_telemetry_and_aggregation():
    spec = resolve("glm-4.7")
    asm = CallAssembler(spec, "main")
    asm.reasoning_delta("think")
    asm.content_delta("ans")
    evs = asm.finish(Usage(prompt_tokens=1000, cached_prompt_tokens=500, completion_tokens=101, reasoning_tokens=50), "stop")
    fin = evs[-1]
    assert isinstance(fin, ModelCallFinished)
    assert fin.message.reasoning.text == "think" and fin.message.reasoning.dialect == "glm"
    assert fin.ttft_s is not None and fin.ttft_s <= fin.total_s
    assert fin.cost_usd == pytest.approx((500 * 0.6 + 500 * 0.11 + 101 * 2.2) / 1e6)
    tel = RunTelemetry()
    for ev in evs + evs + [ToolResult(call_id="c", name="t", ok=False, content="e")]:
        tel.observe(ev)
    s = tel.summary()
    assert s["model_calls"] == 2 and s["completion_tokens"] == 202 and s["reasoning_tokens"] == 100
    assert s["tool_calls"] == 1 and s["tool_errors"] == 1
    assert s["cost_usd"] == pytest.approx(2 * fin.cost_usd)


def test_error_keeps_partial_only_when_something_arrived():
    asm = CallAssembler(resolve("smollm2"))
    assert asm.error("boom").partial is None
    asm.content_delta("par")
    assert asm.error("boom").partial.content == "par"
