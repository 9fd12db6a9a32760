"""Client-side cost of one model call: ponder's backend vs a bare HTTP post vs the openai SDK.

A mock OpenAI-compatible server (test double, 0 ms latency) runs in a separate process so
its CPU is not counted. For histories of 2 and 40 messages, streaming and not, each client
makes the same calls sequentially; we report median CPU ms and wall ms per call over
several alternating rounds, and ponder's ratio to the bare post (goal ≤ 1.5×) and to the SDK.

    .venv/bin/python benchmarks/call_overhead.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

import aiohttp

from ponder.core.messages import Message, Reasoning, ToolCall
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.dialects import get_dialect
from ponder.models.openai_compat import OpenAICompatModel, close_clients


def history(n: int) -> list[Message]:
    msgs = [Message.system("You are a careful research agent. " * 8)]
    i = 0
    while len(msgs) < n - 1:
        msgs.append(Message.assistant(None, reasoning=Reasoning(text="I should look this up. " * 10),
                                      tool_calls=[ToolCall(id=f"call_{i}", name="search", arguments={"query": f"fact {i}", "k": 5})]))
        msgs.append(Message.tool(f"call_{i}", "Result: " + "lorem ipsum dolor sit amet " * 20, name="search"))
        i += 1
    msgs.append(Message.user("Summarize what you found."))
    return msgs[:n]


async def run_ponder(url: str, req: ChatRequest, stream: bool, calls: int) -> None:
    m = OpenAICompatModel(resolve("bench", base_url=url, dialect="openai"), stream=stream)
    for _ in range(calls):
        await m.complete(req)
    await close_clients()


async def run_bare(url: str, payload: dict, stream: bool, calls: int) -> None:
    """The floor: the same JSON posted with the same HTTP library, the reply parsed, nothing else."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as c:
        for _ in range(calls):
            body = json.dumps(payload).encode()
            async with c.post(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}) as r:
                if stream:
                    async for line in r.content:
                        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                            json.loads(line[5:])
                else:
                    json.loads(await r.read())


async def run_sdk(url: str, payload: dict, stream: bool, calls: int) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="unused")
    for _ in range(calls):
        if stream:
            s = await client.chat.completions.create(model="bench", messages=payload["messages"], stream=True,
                                                     stream_options={"include_usage": True})
            async for _chunk in s:
                pass
        else:
            await client.chat.completions.create(model="bench", messages=payload["messages"])
    await client.close()


def measure(fn, calls: int) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(fn)
    return (time.process_time() - c0) / calls * 1000, (time.perf_counter() - t0) / calls * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    srv = subprocess.Popen([sys.executable, "-m", "ponder.testing_http", "--latency", "0"], stdout=subprocess.PIPE, text=True)
    try:
        url = srv.stdout.readline().strip()
        print(f"mock server {url} (separate process, 0 ms latency); {args.calls} calls x {args.rounds} rounds, medians\n")
        print(f"{'history':>7} {'stream':>6} | {'ponder cpu':>10} {'bare cpu':>8} {'sdk cpu':>8} | {'ponder wall':>11} {'bare wall':>9} {'sdk wall':>8}"
              f" | {'ponder/bare':>11} {'ponder/sdk':>10}")
        for n in (2, 40):
            for stream in (False, True):
                req = ChatRequest(messages=history(n))
                payload = get_dialect("openai").build_payload(resolve("bench", base_url=url), req, stream)
                res: dict[str, list[tuple[float, float]]] = {"ponder": [], "bare": [], "sdk": []}
                for r in range(args.rounds):
                    order = ["ponder", "bare", "sdk"] if r % 2 == 0 else ["sdk", "bare", "ponder"]
                    for name in order:
                        coro = {"ponder": run_ponder(url, req, stream, args.calls) if name == "ponder" else None,
                                "bare": run_bare(url, payload, stream, args.calls) if name == "bare" else None,
                                "sdk": run_sdk(url, payload, stream, args.calls) if name == "sdk" else None}[name]
                        res[name].append(measure(coro, args.calls))
                med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in res.items()}
                print(f"{n:>7} {str(stream):>6} | {med['ponder'][0]:>8.2f}ms {med['bare'][0]:>6.2f}ms {med['sdk'][0]:>6.2f}ms |"
                      f" {med['ponder'][1]:>9.2f}ms {med['bare'][1]:>7.2f}ms {med['sdk'][1]:>6.2f}ms |"
                      f" {med['ponder'][0] / med['bare'][0]:>10.2f}x {med['ponder'][0] / med['sdk'][0]:>9.2f}x")
        print("\ngoal: ponder/bare <= 1.5x CPU, and ponder below the SDK (ponder/sdk < 1)")
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
