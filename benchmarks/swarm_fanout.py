"""Swarm fan-out benchmark: is the engine's overhead negligible next to the model's latency?

100 sub-agents x (5 tool steps + an answer) against the mock OpenAI-compatible server
(fixed latency per response, in its own process), through ponder's real HTTP backend,
compared with the same fan-out done by a bare `asyncio.gather` loop of HTTP posts (the
floor: the same HTTP library (aiohttp), same pool limits, same streaming wire, no engine).

For each: wall time, the ideal (critical steps x latency), parallel efficiency =
ideal / wall, and client CPU per step (time.process_time delta / model calls).
Goals: efficiency >= 0.95 at 1 s; at 200 ms, efficiency >= 0.9 x the floor's and CPU
per step <= 1.5 x the floor's. With `--journal on` the swarm runs through `ponder.runs` (each
event appended to SQLite as it happens, as every entry point does); goals: the journal costs
at most 10% of client CPU per step at 200 ms, and efficiency stays >= 0.95 x the floor's.

    .venv/bin/python benchmarks/swarm_fanout.py [--agents 100] [--steps 5] [--latency 0.2 1.0] [--repeats 3]
        [--journal off on] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai_server import start_mock_server  # noqa: E402

from ponder import runs  # noqa: E402
from ponder.core.store import RunStore  # noqa: E402
from ponder.engines.base import Budgets  # noqa: E402
from ponder.engines.swarm import Swarm  # noqa: E402
from ponder.models.openai_compat import close_clients  # noqa: E402
from ponder.models.registry import model  # noqa: E402
from ponder.tools.base import tool  # noqa: E402


@tool(idempotent=True)  # a pure function: a resumed run may re-run it (no commit barrier before it)
async def work(item: int = 0) -> str:
    """Do one unit of work and return its result."""
    return f"item {item} ok"


async def run_swarm(url: str, agents: int, steps: int, latency: float, store: RunStore | None = None) -> dict[str, Any]:
    m = model(f"openai:{url}#mock")
    sw = Swarm(m, [work], max_parallel=100, max_agents=max(100, agents),
               budgets=Budgets(max_steps=6, max_tool_calls=1_500), sub_budgets=Budgets(max_steps=steps + 3))
    task = f"FANOUT {agents} STEPS {steps}: split the work."
    c0, t0 = time.process_time(), time.perf_counter()
    if store is None:
        res = await sw.run(task)
    else:  # the journaled path every entry point takes: each event appended to SQLite as it happens
        res = await runs.run(sw, task, store=store)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    calls = res.metrics.model_calls
    assert res.status == "ok", (res.status, res.reason)
    assert res.metrics.agents == agents, res.metrics.agents
    crit = res.metrics.critical_steps
    return {"engine": "swarm+journal" if store is not None else "swarm", "latency_s": latency, "wall_s": wall, "critical_steps": crit, "ideal_s": crit * latency,
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


async def floor_agent(client: aiohttp.ClientSession, url: str, task: str) -> int:
    """One worker agent by hand: post, run the tool, append the messages, until it answers.
    Returns its number of model calls."""
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "You are a worker."}, {"role": "user", "content": task}]
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


def floor_client() -> aiohttp.ClientSession:
    """The floor's client: the same library and pool limit as ponder's shared session."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512), timeout=aiohttp.ClientTimeout(total=300.0))


async def run_floor(url: str, agents: int, steps: int, latency: float, client: aiohttp.ClientSession) -> dict[str, Any]:
    orch_tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                  for n in ("plan", "wait", "finish")]
    n_calls = 0
    if True:
        async def agent(i: int) -> int:
            return await floor_agent(client, url, f"part {i}; STEPS {steps}")

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


