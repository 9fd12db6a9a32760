"""Timeouts that mean what they say, retries that respect the server, a pool that keeps each
model's settings and closes when its models do, and the rarer wire faults (HTML where JSON
was due, JSON where a stream was due, `event: error`, damaged non-streamed bodies)."""

from __future__ import annotations

import asyncio
import email.utils
import subprocess
import sys
import textwrap
import time

import pytest

from ponder.core.errors import ConfigError
from ponder.core.events import ErrorEvent, ModelCallFinished, ToolCallEvent
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.openai_compat import OpenAICompatModel
from ponder.models.retry import backoff_delay, retry_after_s
from ponder.testing_http import FAULT_ANSWER, FAULTS, MockOpenAIServer, MockReply, Pause, Raw, sse_text_reply

REQ = ChatRequest(messages=[Message.user("hi")])


def at(url: str, **kw) -> OpenAICompatModel:
    kw.setdefault("backoff_s", 0.01)
    return OpenAICompatModel(resolve("t", base_url=url, dialect="openai"), **kw)


async def run(m: OpenAICompatModel):
    t0 = time.perf_counter()
    evs = [ev async for ev in m.stream(REQ)]
    return evs, time.perf_counter() - t0


def chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


END = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


# ---- timeouts ---------------------------------------------------------------------------------
async def test_each_model_keeps_its_own_timeouts_on_a_shared_pool():
    """The pool is shared by endpoint, but timeouts travel with each request: a model created
    after another one on the same URL still stops at its own idle limit."""
    async with MockOpenAIServer(lambda p, n: FAULTS["ok" if n == 0 else "stall_after_first_token"](n)) as srv:
        patient = at(srv.base_url, idle_timeout_s=60)
        assert isinstance((await run(patient))[0][-1], ModelCallFinished)  # creates the pooled session
        strict = at(srv.base_url, idle_timeout_s=0.3)
        evs, took = await run(strict)
        assert strict._session is patient._session  # one pool, two behaviours
    assert isinstance(evs[-1], ErrorEvent) and "0.3 s (idle_timeout_s)" in evs[-1].message
    assert took < 2.0


async def test_the_wait_for_the_first_chunk_is_first_byte_not_idle():
    """Queueing and prefill happen before the first chunk: that wait has its own, longer limit."""
    reply = MockReply(sse=[Pause(0.8), chunk("late"), END])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url, idle_timeout_s=0.3, first_byte_timeout_s=3))
    assert isinstance(evs[-1], ModelCallFinished) and evs[-1].message.content == "late"


async def test_keep_alive_comments_keep_a_slow_stream_alive():
    """A server that sends SSE comments while it works is not stalled (DeepSeek does this)."""
    ping = [Raw(b": keep-alive\n\n"), Pause(0.15)]
    reply = MockReply(sse=[*ping * 5, chunk("a"), *ping * 5, chunk("b"), END])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, took = await run(at(srv.base_url, idle_timeout_s=0.4, first_byte_timeout_s=0.4))
    assert isinstance(evs[-1], ModelCallFinished) and evs[-1].message.content == "ab" and took > 1.2


async def test_timeout_s_bounds_all_attempts_together():
    async with MockOpenAIServer(lambda p, n: FAULTS["stall_before_headers"](n)) as srv:
        evs, took = await run(at(srv.base_url, first_byte_timeout_s=0.5, timeout_s=1.2, max_retries=10))
        n = len(srv.requests)
    assert isinstance(evs[-1], ErrorEvent) and evs[-1].retryable
    assert took < 2.0 and 2 <= n <= 3
    assert "timeout_s=1.2" in evs[-1].message or "timeout_s" in evs[-1].message


async def test_non_streamed_reply_waits_up_to_timeout_s_not_first_byte():
    body = {"choices": [{"message": {"content": "slow but whole"}, "finish_reason": "stop"}]}
    async with MockOpenAIServer(lambda p, n: MockReply(json_body=body, delay_s=0.6)) as srv:
        fin = await at(srv.base_url, stream=False, first_byte_timeout_s=0.2, timeout_s=5).complete(REQ)
    assert fin.message.content == "slow but whole"


