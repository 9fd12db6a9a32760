"""Helpers for the server tests: real servers on 127.0.0.1, in a thread or a subprocess.

* `serve_app(app)`: uvicorn serving an ASGI app in a thread (the app's models may be
  scripted test doubles, built in this process);
* `upstream_reply(payload, n)`: one handler that plays a plain model, an Interleaved agent,
  a swarm's orchestrator and its sub-agents, by what the request offers;
* `catalog_file(tmp, url)`: a models.toml naming the mock as catalog models (`mock-glm`,
  `mock-kimi`), for a `ponder serve` / `ponder mcp` subprocess (via PONDER_MODELS).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ponder.testing_http import MockReply, sse_text_reply

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 3}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """uvicorn on 127.0.0.1 in a thread; yields the base URL (no trailing slash)."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(timeout=10)


# ---- one scripted upstream for every role ---------------------------------------------------------
def _tools(payload: dict[str, Any]) -> list[str]:
    return [(t.get("function") or {}).get("name", "") for t in payload.get("tools") or []]


def upstream_reply(payload: dict[str, Any], n: int) -> MockReply:
    """A plain model, an Interleaved agent with a calculator, or a swarm (orchestrator: plan
    two sub-agents, wait, finish citing them; sub-agents: answer at once)."""
    msgs = payload.get("messages", [])
    tools = _tools(payload)
    turns = sum(1 for m in msgs if m.get("role") == "assistant")
    if "plan" in tools or tools == ["finish"]:
        if "plan" in tools and turns == 0:
            subtasks = [{"name": x, "instructions": f"You look into {x}.", "task": f"find {x}", "depends_on": [],
                         "tools": []} for x in ("alpha", "beta")]
            return sse_text_reply(reasoning="split it in two", usage=USAGE,
                                  tool_calls=[{"id": "plan_0", "name": "plan", "arguments": {"subtasks": subtasks}}])
        if "wait" in tools and turns == 1:
            return sse_text_reply(reasoning="wait for both", usage=USAGE,
                                  tool_calls=[{"id": "wait_0", "name": "wait", "arguments": {"task_ids": [], "mode": "all"}}])
        return sse_text_reply(reasoning="write it up", usage=USAGE, tool_calls=[
            {"id": "fin_0", "name": "finish", "arguments": {"answer": "the swarm found alpha [alpha] and beta [beta]"}}])
    if "calculator" in tools and not any(m.get("role") == "tool" for m in msgs):
        return sse_text_reply(reasoning="I should multiply with the calculator", usage=USAGE,
                              tool_calls=[{"id": "calc_0", "name": "calculator", "arguments": {"expression": "6*7"}}])
    if "calculator" in tools:
        return sse_text_reply(reasoning="the calculator said 42", content="42", usage=USAGE)
    if any(m.get("role") == "system" and "sub-agent" in str(m.get("content")) for m in msgs):
        return sse_text_reply(reasoning="easy", content="found it", usage=USAGE)
    return sse_text_reply(reasoning="a plain thought", content="plain answer", usage=USAGE)


def catalog_file(tmp: Path, base_url: str) -> Path:
    """models.toml with the mock as catalog models (GLM and Kimi dialects, with prices)."""
    p = tmp / "models.toml"
    p.write_text(
        f'[models.mock-glm]\nbase_url = "{base_url}"\nmodel_id = "glm-4.7"\ndialect = "glm"\n'
        "price_input = 1.0\nprice_cached_input = 0.5\nprice_output = 2.0\n\n"
        f'[models.mock-kimi]\nbase_url = "{base_url}"\nmodel_id = "kimi-k2.6"\ndialect = "kimi"\n'
        "price_input = 1.0\nprice_cached_input = 0.5\nprice_output = 2.0\n")
    return p


# ---- a `ponder` subprocess ----------------------------------------------------------------------------
def ponder_bin() -> str:
    return str(Path(sys.executable).with_name("ponder"))


@contextlib.contextmanager
def ponder_serve(args: list[str], env: dict[str, str], port: int | None = None,
                 timeout_s: float = 60.0) -> Iterator[str]:
    """`ponder serve ARGS --port P` as a subprocess; yields its base URL once /healthz answers."""
    port = port or free_port()
    proc = subprocess.Popen([ponder_bin(), "serve", "--port", str(port), "--log-level", "warning", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ponder serve exited {proc.returncode}: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.time() > deadline:
                raise AssertionError("ponder serve did not answer /healthz in time")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PONDER_TOKEN",)}
    env.update(extra)
    return env


def sse_data(text: str) -> list[Any]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and "[DONE]" not in line]
