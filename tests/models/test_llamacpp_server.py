"""Integration: the real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`)
with the embedded SmolLM2 model on 127.0.0.1, spoken to through the `llamacpp` dialect."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from ponder.core.events import ContentDelta, ModelCallFinished
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.embedded import bundled_gguf
from ponder.models.registry import model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    logf = log.open("w")  # a file, not a pipe: llama.cpp logs a lot and a full pipe would block it
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
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


async def _server_answer(url: str) -> dict:
    """The server's own reply (and usage) for REQ, fetched with a plain client."""
    async with httpx.AsyncClient(timeout=120) as c:
        r = await c.post(url + "/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name three colours."}],
            "max_tokens": 24, "temperature": 0.0, "seed": 1})
        return r.json()


REQ = ChatRequest(messages=[Message.system("Answer briefly."), Message.user("Name three colours.")], max_tokens=24, temperature=0.0, seed=1)


async def test_streams_through_llamacpp_dialect_with_telemetry(llama_server):
    m = model(f"llamacpp:{llama_server}#smollm2")
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
    m = model(f"llamacpp:{llama_server}#smollm2", stream=False)
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
    ours = await model(f"llamacpp:{llama_server}#smollm2").complete(REQ)
    assert ours.message.content == sdk.choices[0].message.content


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
    # a named tool call, streamed through ponder's transport: llama_cpp.server repeats the name in
    # every delta; until the transport stops joining them the probe must say so, naming it
    assert v["tool_call_stream"] in ("ok", "garbled")
    if v["tool_call_stream"] == "garbled":
        assert "get_weatherget_weather" in r.check("tool_call_stream").detail
    save_profile(r, spec, "smollm2-server")
    saved = resolve("smollm2-server")
    assert saved.base_url == llama_server and not saved.profile.native_thinking and saved.profile.replay == "never"
