"""Streamed tool calls as the servers really send them. The fragment sequences below follow the
servers' own streaming code (the chunk shapes their OpenAI-compatible endpoints serialize):

* vLLM (tool parsers such as hermes): the first delta carries `id`, `type` and
  `function: {name}` only; later deltas `function: {arguments}` only; the finish chunk may
  carry the arguments' remainder together with `finish_reason`.
* SGLang (`serving_chat.py`): the first delta has id and name, every later one
  `"id": null, "function": {"name": null, "arguments": ...}`; with Kimi K2 the id is
  `functions.NAME:IDX`.
* llama-cpp-python's server (`_convert_completion_to_chat_function`): the same id and the full
  name in *every* delta, next to the argument piece (also checked against the real server in
  `test_llamacpp_server.py`).
"""

from __future__ import annotations

import json

import pytest

from ponder.core.events import ModelCallFinished, ToolCallEvent
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.dialects import get_dialect
from ponder.models.openai_compat import OpenAICompatModel
from ponder.models.tool_deltas import ToolCallAssembly
from ponder.testing_http import MockOpenAIServer, MockReply

ARGS_A = '{"city": "Paris", "unit": "celsius"}'
ARGS_B = '{"expression": "6*7"}'


def pieces(s: str, n: int = 4) -> list[str]:
    step = max(1, len(s) // n)
    return [s[i : i + step] for i in range(0, len(s), step)]


def vllm_style() -> list[dict]:
    d: list[dict] = [{"index": 0, "type": "function", "id": "chatcmpl-tool-0a1b", "function": {"name": "get_weather"}}]
    a = pieces(ARGS_A)
    d += [{"index": 0, "function": {"arguments": p}} for p in a[:-1]]
    d += [{"index": 1, "type": "function", "id": "chatcmpl-tool-2c3d", "function": {"name": "calculator"}}]
    d += [{"index": 1, "function": {"arguments": p}} for p in pieces(ARGS_B)]
    d += [{"index": 0, "function": {"arguments": a[-1]}}]  # the remainder, sent with finish_reason
    return d


def sglang_style() -> list[dict]:
    d: list[dict] = [{"id": "functions.get_weather:0", "index": 0, "type": "function",
                      "function": {"name": "get_weather", "arguments": ""}}]
    d += [{"id": None, "index": 0, "type": "function", "function": {"name": None, "arguments": p}} for p in pieces(ARGS_A)]
    d += [{"id": "functions.calculator:1", "index": 1, "type": "function", "function": {"name": "calculator", "arguments": ""}}]
    d += [{"id": None, "index": 1, "type": "function", "function": {"name": None, "arguments": p}} for p in pieces(ARGS_B)]
    return d


def llamacpp_style() -> list[dict]:
    return [{"index": 0, "id": "call__0_get_weather_cmpl-9f", "type": "function",
             "function": {"name": "get_weather", "arguments": p}} for p in pieces(ARGS_A)]


def no_index_style() -> list[dict]:
    """Calls told apart by id only; argument pieces without id belong to the last call."""
    d: list[dict] = [{"id": "c-a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]
    d += [{"function": {"arguments": p}} for p in pieces(ARGS_A)]
    d += [{"id": "c-b", "type": "function", "function": {"name": "calculator", "arguments": ARGS_B}}]
    return d


def split_name_style() -> list[dict]:
    """A server that splits the name itself: pieces that extend nothing are joined."""
    return [{"index": 0, "id": "x", "function": {"name": "get_", "arguments": ""}},
            {"index": 0, "function": {"name": "weather", "arguments": ARGS_A}}]


def cumulative_name_style() -> list[dict]:
    """A server that resends the name so far: the longer one replaces the shorter."""
    return [{"index": 0, "id": "x", "function": {"name": "get_", "arguments": ""}},
            {"index": 0, "id": "x", "function": {"name": "get_weather", "arguments": ARGS_A}}]


TWO = [("get_weather", json.loads(ARGS_A)), ("calculator", json.loads(ARGS_B))]
ONE = TWO[:1]
STYLES = {
    "vllm": (vllm_style, TWO, ["chatcmpl-tool-0a1b", "chatcmpl-tool-2c3d"]),
    "sglang": (sglang_style, TWO, ["functions.get_weather:0", "functions.calculator:1"]),
    "llamacpp": (llamacpp_style, ONE, ["call__0_get_weather_cmpl-9f"]),
    "no_index": (no_index_style, TWO, ["c-a", "c-b"]),
    "split_name": (split_name_style, ONE, ["x"]),
    "cumulative_name": (cumulative_name_style, ONE, ["x"]),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_assembly_of_recorded_fragment_sequences(style):
    make, want, ids = STYLES[style]
    asm = ToolCallAssembly()
    for tc in make():
        asm.add(tc)
    calls = asm.calls(get_dialect("openai"))
    assert [(c.name, c.arguments) for c in calls] == want
    assert [c.id for c in calls] == ids and all(c.parse_error is None for c in calls)


def as_stream(deltas: list[dict]) -> MockReply:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"tool_calls": [d]}}]} for d in deltas[:-1]]
    chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [deltas[-1]]}, "finish_reason": "tool_calls"}]})
    return MockReply(sse=chunks)


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_the_same_sequences_over_the_wire(style):
    make, want, ids = STYLES[style]
    async with MockOpenAIServer(lambda p, n: as_stream(make())) as srv:
        m = OpenAICompatModel(resolve("t", base_url=srv.base_url, dialect="openai"))
        evs = [ev async for ev in m.stream(ChatRequest(messages=[Message.user("weather?")]))]
    calls = [e.call for e in evs if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == want and [c.id for c in calls] == ids
    assert isinstance(evs[-1], ModelCallFinished) and evs[-1].finish_reason == "tool_calls"
