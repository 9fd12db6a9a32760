"""A test double: a minimal OpenAI-compatible chat-completions server with a fixed latency.

Runs in its own process (so its CPU never counts as the client's), on 127.0.0.1, and
answers `POST /v1/chat/completions` (streaming SSE or plain JSON) after sleeping
`latency_s`, with a reply computed from the request by a *script*:
`script(payload: dict) -> dict` returning `{"content": str | None, "reasoning_content":
str | None, "tool_calls": [{"name": str, "arguments": dict}]}`.

The default script drives a swarm fan-out deterministically:

* the orchestrator (its request offers a `plan` tool): `plan` with N subtasks (N from
  "FANOUT N" in the task, default 3), then `wait`, then `finish` citing every agent;
  when only `finish` is offered, `finish`;
* any other agent: a call to its first non-memory tool until the conversation holds K
  tool results (K from "STEPS K" in its task, default 5), then a unique text answer.

    from mock_openai_server import start_mock_server
    url, stop = start_mock_server(0.2)      # url = "http://127.0.0.1:PORT/v1"
    ...
    stop()

or `with MockServer(0.2) as url: ...`. A custom script must be a top-level function
(it is loaded by module and name, or by file for `__main__`, in the server process).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Script = Callable[[dict[str, Any]], dict[str, Any]]

_FANOUT = re.compile(r"FANOUT\s+(\d+)")
_STEPS = re.compile(r"STEPS\s+(\d+)")


def _tool_names(payload: dict[str, Any]) -> list[str]:
    return [(t.get("function") or {}).get("name", "") for t in payload.get("tools") or []]


def _text(payload: dict[str, Any], role: str) -> str:
    return "\n".join(str(m.get("content") or "") for m in payload.get("messages", []) if m.get("role") == role)


def default_script(payload: dict[str, Any]) -> dict[str, Any]:
    """The fan-out script described in the module docstring."""
    tools = _tool_names(payload)
    msgs = payload.get("messages", [])
    n_tool = sum(1 for m in msgs if m.get("role") == "tool")
    user = _text(payload, "user")
    if "plan" in tools or tools == ["finish"] or "wait" in tools:
        called = [tc["function"]["name"] for m in msgs if m.get("role") == "assistant" for tc in m.get("tool_calls") or []]
        if "plan" in tools and "plan" not in called:
            n = int(m.group(1)) if (m := _FANOUT.search(user)) else 3
            k = int(m.group(1)) if (m := _STEPS.search(user)) else 5
            subtasks = [{"name": f"w{i}", "instructions": "You are a worker.", "task": f"part {i}; STEPS {k}",
                         "tools": ["work"], "depends_on": []} for i in range(n)]
            return {"tool_calls": [{"name": "plan", "arguments": {"subtasks": subtasks}}]}
        if "wait" in tools and "wait" not in called:
            return {"tool_calls": [{"name": "wait", "arguments": {"task_ids": [], "mode": "all"}}]}
        results = re.findall(r"^\[([\w.#-]+)\] task", "\n".join(str(m.get("content") or "") for m in msgs
                                                                  if m.get("role") == "tool"), re.M)
        answer = "done: " + " ".join(f"[{r}]" for r in results)
        if "finish" in tools:
            return {"tool_calls": [{"name": "finish", "arguments": {"answer": answer}}]}
        return {"content": answer}
    k = int(m.group(1)) if (m := _STEPS.search(user)) else 5
    work = [t for t in tools if not t.startswith("memory_")]
    if work and n_tool < k:
        return {"reasoning_content": f"need result {n_tool + 1} of {k}",
                "tool_calls": [{"name": work[0], "arguments": {"item": n_tool}}]}
    first_line = user.splitlines()[0] if user else ""
    return {"reasoning_content": "enough results; answer now",
            "content": f"result for {first_line!r} after {n_tool} tool results"}


# ---- the server (runs in the child process) -----------------------------------------------
class _Server:
    def __init__(self, latency_s: float, script: Script):
        self.latency_s = latency_s
        self.script = script
        self.ids = itertools.count()
        self.requests = 0

    def _reply(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.script(payload)
        except Exception as e:  # noqa: BLE001 - the client should see the script's failure as content
            return {"content": f"mock script error: {type(e).__name__}: {e}"}

    def _usage(self, payload: dict[str, Any], reply: dict[str, Any]) -> dict[str, int]:
        p = sum(len(str(m.get("content") or "")) // 4 + 4 for m in payload.get("messages", []))
        c = len(str(reply.get("content") or "")) // 4 + 10 * len(reply.get("tool_calls") or []) + 1
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _calls(self, reply: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": f"call_{next(self.ids)}", "type": "function",
                 "function": {"name": tc["name"], "arguments": json.dumps(tc.get("arguments") or {})}}
                for tc in reply.get("tool_calls") or []]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if method == "GET" and path.rstrip("/").endswith("/models"):
                    await self._send_json(writer, {"object": "list", "data": [{"id": "mock", "object": "model"}]})
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    await self._chat(writer, json.loads(body or b"{}"))
                else:
                    await self._send_json(writer, {"error": {"message": f"no route {method} {path}"}}, status=404)
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send_json(self, writer: asyncio.StreamWriter, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     "Connection: keep-alive\r\n\r\n".encode() + data)
        await writer.drain()

    async def _chat(self, writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
        self.requests += 1
        t0 = time.perf_counter()
        reply = self._reply(payload)
        calls = self._calls(reply)
        usage = self._usage(payload, reply)
        finish = "tool_calls" if calls else "stop"
        rid = f"chatcmpl-{next(self.ids)}"
        await asyncio.sleep(max(0.0, self.latency_s - (time.perf_counter() - t0)))
        if not payload.get("stream"):
            msg: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
            if reply.get("reasoning_content"):
                msg["reasoning_content"] = reply["reasoning_content"]
            if calls:
                msg["tool_calls"] = calls
            await self._send_json(writer, {"id": rid, "object": "chat.completion", "model": payload.get("model", "mock"),
                                           "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                           "usage": usage})
            return
        chunks: list[dict[str, Any]] = []
        if reply.get("reasoning_content"):
            chunks.append({"role": "assistant", "reasoning_content": reply["reasoning_content"]})
        if reply.get("content"):
            chunks.append({"role": "assistant", "content": reply["content"]})
        for i, c in enumerate(calls):
            chunks.append({"tool_calls": [{"index": i, **c}]})
        out = [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: keep-alive\r\n\r\n"]
        base = {"id": rid, "object": "chat.completion.chunk", "model": payload.get("model", "mock")}

        def sse(obj: Any) -> bytes:
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        for d in chunks:
            out.append(sse({**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}))
        out.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage}))
        out.append(sse(b"[DONE]"))
        out.append(b"0\r\n\r\n")
        writer.write(b"".join(out))
        await writer.drain()


def _load_script(ref: str | None) -> Script:
    if not ref:
        return default_script
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location("_mock_script_module", target)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    else:
        mod = importlib.import_module(target)
    obj: Any = mod
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


async def _serve(latency_s: float, script_ref: str | None, port: int) -> None:
    srv = _Server(latency_s, _load_script(script_ref))
    server = await asyncio.start_server(srv.handle, "127.0.0.1", port, backlog=1024)
    real = server.sockets[0].getsockname()[1]
    print(f"PORT {real}", flush=True)
    async with server:
        await server.serve_forever()


def _script_ref(script: Callable[..., Any] | str | None) -> str | None:
    if script is None or isinstance(script, str):
        return script
    mod = getattr(script, "__module__", None)
    if mod in (None, "__main__"):
        return f"{inspect.getfile(script)}:{script.__qualname__}"
    return f"{mod}:{script.__qualname__}"


def start_mock_server(latency_s: float, script: Callable[..., Any] | str | None = None,
                      *, port: int = 0, timeout_s: float = 30.0) -> tuple[str, Callable[[], None]]:
    """Start the server in a child process; returns (base_url ending in /v1, stop)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), *sys.path])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency_s), "--port", str(port)]
    ref = _script_ref(script)
    if ref:
        cmd += ["--script", ref]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + timeout_s
    line = ""
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT ") or not line:
            break
    if not line.startswith("PORT "):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"mock server did not start: {err.strip()[-2000:] or 'no output'}")
    url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()

    return url, stop


class MockServer:
    """`with MockServer(0.2) as url:` — the context-manager form of start_mock_server."""

    def __init__(self, latency_s: float, script: Callable[..., Any] | str | None = None):
        self.latency_s, self.script = latency_s, script
        self._stop: Callable[[], None] | None = None

    def __enter__(self) -> str:
        url, self._stop = start_mock_server(self.latency_s, self.script)
        return url

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="mock OpenAI-compatible server (a test double)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", default=None, help="module:function or file.py:function")
    a = ap.parse_args()
    try:
        asyncio.run(_serve(a.latency, a.script, a.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
