"""What ponder's OpenAI-compatible pass-through adds: streamed TTFT and server CPU per request.

The mock OpenAI-compatible server (a test double, `mock_openai_server.py`, 0 ms latency) runs
in its own process; `ponder serve` runs in another, with the mock named in the catalog as a
GLM-dialect model (`bench-glm`: a plain name, so one direct call per request). One client
(bare aiohttp, reading the SSE lines itself) makes the same streamed requests

* directly to the mock, and
* through ponder (`POST /v1/chat/completions`, model `bench-glm`),

alternating in rounds; TTFT is the time from sending to the first chunk with reasoning or
content. Added TTFT = median through ponder - median direct (goal: <= 2 ms). The floor is
measured the same way: a bare aiohttp relay (read the request, post it upstream, copy the
stream back; nothing else) in its own process, i.e. what one more hop costs any proxy here.
With `--latency` the mock waits before answering, so every process sleeps between request
and reply, as with a real provider, and wakes up cold for it.

Throughput: CONCURRENCY clients stream REQUESTS requests through ponder while the server
process's CPU time is read from /proc; requests per second on one core = requests / server
CPU seconds (goal: >= 500). With `--record both` (the default) it is measured with pass-through
calls journaled in the run store (`--record-passthrough`, the default) and without.

    .venv/bin/python benchmarks/proxy_overhead.py [--requests 2000] [--ttft-requests 300] [--concurrency 16]
                                                  [--record on|off|both] [--latency 0.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai_server import start_mock_server  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ponder_serve(mock_url: str, record: bool, tmp: Path) -> Iterator[tuple[str, int]]:
    models = tmp / "models.toml"
    models.write_text(f'[models.bench-glm]\nbase_url = "{mock_url}"\nmodel_id = "glm-4.7"\ndialect = "glm"\n')
    port = free_port()
    env = {**os.environ, "PONDER_MODELS": str(models), "PONDER_HOME": str(tmp / "home")}
    env.pop("PONDER_TOKEN", None)
    exe = str(Path(sys.executable).with_name("ponder"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--log-level", "warning", "--db", str(tmp / "runs.db"),
                             "--record-passthrough" if record else "--no-record-passthrough"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"ponder serve did not start: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


async def one(session: aiohttp.ClientSession, url: str, model: str) -> float:
    """One streamed request; seconds to the first chunk with reasoning or content."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Say something short."}]}
    t0 = time.perf_counter()
    ttft = None
    async with session.post(url + "/chat/completions", json=body) as r:
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:300]}")
        async for line in r.content:
            if ttft is None and line.startswith(b"data:") and b"[DONE]" not in line:
                choices = orjson.loads(line[5:]).get("choices") or [{}]
                delta = choices[0].get("delta") or {}
                if delta.get("reasoning_content") or delta.get("content"):
                    ttft = time.perf_counter() - t0
    if ttft is None:
        raise RuntimeError("no reasoning or content in the stream")
    return ttft


async def ttft_rounds(mock: str, via_url: str, n: int, model: str = "bench-glm",
                      rounds: int = 5) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    via: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
        for _ in range(10):  # warm up: connections, the server's model and catalog caches
            await one(s, mock, "glm-4.7")
            await one(s, via_url, model)
        for _ in range(rounds):
            for _ in range(n // rounds):
                direct.append(await one(s, mock, "glm-4.7"))
            for _ in range(n // rounds):
                via.append(await one(s, via_url, model))
    return direct, via


def serve_relay(upstream: str, port: int) -> None:
    """The floor: a bare aiohttp relay (runs in a child process: --serve-relay UPSTREAM PORT)."""
    from aiohttp import web

    async def main() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))

        async def chat(req: web.Request) -> web.StreamResponse:
            body = await req.read()
            async with session.post(upstream + "/chat/completions", data=body,
                                    headers={"Content-Type": "application/json"}) as r:
                resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await resp.prepare(req)
                async for chunk in r.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def relay(upstream: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-relay", upstream, str(port)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "the relay did not start"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


async def load(ponder: str, requests: int, concurrency: int) -> None:
    left = requests

    async def worker(s: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one(s, ponder, "bench-glm")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        await asyncio.gather(*(worker(s) for _ in range(concurrency)))


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1e3:6.2f} ms  p90 {xs[int(len(xs) * 0.9)] * 1e3:6.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests of the throughput run")
    ap.add_argument("--ttft-requests", type=int, default=300, help="requests per side of the TTFT comparison")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.0, help="the mock's latency before it answers, seconds")
    ap.add_argument("--record", choices=["on", "off", "both"], default="both",
                    help="journal pass-through calls (ponder serve --record-passthrough)")
    ap.add_argument("--serve-relay", nargs=2, metavar=("UPSTREAM", "PORT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve_relay:
        serve_relay(a.serve_relay[0], int(a.serve_relay[1]))
        return
    mock, stop = start_mock_server(a.latency)
    print(f"proxy overhead: {os.cpu_count()} CPUs, mock at {mock} (latency {a.latency * 1e3:g} ms), "
          f"{a.ttft_requests} TTFT requests per side, {a.requests} throughput requests at concurrency {a.concurrency}")
    try:
        with relay(mock) as relay_url:
            direct, via = asyncio.run(ttft_rounds(mock, relay_url, a.ttft_requests, model="glm-4.7"))
        floor = statistics.median(via) - statistics.median(direct)
        print(f"\nfloor, a bare aiohttp relay: added TTFT (median) {floor * 1e3:.2f} ms")
        for record in ([True, False] if a.record == "both" else [a.record == "on"]):
            with tempfile.TemporaryDirectory() as tmp, ponder_serve(mock, record, Path(tmp)) as (url, pid):
                direct, via = asyncio.run(ttft_rounds(mock, url, a.ttft_requests))
                added = statistics.median(via) - statistics.median(direct)
                c0, t0 = cpu_s(pid), time.perf_counter()
                asyncio.run(load(url, a.requests, a.concurrency))
                cpu, wall = cpu_s(pid) - c0, time.perf_counter() - t0
                label = "journaled" if record else "not journaled"
                print(f"\npass-through, {label}:")
                print(f"  TTFT direct to the mock : {ms(direct)}")
                print(f"  TTFT through ponder     : {ms(via)}")
                print(f"  added TTFT (median)     : {added * 1e3:.2f} ms   (goal <= 2 ms: {'ok' if added <= 0.002 else 'MISSED'}; "
                      f"{(added - floor) * 1e3:+.2f} ms over the floor)")
                per = cpu / a.requests
                print(f"  server CPU per request  : {per * 1e3:.3f} ms -> {1 / per:,.0f} requests/s on one core "
                      f"(goal >= 500: {'ok' if 1 / per >= 500 else 'MISSED'})")
                print(f"  achieved on this box    : {a.requests / wall:,.0f} requests/s (client, mock and server share "
                      f"{os.cpu_count()} CPUs)")
    finally:
        stop()


if __name__ == "__main__":
    main()