@pytest.mark.parametrize("opt", ["idle_timeout_s", "first_byte_timeout_s", "connect_timeout_s", "timeout_s"])
@pytest.mark.parametrize("bad", [0, -1, True, "30"])
def test_timeouts_must_be_positive_seconds(opt, bad):
    with pytest.raises(ConfigError, match=f"{opt} must be a positive number of seconds"):
        at("http://127.0.0.1:9/v1", **{opt: bad})


# ---- Retry-After --------------------------------------------------------------------------------
def test_retry_after_forms():
    assert retry_after_s({"Retry-After": "7"}) == 7.0
    assert retry_after_s({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_s({"Retry-After": date}) <= 31
    assert retry_after_s({"Retry-After": "soon"}) is None and retry_after_s({}) is None


def test_backoff_never_earlier_than_retry_after_and_jitter_only_above():
    delays = [backoff_delay(a, 0.5, 2.0) for a in range(4) for _ in range(500)]
    assert min(delays) >= 2.0 and len({round(d, 6) for d in delays}) > 100
    plain = [backoff_delay(0, 0.5, None) for _ in range(500)]
    assert 0.25 <= min(plain) and max(plain) <= 0.75


async def test_retry_after_beyond_the_call_timeout_gives_up_at_once():
    limited = MockReply(status=429, json_body={"error": {"message": "quota"}}, headers={"Retry-After": "120"})
    async with MockOpenAIServer(lambda p, n: limited) as srv:
        evs, took = await run(at(srv.base_url, timeout_s=5))
        assert len(srv.requests) == 1
    assert took < 1.0 and "asks to wait 120 s, beyond this call's timeout_s=5" in evs[-1].message


# ---- the pool's lifetime -------------------------------------------------------------------------
async def test_aclose_closes_the_session_its_models_opened():
    async with MockOpenAIServer(lambda p, n: sse_text_reply(content="x")) as srv:
        a, b = at(srv.base_url), at(srv.base_url)
        await a.complete(REQ)
        await b.complete(REQ)
        session = a._session
        assert session is b._session
        await a.aclose()
        assert not session.closed  # b still holds it
        assert (await b.complete(REQ)).message.content == "x"
        await b.aclose()
        assert session.closed
        assert (await a.complete(REQ)).message.content == "x"  # a closed model reopens on use
        await a.aclose()


async def test_a_client_the_caller_gave_is_never_closed():
    import aiohttp

    async with MockOpenAIServer(lambda p, n: sse_text_reply(content="x")) as srv, aiohttp.ClientSession() as mine:
        m = at(srv.base_url, client=mine)
        await m.complete(REQ)
        await m.aclose()
        assert not mine.closed


@pytest.mark.parametrize("close", [True, False])
def test_readme_example_exits_without_unclosed_session_warnings(close):
    """The README's `await Interleaved(...).run(...)` in a script, with and without aclose():
    no "Unclosed client session" at exit either way."""
    script = textwrap.dedent(f"""
        import asyncio
        from ponder import Interleaved, model
        from ponder.testing_http import MockOpenAIServer, sse_text_reply

        async def main():
            async with MockOpenAIServer(lambda p, n: sse_text_reply(content="42")) as srv:
                m = model("openai:" + srv.base_url + "#m")
                run = await Interleaved(m, thinking="off").run("6*7?")
                print("answer", run.answer, run.status)
                if {close}:
                    await m.aclose()

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "answer 42 ok" in out.stdout
    assert "Unclosed" not in out.stderr and "ResourceWarning" not in out.stderr, out.stderr


# ---- rarer wire faults ---------------------------------------------------------------------------
async def test_an_html_page_with_status_200_is_named_not_retried():
    page = MockReply(status=200, body=b"<html><head><title>Open WebUI</title></head><body>app</body></html>")
    async with MockOpenAIServer(lambda p, n: page) as srv:
        evs, _ = await run(at(srv.base_url, max_retries=3))
        assert len(srv.requests) == 1
    msg = evs[-1].message
    assert isinstance(evs[-1], ErrorEvent) and "HTTP 200 with an HTML body (page title: 'Open WebUI')" in msg and "base_url" in msg


async def test_a_json_reply_to_a_stream_request_is_taken_whole():
    body = {"choices": [{"message": {"content": FAULT_ANSWER}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    async with MockOpenAIServer(lambda p, n: MockReply(json_body=body)) as srv:
        fin = await at(srv.base_url).complete(REQ)
    assert fin.message.content == FAULT_ANSWER and fin.usage.completion_tokens == 5


async def test_event_error_lines_are_errors_not_ignored_chunks():
    reply = MockReply(sse=[chunk("par"), chunk("tial"), Raw(b"event: error\ndata: {\"message\": \"context length exceeded\"}\n\n")])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url))
    err = evs[-1]
    assert isinstance(err, ErrorEvent) and "context length exceeded" in err.message and err.partial.content == "partial"


async def test_a_chunk_that_is_json_but_not_an_object_is_damage():
    reply = MockReply(sse=[chunk("a"), b"42", chunk("b"), END])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url))
    assert evs[-1].error_type == "StreamDamaged" and evs[-1].partial.content == "ab"


@pytest.mark.parametrize("odd", [
    {"choices": [{"index": 0, "delta": {"content": 5}}]},  # a number where text belongs
    {"choices": {"index": 0}},  # an object where a list belongs
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": 7}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "first", "function": {"name": "f"}}]}}]},
])
async def test_json_chunks_of_the_wrong_shape_are_damage_not_a_crash(odd):
    reply = MockReply(sse=[chunk("a"), odd, chunk("b"), END])
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url))
    assert evs[-1].error_type == "StreamDamaged" and evs[-1].partial.content == "ab"
    assert "1 chunk with malformed JSON dropped" in evs[-1].message


@pytest.mark.parametrize("body,kind,says", [
    (b'{"choices": [{"message": {"content": "caf\xe9"}, "finish_reason": "stop"}]}', "StreamDamaged", "invalid UTF-8"),
    (b'{"error": {"message": "model overloaded"}}', "ModelError", "model overloaded"),
    (b'{"object": "chat.completion"}', "ModelError", "has no choices"),
    (b'{"choices": [{"message": {"content": ["a", "list"]}}]}', "ModelError", "malformed response body"),
    (b'{"choices": [{"message": {"content": "cut', "ModelError", "malformed response body"),
])
async def test_damaged_non_streamed_bodies(body, kind, says):
    reply = MockReply(body=body, content_type="application/json")
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url, stream=False))
    assert isinstance(evs[-1], ErrorEvent) and evs[-1].error_type == kind and says in evs[-1].message
    if kind == "StreamDamaged":
        assert evs[-1].partial.content == "caf\ufffd"


async def test_a_cut_during_a_tool_call_keeps_the_call_in_partial_but_does_not_run_it():
    reply = sse_text_reply(content="Let me look.", tool_calls=[{"id": "c1", "name": "lookup", "arguments": {"q": "x" * 30}}])
    reply.cut_after = len(reply.sse) - 2  # after the first half of the arguments
    async with MockOpenAIServer(lambda p, n: reply) as srv:
        evs, _ = await run(at(srv.base_url))
    err = evs[-1]
    assert not any(isinstance(e, ToolCallEvent) for e in evs)
    call = err.partial.tool_calls[0]
    assert err.error_type == "StreamInterrupted" and call.name == "lookup" and call.id == "c1" and call.parse_error


async def test_a_stalled_stream_does_not_hold_its_siblings():
    """Three stalled calls among many: each ends at its own limit, the rest finish normally."""
    def handler(p, n):
        return FAULTS["stall_after_first_token" if n % 10 == 0 else "ok"](n)

    async with MockOpenAIServer(handler) as srv:
        m = at(srv.base_url, idle_timeout_s=0.4)
        t0 = time.perf_counter()
        results = await asyncio.gather(*(run(m) for _ in range(30)))
        took = time.perf_counter() - t0
    kinds = [type(evs[-1]).__name__ for evs, _ in results]
    assert kinds.count("ErrorEvent") == 3 and kinds.count("ModelCallFinished") == 27
    assert took < 3.0


async def test_aclose_of_a_model_that_never_called_leaves_others_alone():
    from ponder.models.pool import shared_client

    async with MockOpenAIServer(lambda p, n: sse_text_reply(content="x")) as srv:
        shared = shared_client(srv.base_url)
        await at(srv.base_url).aclose()
        user = at(srv.base_url)
        await user.complete(REQ)
        await at(srv.base_url).aclose()
        assert not shared.closed and not user._session.closed
