"""Client histories into ponder messages: what is restored, what is refused, the cache's budget."""

from __future__ import annotations

import pytest

from ponder.core.messages import Message, Reasoning, ToolCall
from ponder.server.conversation import ReasoningCache, convert
from ponder.server.openai_schema import APIError, ChatCompletionRequest


def msgs(*raw: dict) -> list:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": list(raw)}).messages


def test_client_kept_reasoning_and_think_tags_are_used_when_nothing_is_cached():
    conv = convert(msgs({"role": "developer", "content": "rules"}, {"role": "user", "content": "q1"},
                        {"role": "assistant", "content": "a1", "reasoning_content": "kept by the client"},
                        {"role": "user", "content": [{"type": "text", "text": "q2"}, {"type": "text", "text": "more"}]},
                        {"role": "assistant", "content": "<think>inline\nthought</think>a2"},
                        {"role": "user", "content": "q3"}), ReasoningCache())
    m = conv.messages
    assert [x.role for x in m] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert m[2].reasoning.text == "kept by the client" and m[3].content == "q2\nmore"
    assert (m[4].content, m[4].reasoning.text) == ("a2", "inline\nthought")
    assert (conv.question, conv.last_user, conv.restored) == ("q3", 5, 0)


def test_cached_tool_turn_replaces_the_clients_copy_and_maps_ids_back():
    cache = ReasoningCache()
    original = Message.assistant("checking", reasoning=Reasoning(text="why I call it", model="k", dialect="kimi"),
                                 tool_calls=[ToolCall(id="functions.f:0", name="f", arguments={"x": 1},
                                                      raw_arguments='{"x":1}')])
    cache.remember_calls(original, {"functions.f:0": "call_ours"})
    conv = convert(msgs({"role": "user", "content": "q"},
                        {"role": "assistant", "content": "checking", "tool_calls": [
                            {"id": "call_ours", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
                        {"role": "tool", "tool_call_id": "call_ours", "content": "1"}), cache)
    assert conv.messages[1] is original and conv.restored == 1
    assert conv.messages[2].tool_call_id == "functions.f:0"


def test_answers_are_keyed_by_question_and_text():
    cache = ReasoningCache()
    steps = (Message.assistant(None, reasoning="r1", tool_calls=[ToolCall(id="t", name="calc", arguments={})]),
             Message.tool("t", "5", "calc"), Message.assistant("five", reasoning="r2"))
    cache.remember_answer("what is 2+3?", "five", steps)
    hit = convert(msgs({"role": "user", "content": "what is 2+3?"}, {"role": "assistant", "content": "five"},
                       {"role": "user", "content": "and 3+4?"}), cache)
    assert hit.messages[1:4] == list(steps) and hit.restored == 1
    other = convert(msgs({"role": "user", "content": "something else"}, {"role": "assistant", "content": "five"},
                         {"role": "user", "content": "ok"}), cache)  # same text, other question: not ours
    assert other.restored == 0 and other.messages[1].reasoning is None


def test_cache_keeps_to_its_byte_budget_least_recently_used_first():
    cache = ReasoningCache(max_bytes=3000)
    for i in range(10):
        cache.remember_answer(f"q{i}", f"a{i}", (Message.assistant(f"a{i}", reasoning="x" * 500),))
        assert cache.answer("q0", "a0") is not None or i >= 3  # q0 used: kept while others go
    assert cache.bytes <= 3000 and 1 <= len(cache) < 10
    assert cache.answer("q9", "a9") is not None and cache.answer("q1", "a1") is None
    off = ReasoningCache(max_bytes=0)
    off.remember_answer("q", "a", (Message.assistant("a", reasoning="r"),))
    assert len(off) == 0


def test_images_and_bad_parts():
    conv = convert(msgs({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.png", "detail": "low"}},
        {"type": "text", "text": "what is this?"}]}), None)
    assert conv.messages[0].images[0].url == "https://example.org/cat.png" and conv.question == "what is this?"
    for part in ({"type": "image_url", "image_url": {"url": "/etc/passwd"}}, {"type": "input_audio", "input_audio": {}}):
        with pytest.raises(APIError) as e:
            convert(msgs({"role": "user", "content": [part]}), None)
        assert e.value.status == 400 and "messages[0].content[0]" in e.value.message
    with pytest.raises(APIError) as e:
        convert(msgs({"role": "user", "content": "q"}, {"role": "tool", "content": "x"}), None)
    assert e.value.status == 422 and "tool_call_id" in e.value.message