async def bench(latencies: list[float], agents: int, steps: int, repeats: int, journal: list[str],
                db: Path) -> list[dict[str, Any]]:
    rows = []
    store = RunStore(db) if "on" in journal else None
    for lat in latencies:
        url, stop = start_mock_server(lat)
        client = floor_client()
        try:
            await run_swarm(url, agents, 1, lat, store)  # warm-up: imports, schemas, pooled connections
            await run_floor(url, agents, 1, lat, client)
            for _ in range(repeats):
                rows.append(await run_floor(url, agents, steps, lat, client))
                if "off" in journal:
                    rows.append(await run_swarm(url, agents, steps, lat))
                if store is not None:
                    rows.append(await run_swarm(url, agents, steps, lat, store))
        finally:
            await client.close()
            await close_clients()
            stop()
    return rows


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"{'engine':13} {'latency':>7} {'wall s':>7} {'crit':>4} {'ideal s':>7} {'eff':>5} {'steps':>5} "
          f"{'cpu ms/step':>11} {'peak':>4}")
    for r in rows:
        print(f"{r['engine']:13} {r['latency_s']:>7.2f} {r['wall_s']:>7.3f} {r['critical_steps']:>4} {r['ideal_s']:>7.2f} "
              f"{r['efficiency']:>5.3f} {r['steps']:>5} {r['cpu_per_step_ms']:>11.3f} {r.get('peak_concurrency', ''):>4}")
    verdict: dict[str, Any] = {}
    med = statistics.median
    for lat in sorted({r["latency_s"] for r in rows}):
        at = [r for r in rows if r["latency_s"] == lat]
        fl = [r for r in at if r["engine"] == "floor"]
        # medians over repeats: this machine is noisy, and best-of-N would flatter both sides
        eff_f, cpu_f = med(r["efficiency"] for r in fl), med(r["cpu_per_step_ms"] for r in fl)
        v: dict[str, Any] = {"floor_efficiency": round(eff_f, 4), "floor_cpu_ms": round(cpu_f, 4)}
        for eng in ("swarm", "swarm+journal"):
            sw = [r for r in at if r["engine"] == eng]
            if not sw:
                continue
            eff_s, cpu_s = med(r["efficiency"] for r in sw), med(r["cpu_per_step_ms"] for r in sw)
            tag = "journal" if eng == "swarm+journal" else "swarm"
            v[f"{tag}_efficiency"] = round(eff_s, 4)
            v[f"{tag}_efficiency_vs_floor"] = round(eff_s / eff_f, 4)
            v[f"{tag}_cpu_ms"] = round(cpu_s, 4)
            v[f"{tag}_cpu_per_step_ratio"] = round(cpu_s / cpu_f, 4)
            if lat >= 1.0:
                v[f"goal_{tag}_efficiency_ge_0.95"] = eff_s >= 0.95
            elif tag == "swarm":
                v["goal_efficiency_ge_0.9x_floor"] = eff_s >= 0.9 * eff_f
                v["goal_cpu_le_1.5x_floor"] = cpu_s <= 1.5 * cpu_f
            else:
                v["goal_journal_efficiency_ge_0.95x_floor"] = eff_s >= 0.95 * eff_f
        if "swarm_cpu_ms" in v and "journal_cpu_ms" in v:
            v["journal_cpu_cost"] = round(v["journal_cpu_ms"] / v["swarm_cpu_ms"] - 1, 4)
            if lat < 1.0:
                v["goal_journal_cpu_le_10pct"] = v["journal_cpu_cost"] <= 0.10
        verdict[f"{lat:g}s"] = v
        print(f"latency {lat:g}s: " + ", ".join(f"{k}={val}" for k, val in v.items()))
    return verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5, help="tool steps per sub-agent (then one answer)")
    ap.add_argument("--latency", type=float, nargs="+", default=[0.2, 1.0])
    ap.add_argument("--repeats", type=int, default=3, help="runs per engine and latency; the verdict uses medians")
    ap.add_argument("--journal", nargs="+", choices=["on", "off"], default=["off", "on"],
                    help="run the swarm without the journal, with it (SQLite, as every entry point does), or both")
    ap.add_argument("--db", type=Path, default=None, help="journal file (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="also print the rows and verdict as one JSON object")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = asyncio.run(bench(a.latency, a.agents, a.steps, a.repeats, a.journal, a.db or Path(d) / "bench.db"))
    verdict = report(rows)
    if a.json:
        print(json.dumps({"rows": rows, "verdict": verdict}))


if __name__ == "__main__":
    main()
