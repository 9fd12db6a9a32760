"""Interleaved engine: think-before-act loop, preserved reasoning on the wire, re-asks, turn-level thinking."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ponder.core.events import (
    ContentDelta,
    Event,
    ReasoningDelta,
    RunFinished,
    StepFinished,
    ToolCallEvent,
    ToolResult,
)
from ponder.core.messages import ToolCall
from ponder.engines import prompts
from ponder.engines.interleaved import Interleaved
from ponder.engines.thinking import decide, turn_needs_thinking
from ponder.models.base import CallAssembler, ChatModel, ChatRequest
from ponder.models.catalog import ModelSpec
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import ToolFailure, tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _tool_chain_script() -> list[Reply]:
    return [
        Reply(reasoning="r1: add 1 and 2", tool_calls=[("add", {"a": 1, "b": 2})]),
        Reply(reasoning="r2: add 3 and 4", tool_calls=[("add", {"a": 3, "b": 4})]),
        Reply(reasoning="r3: both done", content="3 and 7"),
        Reply(reasoning="r4: follow-up", content="yes"),
    ]


def _assistant_payloads(payload: dict) -> list[dict]:
    return [m for m in payload["messages"] if m["role"] == "assistant"]


async def test_loop_runs_tools_and_answers_with_one_run_finished_last():
    m = ScriptedModel(_tool_chain_script())
    eng = Interleaved(m, [add], thinking="on")
    res = await eng.run("add 1+2 then 3+4")
    assert res.status == "ok" and res.answer == "3 and 7"
    finished = [e for e in res.events if isinstance(e, RunFinished)]
    assert len(finished) == 1 and res.events[-1] is finished[0]
    results = [e for e in res.events if isinstance(e, ToolResult)]
    assert [r.content for r in results] == ["3", "7"]
    assert res.metrics.steps == 3 and res.metrics.critical_steps == 3
    assert res.metrics.tool_calls == 2 and res.metrics.model_calls == 3
    assert res.metrics.violations == 0 and res.metrics.reasks == 0
    assert res.metrics.usage.reasoning_tokens > 0
    # every assistant step kept its reasoning in the conversation
    assert [msg.reasoning.text for msg in eng.messages if msg.role == "assistant"] == [
        "r1: add 1 and 2", "r2: add 3 and 4", "r3: both done"]
    assert all(e.agent == "main" for e in res.events)


async def test_kimi_payloads_carry_reasoning_content_on_every_earlier_tool_call_message():
    m = ScriptedModel(_tool_chain_script(), wire_dialect="kimi")
    eng = Interleaved(m, [add], thinking="on")
    await eng.run("add 1+2 then 3+4")
    await eng.run("and is that right?", thinking="on")
    assert len(m.payloads) == 4
    assert _assistant_payloads(m.payloads[0]) == []
    assert [a["reasoning_content"] for a in _assistant_payloads(m.payloads[1])] == ["r1: add 1 and 2"]
    assert [a["reasoning_content"] for a in _assistant_payloads(m.payloads[2])] == ["r1: add 1 and 2", "r2: add 3 and 4"]
    # the follow-up turn still sends every earlier turn's reasoning (preserved)
    later = _assistant_payloads(m.payloads[3])
    assert [a["reasoning_content"] for a in later] == ["r1: add 1 and 2", "r2: add 3 and 4", "r3: both done"]
    assert all(a["tool_calls"] for a in later[:2])
    assert all(p["thinking"] == {"type": "enabled"} for p in m.payloads)


async def test_kimi_without_preservation_keeps_only_what_kimi_requires():
    m = ScriptedModel(_tool_chain_script(), wire_dialect="kimi")
    eng = Interleaved(m, [add], thinking="on", preserve_reasoning=False)
    await eng.run("add 1+2 then 3+4")
    await eng.run("and is that right?", thinking="on")
    later = _assistant_payloads(m.payloads[3])
    # tool-call messages must keep reasoning_content (Kimi answers 400 otherwise); the final answer's is dropped
    assert [a.get("reasoning_content") for a in later] == ["r1: add 1 and 2", "r2: add 3 and 4", None]
    assert all(r.preserve_reasoning is False for r in m.requests)
    # the engine's own conversation keeps everything (a later turn may switch preservation back on)
    assert any(x.reasoning and x.reasoning.text == "r3: both done" for x in eng.messages)


async def test_glm_payloads_preserve_thinking_in_order_with_clear_thinking_false():
    m = ScriptedModel(_tool_chain_script(), wire_dialect="glm")
    eng = Interleaved(m, [add], thinking="on")
    await eng.run("add 1+2 then 3+4")
    await eng.run("and is that right?", thinking="on")
    for p in m.payloads:
        assert p["thinking"] == {"type": "enabled", "clear_thinking": False}
    assert [a["reasoning_content"] for a in _assistant_payloads(m.payloads[3])] == [
        "r1: add 1 and 2", "r2: add 3 and 4", "r3: both done"]


async def test_glm_without_preservation_clears_earlier_turns_but_keeps_current_loop():
    m = ScriptedModel(_tool_chain_script(), wire_dialect="glm")
    eng = Interleaved(m, [add], thinking="on", preserve_reasoning=False)
    await eng.run("add 1+2 then 3+4")
    # inside the turn, the current loop's reasoning goes back (interleaved)
    assert [a.get("reasoning_content") for a in _assistant_payloads(m.payloads[2])] == ["r1: add 1 and 2", "r2: add 3 and 4"]
    await eng.run("and is that right?", thinking="on")
    assert m.payloads[3]["thinking"] == {"type": "enabled", "clear_thinking": True}
    assert all("reasoning_content" not in a for a in _assistant_payloads(m.payloads[3]))


async def test_missing_reasoning_is_reasked_once_then_accepted():
    m = ScriptedModel([Reply(content="42"), Reply(reasoning="6*7 is 42", content="42")])
    res = await Interleaved(m, thinking="on").run("what is 6*7")
    assert res.status == "ok" and res.answer == "42"
    assert res.metrics.reasks == 1 and res.metrics.violations == 0
    assert m.requests[1].messages[-1].content == prompts.REASK_MISSING_REASONING
    # the re-ask instruction is not kept in the conversation; the unreasoned reply is discarded
    assert [x.role for x in res.messages] == ["system", "user", "assistant"]
    assert res.messages[-1].reasoning.text == "6*7 is 42"


async def test_second_missing_reasoning_counts_as_violation_and_proceeds():
    m = ScriptedModel([Reply(tool_calls=[("add", {"a": 1, "b": 1})]), Reply(tool_calls=[("add", {"a": 1, "b": 1})]),
                       Reply(reasoning="done", content="2")])
    res = await Interleaved(m, [add], thinking="on").run("1+1")
    assert res.status == "ok" and res.answer == "2"
    assert res.metrics.reasks == 1 and res.metrics.violations == 1
    notes = [e.note for e in res.events if isinstance(e, StepFinished)]
    assert notes[0] == "acted without reasoning (violation)"
    assert [e.had_reasoning for e in res.events if isinstance(e, StepFinished)] == [False, True]


async def test_no_reask_when_disabled_or_thinking_off():
    m = ScriptedModel([Reply(content="a")])
    res = await Interleaved(m, thinking="on", reask_missing_reasoning=False).run("q")
    assert res.metrics.reasks == 0 and res.metrics.violations == 1 and len(m.requests) == 1
    m2 = ScriptedModel([Reply(content="a")])
    res2 = await Interleaved(m2, thinking="off").run("q")
    assert res2.metrics.reasks == 0 and res2.metrics.violations == 0 and len(m2.requests) == 1


class _LateReasoningDouble(ChatModel):
    """Test double: a native thinker that emits its tool call *before* its reasoning."""

    def __init__(self) -> None:
        self.spec = ModelSpec(name="late-double", model_id="late-double", dialect="scripted", native_thinking=True)
        self.n = 0

    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        self.n += 1
        asm = CallAssembler(self.spec, agent)
        if self.n == 1:
            yield asm.tool_call(ToolCall(id="c1", name="add", arguments={"a": 2, "b": 2}))
            yield asm.reasoning_delta("after the fact")
        else:
            yield asm.reasoning_delta("now first")
            yield asm.content_delta("4")
        for ev in asm.finish():
            yield ev


async def test_reasoning_after_the_action_does_not_count():
    res = await Interleaved(_LateReasoningDouble(), [add], thinking="on").run("2+2")
    assert res.metrics.reasks == 1 and res.metrics.violations == 0 and res.answer == "4"
    assert res.metrics.tool_calls == 0  # the unreasoned tool call was discarded, not run


async def test_tag_elicited_model_reasoning_is_split_out_and_inlined_back():
    m = ScriptedModel([Reply(content="<think>plan: call add</think>", tool_calls=[("add", {"a": 2, "b": 3})]),
                       Reply(content="<think>it said 5</think>The sum is 5.")], native=False, wire_dialect="openai")
    eng = Interleaved(m, [add], thinking="on")
    res = await eng.run("2+3?")
    assert prompts.THINK_TAGS_INSTRUCTION in eng.messages[0].content
    assert res.answer == "The sum is 5." and res.metrics.violations == 0 and res.metrics.reasks == 0
    reasoning = "".join(e.text for e in res.events if isinstance(e, ReasoningDelta))
    assert "plan: call add" in reasoning and "it said 5" in reasoning
    assert all("<think>" not in e.text for e in res.events if isinstance(e, ContentDelta))
    assert eng.messages[-1].reasoning.text == "it said 5"
    # the second request gives the model its own first <think> block back, on the wire, inside
    # the content (a plain chat API has no reasoning field); the history itself is untouched
    assert m.requests[1].reasoning_as_tags
    sent = [x for x in m.payloads[1]["messages"] if x["role"] == "assistant"]
    assert sent[0]["content"].startswith("<think>plan: call add</think>") and "reasoning_content" not in sent[0]
    assert eng.messages[2].reasoning.text == "plan: call add" and "<think>" not in (eng.messages[2].content or "")


async def test_concurrent_tool_calls_in_one_step_run_together():
    started: list[float] = []

    @tool
    async def slow(x: int) -> int:
        """Slow identity."""
        started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.3)
        return x

    m = ScriptedModel([Reply(reasoning="fan out", tool_calls=[("slow", {"x": i}) for i in range(3)]),
                       Reply(reasoning="ok", content="done")])
    res = await Interleaved(m, [slow], thinking="on").run("go")
    assert res.status == "ok" and res.metrics.tool_calls == 3
    assert max(started) - min(started) < 0.2  # all three started before any finished
    tool_msgs = [x for x in res.messages if x.role == "tool"]
    calls = [c.id for c in res.messages[2].tool_calls]
    assert [t.tool_call_id for t in tool_msgs] == calls  # results kept in call order


async def test_thinking_toggles_per_turn_reach_request_and_payload():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r" if req.thinking == "on" else None, content=f"a{n}"),
                      wire_dialect="kimi")
    eng = Interleaved(m, thinking="auto")
    await eng.run("Compute 17*23 step by step")  # first turn: on
    await eng.run("thanks, in words?")  # short follow-up: off
    await eng.run("now explain why", thinking="on")
    await eng.run("prove it", thinking="off")
    assert [r.thinking for r in m.requests] == ["on", "off", "on", "off"]
    assert [p["thinking"]["type"] for p in m.payloads] == ["enabled", "disabled", "enabled", "disabled"]


async def test_auto_rule_documented_cases():
    assert decide("auto", turn_text="and in km?", first_turn=True) == "on"
    assert decide("auto", turn_text="and in km?", first_turn=False) == "off"
    assert decide("auto", turn_text="and in km?", first_turn=False, after_tool_error=True) == "on"
    assert turn_needs_thinking("what is 12 * 7", first_turn=False) == (True, "maths/code")
    assert turn_needs_thinking("first find it, then summarise", first_turn=False) == (True, "multi-step")
    assert turn_needs_thinking("ok thanks", first_turn=False) == (False, "short follow-up")
    assert decide("off", turn_text="prove the theorem", first_turn=True) == "off"


async def test_tool_error_switches_auto_step_to_on():
    m = ScriptedModel([
        Reply(reasoning="call it", tool_calls=[("add", {"a": "x", "b": 1})]),
        Reply(reasoning="retry with numbers", tool_calls=[("add", {"a": 1, "b": 1})]),
        Reply(reasoning="fine", content="2"),
        Reply(content="ok"),  # follow-up: short, auto -> off
        Reply(reasoning="hmm", tool_calls=[("add", {"a": "y", "b": 1})]),
        Reply(reasoning="after error", content="done"),
    ])
    eng = Interleaved(m, [add], thinking="auto")
    await eng.run("add them")
    res = await eng.run("ok thanks")
    assert res.metrics.extra["thinking_per_step"] == ["off"]
    res2 = await eng.run("and again")
    assert res2.metrics.extra["thinking_per_step"] == ["off", "on"]
    assert m.requests[-1].thinking == "on"


async def test_model_error_ends_run_with_status_error_not_exception():
    m = ScriptedModel([Reply(reasoning="go", tool_calls=[("add", {"a": 1, "b": 2})]), Reply(error="upstream 500")])
    res = await Interleaved(m, [add], thinking="on").run("1+2")
    assert res.status == "error" and "upstream 500" in (res.reason or "")
    assert isinstance(res.events[-1], RunFinished)
    assert any(isinstance(e, ToolCallEvent) for e in res.events)


async def test_agent_id_marks_every_event():
    m = ScriptedModel([Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 2})]), Reply(reasoning="r", content="3")])
    res = await Interleaved(m, [add], thinking="on", agent_id="sub-7").run("1+2")
    assert {e.agent for e in res.events} == {"sub-7"}


async def test_repeated_identical_tool_call_forces_an_answer_step():
    m = ScriptedModel(lambda req, n: Reply(reasoning="again", content="3" if req.tool_choice == "none" else None,
                                           tool_calls=[] if req.tool_choice == "none" else [("add", {"a": 1, "b": 2})]))
    res = await Interleaved(m, [add], thinking="on").run("1+2")
    assert res.status == "ok" and res.answer == "3"
    assert [r.tool_choice for r in m.requests] == [None, None, "none"]
    assert res.metrics.repeat_guards == 1 and res.metrics.tool_calls == 2


async def test_a_repeated_failed_call_restates_the_last_result_the_agent_got():
    """Told only "it failed", a small model answers with the error's words; its own latest
    finding is put last, where the answer step reads."""
    @tool
    def lookup(entity: str) -> str:
        """Look up an entity."""
        if entity.isdigit():
            raise ToolFailure(f"{entity} is a number, not a name")
        return f"1688 (the year {entity} was founded)"

    calls = iter([("lookup", {"entity": "Vrizael"}), ("lookup", {"entity": "1688"}), ("lookup", {"entity": "1688"})])
    m = ScriptedModel(lambda req, n: Reply(content="1688") if req.tool_choice == "none"
                      else Reply(tool_calls=[next(calls)]))
    res = await Interleaved(m, [lookup], thinking="off").run("Follow the chain.")
    last_tool = [x for x in m.requests[-1].messages if x.role == "tool"][-1].content or ""
    assert "already made this exact call" in last_tool
    assert last_tool.endswith("Your last successful tool result was: 1688 (the year Vrizael was founded)")
    assert res.answer == "1688" and m.requests[-1].tool_choice == "none"


async def test_first_tool_choice_applies_to_the_first_step_of_each_turn():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", content="ok") if any(x.role == "tool" for x in req.messages[-1:])
                      else Reply(reasoning="r", tool_calls=[("add", {"a": n, "b": 1})]))
    eng = Interleaved(m, [add], thinking="on", first_tool_choice="required")
    await eng.run("a")
    await eng.run("b")
    assert [r.tool_choice for r in m.requests] == ["required", None, "required", None]
