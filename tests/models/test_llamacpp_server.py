"""Integration: the real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`)
with the embedded SmolLM2 model on 127.0.0.1, spoken to through the `llamacpp` dialect; and
the same server in its function-calling mode for a tool-call round trip, streamed and not
(it repeats the full function name and the id in every streamed delta)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from ponder.core.events import ContentDelta, ModelCallFinished, ToolCallEvent
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.embedded import bundled_gguf
from ponder.models.registry import model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(tmp_path_factory, *extra: str):
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    logf = log.open("w")  # a file, not a pipe: llama.cpp logs a lot and a full pipe would block it
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", *extra],
        stdout=logf, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("llama_cpp.server did not come up in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        logf.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    yield from _start_server(tmp_path_factory)


@pytest.fixture(scope="module")
def llama_tool_server(tmp_path_factory):
    yield from _start_server(tmp_path_factory, "--chat_format", "chatml-function-calling")


async def _server_answer(url: str) -> dict:
    """The server's own reply (and usage) for REQ, fetched with a plain client."""
    async with httpx.AsyncClient(timeout=120) as c:
        r = await c.post(url + "/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name three colours."}],
            "max_tokens": 24, "temperature": 0.0, "seed": 1})
        return r.json()


# A loaded 2-core box slows llama.cpp a lot (grammar-constrained tokens most): generous limits,
# so these tests measure the wire, not the machine's load.
PATIENT = {"first_byte_timeout_s": 300.0, "idle_timeout_s": 120.0}

REQ = ChatRequest(messages=[Message.system("Answer briefly."), Message.user("Name three colours.")], max_tokens=24, temperature=0.0, seed=1)


async def test_streams_through_llamacpp_dialect_with_telemetry(llama_server):
    m = model(f"llamacpp:{llama_server}#smollm2", **PATIENT)
    evs = [ev async for ev in m.stream(REQ)]
    fin = evs[-1]
    assert isinstance(fin, ModelCallFinished), evs[-1]
    deltas = [e for e in evs if isinstance(e, ContentDelta)]
    assert len(deltas) >= 2 and fin.message.content == "".join(d.text for d in deltas)
    assert fin.ttft_s is not None and 0 < fin.ttft_s < fin.total_s
    assert fin.decode_tokens_per_s and fin.decode_tokens_per_s > 0
    # llama-cpp-python sends no usage in streams: one token per chunk is counted instead, and
    # must equal what the server itself reports for the same greedy request.
    raw = await _server_answer(llama_server)
    assert raw["choices"][0]["message"]["content"] == fin.message.content
    assert fin.usage.completion_tokens == raw["usage"]["completion_tokens"]


async def test_non_streaming_usage_equals_server_figures(llama_server):
    m = model(f"llamacpp:{llama_server}#smollm2", **PATIENT, stream=False)
    fin = await m.complete(REQ)
    raw = await _server_answer(llama_server)
    assert fin.usage.prompt_tokens == raw["usage"]["prompt_tokens"] > 0
    assert fin.usage.completion_tokens == raw["usage"]["completion_tokens"] > 0
    assert fin.cost_usd == 0.0


