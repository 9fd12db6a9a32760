"""Swarm fan-out benchmark: is the engine's overhead negligible next to the model's latency?

100 sub-agents x (5 tool steps + an answer) against the mock OpenAI-compatible server
(fixed latency per response, in its own process), through ponder's real HTTP backend,
compared with the same fan-out done by a bare `asyncio.gather` loop of HTTP posts (the
floor: the same HTTP library (aiohttp), same pool limits, same streaming wire, no engine).

For each: wall time, the ideal (critical steps x latency), parallel efficiency =
ideal / wall, and client CPU per step (time.process_time delta / model calls).
Goals: efficiency >= 0.95 at 1 s; at 200 ms, efficiency >= 0.9 x the floor's and CPU
per step <= 1.5 x the floor's.

    .venv/bin/python benchmarks/swarm_fanout.py [--agents 100] [--steps 5] [--latency 0.2 1.0] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai_server import start_mock_server  # noqa: E402

from ponder.engines.base import Budgets  # noqa: E402
from ponder.engines.swarm import Swarm  # noqa: E402
from ponder.models.openai_compat import close_clients  # noqa: E402
from ponder.models.registry import model  # noqa: E402
from ponder.tools.base import tool  # noqa: E402


@tool
async def work(item: int = 0) -> str:
    """Do one unit of work and return its result."""
    return f"item {item} ok"


async def run_swarm(url: str, agents: int, steps: int, latency: float) -> dict[str, Any]:
    m = model(f"openai:{url}#mock")
    sw = Swarm(m, [work], max_parallel=100, max_agents=max(100, agents),
               budgets=Budgets(max_steps=6, max_tool_calls=1_500), sub_budgets=Budgets(max_steps=steps + 3))
    c0, t0 = time.process_time(), time.perf_counter()
    res = await sw.run(f"FANOUT {agents} STEPS {steps}: split the work.")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    calls = res.metrics.model_calls
    assert res.status == "ok", (res.status, res.reason)
    assert res.metrics.agents == agents, res.metrics.agents
    crit = res.metrics.critical_steps
    return {"engine": "swarm", "latency_s": latency, "wall_s": wall, "critical_steps": crit, "ideal_s": crit * latency,
            "efficiency": crit * latency / wall, "steps": calls, "cpu_s": cpu, "cpu_per_step_ms": 1e3 * cpu / calls,
            "peak_concurrency": res.metrics.extra["peak_concurrency"], "parallelism": res.metrics.parallelism}


_WORK_SCHEMA = work.schema()


async def _post(client: aiohttp.ClientSession, url: str, messages: list[dict[str, Any]],
                tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One streamed chat call, assembled by hand: the least a client can do."""
    body = {"model": "mock", "messages": messages, "tools": tools, "stream": True}
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    async with client.post(url + "/chat/completions", data=json.dumps(body), headers={"Content-Type": "application/json"}) as resp:
        async for raw in resp.content:
            if not raw.startswith(b"data: ") or raw.strip() == b"data: [DONE]":
                continue
            chunk = json.loads(raw[6:])
            for ch in chunk.get("choices") or []:
                d = ch.get("delta") or {}
                if d.get("content"):
                    content.append(d["content"])
                for tc in d.get("tool_calls") or []:
                    c = calls.setdefault(tc["index"], {"id": tc.get("id"), "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                    f = tc.get("function") or {}
                    c["function"]["name"] += f.get("name") or ""
                    c["function"]["arguments"] += f.get("arguments") or ""
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        msg["tool_calls"] = [calls[i] for i in sorted(calls)]
    return msg


def floor_client() -> aiohttp.ClientSession:
    """The floor's client: the same library and pool limit as ponder's shared session."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), timeout=aiohttp.ClientTimeout(total=300.0))


async def run_floor(url: str, agents: int, steps: int, latency: float, client: aiohttp.ClientSession) -> dict[str, Any]:
    orch_tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                  for n in ("plan", "wait", "finish")]
    n_calls = 0
    if True:
        async def agent(i: int) -> int:
            msgs: list[dict[str, Any]] = [{"role": "system", "content": "You are a worker."},
                                          {"role": "user", "content": f"part {i}; STEPS {steps}"}]
            n = 0
            while True:
                msg = await _post(client, url, msgs, [_WORK_SCHEMA])
                n += 1
                msgs.append(msg)
                if not msg.get("tool_calls"):
                    return n
                for tc in msg["tool_calls"]:
                    args = json.loads(tc["function"]["arguments"] or "{}")
                    msgs.append({"role": "tool", "tool_call_id": tc["id"], "content": f"item {args.get('item')} ok"})

        async def orch_call(msgs: list[dict[str, Any]]) -> dict[str, Any]:
            msg = await _post(client, url, msgs, orch_tools)
            msgs.append(msg)
            for tc in msg.get("tool_calls") or []:
                msgs.append({"role": "tool", "tool_call_id": tc["id"], "content": "ok"})
            return msg

        c0, t0 = time.process_time(), time.perf_counter()
        orch = [{"role": "user", "content": f"FANOUT {agents} STEPS {steps}: split the work."}]
        await orch_call(orch)  # plan
        per_agent = await asyncio.gather(*(agent(i) for i in range(agents)), orch_call(orch))  # + the wait step
        await orch_call(orch)  # finish
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n_calls = 3 + sum(x for x in per_agent if isinstance(x, int))
    crit = 1 + (steps + 1) + 1
    return {"engine": "floor", "latency_s": latency, "wall_s": wall, "critical_steps": crit, "ideal_s": crit * latency,
            "efficiency": crit * latency / wall, "steps": n_calls, "cpu_s": cpu, "cpu_per_step_ms": 1e3 * cpu / n_calls}


async def bench(latencies: list[float], agents: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for lat in latencies:
        url, stop = start_mock_server(lat)
        client = floor_client()
        try:
            await run_swarm(url, agents, 1, lat)  # warm-up: imports, schemas, pooled connections
            await run_floor(url, agents, 1, lat, client)
            for _ in range(repeats):
                rows.append(await run_floor(url, agents, steps, lat, client))
                rows.append(await run_swarm(url, agents, steps, lat))
        finally:
            await client.close()
            await close_clients()
            stop()
    return rows


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"{'engine':6} {'latency':>7} {'wall s':>7} {'crit':>4} {'ideal s':>7} {'eff':>5} {'steps':>5} "
          f"{'cpu ms/step':>11} {'peak':>4}")
    for r in rows:
        print(f"{r['engine']:6} {r['latency_s']:>7.2f} {r['wall_s']:>7.3f} {r['critical_steps']:>4} {r['ideal_s']:>7.2f} "
              f"{r['efficiency']:>5.3f} {r['steps']:>5} {r['cpu_per_step_ms']:>11.3f} {r.get('peak_concurrency', ''):>4}")
    verdict: dict[str, Any] = {}
    for lat in sorted({r["latency_s"] for r in rows}):
        sw = [r for r in rows if r["latency_s"] == lat and r["engine"] == "swarm"]
        fl = [r for r in rows if r["latency_s"] == lat and r["engine"] == "floor"]
        # medians over repeats: this machine is noisy, and best-of-N would flatter both sides
        eff_s, eff_f = statistics.median(r["efficiency"] for r in sw), statistics.median(r["efficiency"] for r in fl)
        cpu_s, cpu_f = statistics.median(r["cpu_per_step_ms"] for r in sw), statistics.median(r["cpu_per_step_ms"] for r in fl)
        v = {"swarm_efficiency": round(eff_s, 4), "floor_efficiency": round(eff_f, 4),
             "efficiency_vs_floor": round(eff_s / eff_f, 4), "cpu_per_step_ratio": round(cpu_s / cpu_f, 4)}
        if lat >= 1.0:
            v["goal_efficiency_ge_0.95"] = eff_s >= 0.95
        else:
            v["goal_efficiency_ge_0.9x_floor"] = eff_s >= 0.9 * eff_f
            v["goal_cpu_le_1.5x_floor"] = cpu_s <= 1.5 * cpu_f
        verdict[f"{lat:g}s"] = v
        print(f"latency {lat:g}s: " + ", ".join(f"{k}={val}" for k, val in v.items()))
    return verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5, help="tool steps per sub-agent (then one answer)")
    ap.add_argument("--latency", type=float, nargs="+", default=[0.2, 1.0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per engine and latency; the verdict uses medians")
    ap.add_argument("--json", action="store_true", help="also print the rows and verdict as one JSON object")
    a = ap.parse_args()
    rows = asyncio.run(bench(a.latency, a.agents, a.steps, a.repeats))
    verdict = report(rows)
    if a.json:
        print(json.dumps({"rows": rows, "verdict": verdict}))


if __name__ == "__main__":
    main()
