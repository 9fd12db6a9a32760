"""ponder's HTTP backend against a real local test-double server: SSE parsing, usage, tool-call
assembly, retries with backoff, typed errors, cut streams, secrets never leaking."""

from __future__ import annotations

import pytest

from ponder.core.errors import MissingKeyError, ModelError, UnknownModelError
from ponder.core.events import ContentDelta, ErrorEvent, ModelCallFinished, ReasoningDelta, ToolCallEvent
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.openai_compat import OpenAICompatModel
from ponder.models.registry import model
from ponder.testing_http import MockOpenAIServer, MockReply, sse_text_reply

USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4},
         "completion_tokens_details": {"reasoning_tokens": 3}}
REQ = ChatRequest(messages=[Message.user("hi")])


def kimi_at(url: str, **kw) -> OpenAICompatModel:
    return OpenAICompatModel(resolve("kimi-k2.5").model_copy(update={"base_url": url}), api_key="sk-secret-123456", backoff_s=0.01, **kw)


async def collect(m, req=REQ):
    return [ev async for ev in m.stream(req)]


async def test_stream_reasoning_content_tool_calls_usage_and_cost():
    reply = sse_text_reply(content="Hello there", reasoning="let me think", usage=USAGE,
                           tool_calls=[{"id": "functions.lookup:0", "name": "lookup", "arguments": {"q": "x"}}])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs = await collect(kimi_at(srv.base_url))
    kinds = [type(e).__name__ for e in evs]
    assert kinds.index("ReasoningDelta") < kinds.index("ContentDelta") < kinds.index("ToolCallEvent")
    assert "".join(e.text for e in evs if isinstance(e, ReasoningDelta)) == "let me think"
    assert "".join(e.text for e in evs if isinstance(e, ContentDelta)) == "Hello there"
    call = next(e for e in evs if isinstance(e, ToolCallEvent)).call
    assert (call.id, call.name, call.arguments) == ("functions.lookup:0", "lookup", {"q": "x"})
    fin = evs[-1]
    assert isinstance(fin, ModelCallFinished)
    assert fin.usage.prompt_tokens == 12 and fin.usage.cached_prompt_tokens == 4 and fin.usage.reasoning_tokens == 3
    assert fin.cost_usd == pytest.approx((8 * 0.60 + 4 * 0.10 + 7 * 3.00) / 1e6)
    assert fin.ttft_s is not None and 0 < fin.ttft_s <= fin.total_s
    assert fin.message.reasoning.text == "let me think" and fin.message.reasoning.dialect == "kimi"
    assert srv.headers[0]["authorization"] == "Bearer sk-secret-123456"


@pytest.mark.parametrize("fragment,crlf", [(5, False), (1, True), (None, True)])
async def test_sse_lines_split_across_network_reads_parse_the_same(fragment, crlf):
    """The client splits SSE lines itself (one await per network read): lines cut at any byte,
    and CRLF line ends, must give exactly the events of the unfragmented stream."""
    def reply():
        r = sse_text_reply(content="Hello there", reasoning="let me think", usage=USAGE,
                           tool_calls=[{"id": "functions.lookup:0", "name": "lookup", "arguments": {"q": "x" * 40}}])
        return r

    async with MockOpenAIServer(lambda p, n: reply()) as srv:
        whole = await collect(kimi_at(srv.base_url))
    r2 = reply()
    r2.fragment_bytes, r2.crlf = fragment, crlf
    async with MockOpenAIServer(lambda p, n: r2) as srv:
        pieces = await collect(kimi_at(srv.base_url))

    def shape(evs):
        return [(type(e).__name__, getattr(e, "text", None)) for e in evs if not isinstance(e, ModelCallFinished)]

    assert shape(pieces) == shape(whole)
    a, b = whole[-1], pieces[-1]
    assert isinstance(b, ModelCallFinished) and b.message.content == a.message.content == "Hello there"
    assert b.message.tool_calls[0].arguments == {"q": "x" * 40} and b.usage == a.usage