async def test_openai_sdk_is_a_wire_peer_of_the_same_server(llama_server):
    """The openai SDK (a test peer) and ponder get the same greedy answer from the same server."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=llama_server, api_key="unused")
    sdk = await client.chat.completions.create(model="smollm2", messages=[{"role": "system", "content": "Answer briefly."},
                                               {"role": "user", "content": "Name three colours."}], max_tokens=24, temperature=0.0, seed=1)
    await client.close()
    ours = await model(f"llamacpp:{llama_server}#smollm2", **PATIENT).complete(REQ)
    assert ours.message.content == sdk.choices[0].message.content


# The enum keeps the grammar-constrained arguments short and exact, so the round trip takes
# seconds on a small CPU (llama.cpp samples grammar-constrained tokens slowly).
CALC = {"type": "function", "function": {
    "name": "calculator", "description": "Evaluate an arithmetic expression.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string", "enum": ["6*7"]}},
                   "required": ["expression"]}}}
TOOL_REQ = ChatRequest(messages=[Message.user("What is 6*7? Use the calculator.")], tools=[CALC],
                       tool_choice={"type": "function", "function": {"name": "calculator"}},
                       max_tokens=24, temperature=0.0, seed=1)


@pytest.mark.slow
async def test_tool_call_round_trip_streamed_and_not(llama_tool_server):
    """llama_cpp.server repeats the whole name and the id in every streamed tool-call delta:
    the call must come out named `calculator` once, with the arguments the non-streamed reply
    has, not `calculatorcalculator...`."""
    async with httpx.AsyncClient(timeout=300) as c:  # what the server itself streams
        async with c.stream("POST", llama_tool_server + "/chat/completions", json={
                "model": "smollm2", "messages": [{"role": "user", "content": "What is 6*7? Use the calculator."}],
                "tools": [CALC], "tool_choice": TOOL_REQ.tool_choice, "max_tokens": 24, "temperature": 0.0,
                "seed": 1, "stream": True}) as r:
            chunks = [json.loads(line[6:]) async for line in r.aiter_lines() if line.startswith("data: {")]
    deltas = [tc for ch in chunks for tc in ch["choices"][0]["delta"].get("tool_calls") or []]
    assert len(deltas) >= 3 and all(d["function"]["name"] == "calculator" for d in deltas)  # the repeat is real
    assert len({d["id"] for d in deltas}) == 1

    streamed = model(f"llamacpp:{llama_tool_server}#smollm2", **PATIENT)
    evs = [ev async for ev in streamed.stream(TOOL_REQ)]
    calls = [e.call for e in evs if isinstance(e, ToolCallEvent)]
    fin = evs[-1]
    assert isinstance(fin, ModelCallFinished), fin
    assert len(calls) == 1 and calls[0].name == "calculator" and calls[0].arguments == {"expression": "6*7"}
    # the server's id (call__0_calculator_<completion id>), kept once, not joined per delta
    assert calls[0].id.startswith("call__0_calculator_cmpl-") and calls[0].id.count("calculator") == 1
    assert fin.finish_reason == "tool_calls" and fin.message.tool_calls == calls

    whole = await model(f"llamacpp:{llama_tool_server}#smollm2", **PATIENT, stream=False).complete(TOOL_REQ)
    assert [(c.name, c.arguments) for c in whole.message.tool_calls] == [("calculator", {"expression": "6*7"})]
    assert whole.message.tool_calls[0].raw_arguments == calls[0].raw_arguments
    await streamed.aclose()


async def test_probe_against_the_real_llama_cpp_server(llama_server, tmp_path, monkeypatch):
    """`ponder probe` against a real server: what it reports must match what the server does."""
    from ponder.models.catalog import resolve
    from ponder.models.probe import probe, save_profile

    monkeypatch.setenv("PONDER_MODELS", str(tmp_path / "models.toml"))
    spec = resolve(f"llamacpp:{llama_server}#smollm2")
    r = await probe(spec, max_tokens=48, timeout_s=120)
    v = {c.name: c.result for c in r.checks}
    # llama-cpp-python: no usage chunk in streams, sampling overridable, every tool_choice accepted,
    # no reasoning, reasoning_content accepted but not rendered by SmolLM2's template, no vision
    assert v["stream_usage"] == "no" and r.observed["stream_usage"] is False
    assert v["sampling"] == "overridable" and r.observed["fixed_sampling"] == []
    assert r.observed["tool_choice"] == ["auto", "none", "required", "function"]
    assert v["thinking"] == "never" and r.observed["native_thinking"] is False
    assert v["replay"] == "ignored" and "same prompt tokens" in r.check("replay").detail
    assert r.observed["strict"] is False and r.observed["replay"] == "never"
    assert v["vision"] == "no" and r.observed["vision"] is False
    # a named tool call, streamed through ponder's transport (llama_cpp.server repeats the name in
    # every delta: the transport must not join the repeats)
    assert v["tool_call_stream"] == "ok", r.check("tool_call_stream").detail
    save_profile(r, spec, "smollm2-server")
    saved = resolve("smollm2-server")
    assert saved.base_url == llama_server and not saved.profile.native_thinking and saved.profile.replay == "never"
