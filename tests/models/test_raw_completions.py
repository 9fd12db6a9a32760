"""Raw completions: ponder renders the GLM-4.7 / Kimi K2 template and parses raw text
streamed from a real local test-double server, tags split across SSE chunks."""

from __future__ import annotations

from ponder.core.events import ModelCallFinished
from ponder.core.messages import Message, Reasoning, ToolCall
from ponder.models.base import ChatRequest
from ponder.models.registry import model
from ponder.testing_http import MockOpenAIServer, MockReply

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "w",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]


def raw_reply(text: str, size: int = 3) -> MockReply:
    chunks = [{"choices": [{"index": 0, "text": text[i : i + size]}]} for i in range(0, len(text), size)]
    chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}], "usage": {"prompt_tokens": 50, "completion_tokens": 20}})
    return MockReply(sse=chunks)


async def test_glm47_raw_round_trip():
    out = "I need the weather.</think>Let me check.<tool_call>get_weather<arg_key>city</arg_key><arg_value>Beijing</arg_value><arg_key>days</arg_key><arg_value>3</arg_value></tool_call>"
    async with MockOpenAIServer(lambda p, n: raw_reply(out)) as srv:
        m = model(f"glm-raw:{srv.base_url}#glm")
        msgs = [Message.user("weather?"), Message.assistant("ok", reasoning=Reasoning(text="OLD")), Message.user("again")]
        fin = await m.complete(ChatRequest(messages=msgs, tools=TOOLS, thinking="on", preserve_reasoning=True))
        prompt = srv.requests[0]["prompt"]
    assert isinstance(fin, ModelCallFinished)
    assert prompt.startswith("[gMASK]<sop>") and prompt.endswith("<|assistant|><think>")
    assert "<think>OLD</think>" in prompt  # preserved thinking renders the earlier turn's reasoning
    assert srv.requests[0]["skip_special_tokens"] is False
    assert fin.message.reasoning.text == "I need the weather."
    assert fin.message.content == "Let me check."
    call = fin.message.tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", {"city": "Beijing", "days": 3})


async def test_kimi_raw_round_trip_and_thinking_off_prefill():
    out = ("<think>use the tool</think><|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
           '<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>')
    async with MockOpenAIServer(lambda p, n: raw_reply(out, size=5)) as srv:
        m = model(f"kimi-raw:{srv.base_url}#k2")
        hist = [Message.user("w?"), Message.assistant(None, reasoning="r0", tool_calls=[ToolCall(id="functions.get_weather:0", name="get_weather", arguments={"city": "Oslo"})]),
                Message.tool("functions.get_weather:0", "rain")]
        fin = await m.complete(ChatRequest(messages=hist, tools=TOOLS, thinking="on"))
        await m.complete(ChatRequest(messages=[Message.user("hi")], thinking="off"))
        on_prompt, off_prompt = srv.requests[0]["prompt"], srv.requests[1]["prompt"]
    assert "## Return of functions.get_weather:0" in on_prompt
    assert off_prompt.endswith("<think></think>")
    assert fin.message.reasoning.text == "use the tool"
    call = fin.message.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("functions.get_weather:0", "get_weather", {"city": "Paris"})


async def test_malformed_raw_call_becomes_visible_text_not_a_crash():
    out = "</think><|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{bad json<|tool_call_end|><|tool_calls_section_end|>"
    async with MockOpenAIServer(lambda p, n: raw_reply(out)) as srv:
        fin = await model(f"kimi-raw:{srv.base_url}#k2").complete(ChatRequest(messages=[Message.user("x")]))
    assert fin.message.tool_calls == [] and "unparseable tool call" in fin.message.content


async def test_raw_mode_shares_the_fault_handling():
    """A malformed chunk in a raw-completions stream ends in StreamDamaged with the rest kept;
    a whole JSON reply to the stream request is parsed like a stream."""
    damaged = raw_reply("</think>Hello there, friend.", size=6)
    damaged.sse[2] = b'{"choices": [{"index": 0, "text": "o th'  # "o ther", cut short: its text is lost
    async with MockOpenAIServer(lambda p, n: damaged) as srv:
        evs = [ev async for ev in model(f"glm-raw:{srv.base_url}#glm").stream(ChatRequest(messages=[Message.user("x")]))]
    assert evs[-1].error_type == "StreamDamaged" and evs[-1].partial.content == "Helle, friend."

    whole = {"choices": [{"text": "</think>All at once.", "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 4}}
    async with MockOpenAIServer(lambda p, n: MockReply(json_body=whole)) as srv:
        fin = await model(f"glm-raw:{srv.base_url}#glm").complete(ChatRequest(messages=[Message.user("x")]))
    assert fin.message.content == "All at once." and fin.usage.completion_tokens == 4