async def test_vllm_reasoning_field_and_non_streaming_mode():
    body = {"choices": [{"message": {"content": "ok", "reasoning": "thought", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 2}"}}]}, "finish_reason": "tool_calls"}],
        "usage": USAGE}
    async with MockOpenAIServer(lambda p, n: MockReply(json_body=body)) as srv:
        m = model(f"vllm:{srv.base_url}#qwen3", stream=False)
        fin = await m.complete(REQ)
        assert srv.requests[0]["stream"] is False and srv.requests[0]["model"] == "qwen3"
    assert fin.message.content == "ok" and fin.message.reasoning.text == "thought"
    assert fin.message.tool_calls[0].arguments == {"a": 2}


async def test_malformed_tool_arguments_are_kept_with_a_parse_error():
    reply = sse_text_reply(tool_calls=[{"name": "f", "arguments": '{"a": 1'}], usage=USAGE)
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        fin = await kimi_at(srv.base_url).complete(REQ)
    call = fin.message.tool_calls[0]
    assert call.raw_arguments == '{"a": 1' and call.arguments == {} and "not valid JSON" in call.parse_error


async def test_retries_429_and_5xx_then_succeeds():
    def handler(p, n):
        if n == 0:
            return MockReply(status=429, json_body={"error": {"message": "slow down"}}, headers={"Retry-After": "0"})
        if n == 1:
            return MockReply(status=503, json_body={"error": {"message": "overloaded"}})
        return sse_text_reply(content="finally", usage=USAGE)
    async with MockOpenAIServer(handler) as srv:
        fin = await kimi_at(srv.base_url).complete(REQ)
        assert len(srv.requests) == 3
    assert fin.message.content == "finally"


async def test_retries_exhausted_gives_error_event_without_secret():
    async with MockOpenAIServer(lambda p, n: MockReply(status=500, json_body={"error": {"message": "boom sk-secret-123456"}})) as srv:
        evs = await collect(kimi_at(srv.base_url, max_retries=2))
        assert len(srv.requests) == 3
    err = evs[-1]
    assert isinstance(err, ErrorEvent) and err.retryable and "HTTP 500" in err.message
    assert "sk-secret-123456" not in err.message


async def test_client_error_is_typed_with_provider_message_and_not_retried():
    msg = "thinking is enabled but reasoning_content is missing in assistant tool call message at index 2"
    async with MockOpenAIServer(lambda p, n: MockReply(status=400, json_body={"error": {"message": msg}})) as srv:
        with pytest.raises(ModelError, match="reasoning_content is missing"):
            await kimi_at(srv.base_url).complete(REQ)
        assert len(srv.requests) == 1


async def test_stream_cut_mid_way_keeps_partial_output():
    reply = sse_text_reply(content="The answer is forty-two, clearly", usage=USAGE, cut_after=2)
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs = await collect(kimi_at(srv.base_url))
    err = evs[-1]
    assert isinstance(err, ErrorEvent) and "partial output kept" in err.message
    assert err.partial is not None and err.partial.content and "The answer is forty-two, clearly".startswith(err.partial.content)
    assert not any(isinstance(e, ModelCallFinished) for e in evs)


async def test_unreachable_endpoint_is_an_error_event_not_an_exception():
    m = OpenAICompatModel(resolve("x", base_url="http://127.0.0.1:9/v1"), max_retries=1, backoff_s=0.01)
    evs = await collect(m)
    assert isinstance(evs[-1], ErrorEvent) and "127.0.0.1:9" in evs[-1].message


def test_unknown_model_and_missing_key_name_the_fix(monkeypatch):
    with pytest.raises(UnknownModelError, match="Known models: .*glm-4.7"):
        model("gpt-nine")
    monkeypatch.delenv("MOONSHOT_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="MOONSHOT_API_KEY"):
        model("kimi-k2.6")
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-abcdef-very-secret")
    m = model("kimi-k2.6")
    assert "sk-abcdef" not in repr(m)


async def test_many_concurrent_streams_share_one_pool():
    import asyncio

    base = sse_text_reply(content="x", usage=USAGE)
    async with MockOpenAIServer(lambda p, n: MockReply(sse=base.sse, delay_s=0.3)) as srv:
        m = kimi_at(srv.base_url)
        res = await asyncio.gather(*(m.complete(REQ) for _ in range(120)))
        peak = srv.peak_in_flight
    assert len(res) == 120 and all(r.message.content == "x" for r in res)
    assert peak == 120  # all 120 calls were in flight at once: no small pool serializing them


async def test_sequential_calls_reuse_one_keep_alive_connection():
    async with MockOpenAIServer(lambda p, n: sse_text_reply(content="x", usage=USAGE)) as srv:
        m = kimi_at(srv.base_url)
        for _ in range(5):
            await m.complete(REQ)
        non_stream = OpenAICompatModel(m.spec, api_key="k", stream=False)
        assert srv.connections == 1
    assert len(srv.requests) == 5 and non_stream.streaming is False


async def test_error_chunk_mid_stream_keeps_the_output_before_it():
    """Providers report some failures as an `error` object inside the stream; the deltas before
    it (often in the same network read) stay in the error's partial message."""
    chunks = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in ("Hel", "lo")]
    chunks.append({"error": {"message": "overloaded, try later"}})
    async with MockOpenAIServer(lambda p, n: MockReply(sse=chunks)) as srv:
        evs = await collect(kimi_at(srv.base_url))
    err = evs[-1]
    assert isinstance(err, ErrorEvent) and "overloaded, try later" in err.message
    assert err.partial is not None and err.partial.content == "Hello"
    assert "sk-secret" not in err.message
