"""Swarm fan-out on Ray vs in-process: what does running sub-agents in Ray actors cost?

N sub-agents x (K tool steps + an answer) against the mock OpenAI-compatible server (fixed
latency, in its own process), through ponder's real HTTP backend, journaled (`ponder.runs`,
as every entry point runs), for N in --agents: the in-process swarm (`executor="local"`)
and the same swarm on Ray (`executor="ray"`, `--hosts` actors; a local Ray started here).

Printed per row: wall time; the ideal = latency x (2 + waves x (K + 1)), waves =
ceil(N / max_parallel) (plan, the sub-agents' steps slot by slot, finish); parallel
efficiency = ideal / wall; model calls; client CPU per call in ms for the driver process,
the Ray hosts (actor processes) and Ray's own processes (raylet, GCS, ...: every other
process Ray started), and all of them together; per sub-agent, Ray's added client CPU
(Ray's total minus in-process, / N) and added wall time. The mock server's CPU is never
counted. Goals: at the largest N, Ray's efficiency >= in-process's; Ray's added CPU per
sub-agent <= 5 ms; CPU per call flat in N (the curve is printed).

    .venv/bin/python benchmarks/ray_fanout.py [--agents 100 1000 5000] [--steps 5] [--latency 0.2]
        [--max-parallel 500] [--hosts 2] [--repeats 1] [--effects] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai_server import start_mock_server  # noqa: E402

from ponder import runs  # noqa: E402
from ponder.core.store import RunStore  # noqa: E402
from ponder.engines.base import Budgets  # noqa: E402
from ponder.engines.swarm import Swarm  # noqa: E402
from ponder.models.openai_compat import close_clients  # noqa: E402
from ponder.models.registry import model  # noqa: E402
from ponder.tools.base import tool  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


@tool(idempotent=True)
async def work(item: int = 0) -> str:
    """Do one unit of work and return its result."""
    return f"item {item} ok"


@tool(name="work")
async def work_with_effects(item: int = 0) -> str:
    """Do one unit of work and return its result (not idempotent: journaled before it runs)."""
    return f"item {item} ok"


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _descendants(root: int) -> dict[int, float]:
    """CPU seconds of every live descendant of `root`."""
    table = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (st := _stat(int(d))) is not None:
            table[int(d)] = st
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = {}, list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out[p] = table[p][1]
        todo.extend(kids.get(p, []))
    return out


class CpuMeter:
    """Client CPU split three ways: this process, the Ray hosts, the rest of Ray's processes."""

    def __init__(self, exclude: set[int], hosts: set[int]):
        self.exclude, self.hosts = exclude, hosts

    def sample(self) -> tuple[float, float, float]:
        others = {p: c for p, c in _descendants(os.getpid()).items() if p not in self.exclude}
        return (time.process_time(), sum(c for p, c in others.items() if p in self.hosts),
                sum(c for p, c in others.items() if p not in self.hosts))


async def one(sw: Swarm, store: RunStore, n: int, steps: int, latency: float, max_parallel: int,
              meter: CpuMeter) -> dict[str, Any]:
    task = f"FANOUT {n} STEPS {steps}: split the work."
    c0, t0 = meter.sample(), time.perf_counter()
    res = await runs.run(sw, task, store=store)
    wall, c1 = time.perf_counter() - t0, meter.sample()
    assert res.status == "ok", (res.status, res.reason)
    assert res.metrics.agents == n, res.metrics.agents
    calls = res.metrics.model_calls
    driver, hosts, system = (c1[i] - c0[i] for i in range(3))
    if sw.config.executor == "local":  # Ray idles in the background: not this engine's cost
        hosts = system = 0.0
    ideal = latency * (2 + math.ceil(n / max_parallel) * (steps + 1))
    return {"engine": sw.config.executor, "agents": n, "wall_s": wall, "ideal_s": ideal, "efficiency": ideal / wall,
            "calls": calls, "driver_ms": 1e3 * driver / calls, "hosts_ms": 1e3 * hosts / calls,
            "ray_sys_ms": 1e3 * system / calls, "cpu_ms": 1e3 * (driver + hosts + system) / calls,
            "cpu_s": driver + hosts + system, "peak": res.metrics.peak_concurrency,
            "channel": {k: v for k, v in (res.metrics.extra.get("executor") or {}).items() if k in ("polls", "items_per_poll")}}


async def bench(agents: list[int], steps: int, latency: float, max_parallel: int, hosts: int, repeats: int,
                db: Path, effects: bool = False) -> list[dict[str, Any]]:
    import ray

    url, stop = start_mock_server(latency)
    mock_pid = {int(p) for p in _descendants(os.getpid())}  # the mock server (and nothing else yet)
    ray.init(num_cpus=hosts, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    store = RunStore(db)
    rows: list[dict[str, Any]] = []
    try:
        m = model(f"openai:{url}#mock")

        def swarm(executor: str) -> Swarm:
            return Swarm(m, [work_with_effects if effects else work], max_parallel=max_parallel, max_agents=max(agents), executor=executor,
                         ray_hosts=hosts, budgets=Budgets(max_steps=6, max_tool_calls=10 ** 7),
                         sub_budgets=Budgets(max_steps=steps + 3))

        local, onray = swarm("local"), swarm("ray")
        for sw in (local, onray):  # warm-up: imports, hosts, pooled connections
            await runs.run(sw, f"FANOUT {min(agents)} STEPS 1: warm up", store=store)
        host_pids = {h.pid for h in onray.executor.pool.hosts if h.pid}  # type: ignore[attr-defined]
        meter = CpuMeter(mock_pid, host_pids)
        for n in agents:
            for _ in range(repeats):
                for sw in (local, onray):
                    rows.append(await one(sw, store, n, steps, latency, max_parallel, meter))
                    print(_line(rows[-1]), flush=True)
        await onray.aclose()
    finally:
        store.close()
        await close_clients()
        ray.shutdown()
        stop()
    return rows


def _line(r: dict[str, Any]) -> str:
    return (f"{r['engine']:6} {r['agents']:>6} {r['wall_s']:>8.2f} {r['ideal_s']:>7.2f} {r['efficiency']:>5.3f} "
            f"{r['calls']:>7} {r['driver_ms']:>9.3f} {r['hosts_ms']:>8.3f} {r['ray_sys_ms']:>8.3f} {r['cpu_ms']:>8.3f}"
            + (f"  polls {r['channel']['polls']}, {r['channel']['items_per_poll']} items each" if r["channel"] else ""))


HEAD = (f"{'engine':6} {'agents':>6} {'wall s':>8} {'ideal s':>7} {'eff':>5} {'calls':>7} {'driver ms':>9} "
        f"{'hosts ms':>8} {'ray sys':>8} {'cpu ms':>8}   (client CPU per model call)")


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from statistics import median

    verdict: dict[str, Any] = {}
    print("\nper agent count (medians over repeats):")
    for n in sorted({r["agents"] for r in rows}):
        loc = [r for r in rows if r["agents"] == n and r["engine"] == "local"]
        ray = [r for r in rows if r["agents"] == n and r["engine"] == "ray"]
        v = {"local_efficiency": round(median(r["efficiency"] for r in loc), 4),
             "ray_efficiency": round(median(r["efficiency"] for r in ray), 4),
             "local_cpu_ms_per_call": round(median(r["cpu_ms"] for r in loc), 4),
             "ray_cpu_ms_per_call": round(median(r["cpu_ms"] for r in ray), 4),
             "ray_driver_ms_per_call": round(median(r["driver_ms"] for r in ray), 4),
             "ray_hosts_ms_per_call": round(median(r["hosts_ms"] for r in ray), 4),
             "ray_added_cpu_ms_per_agent": round(1e3 * (median(r["cpu_s"] for r in ray)
                                                        - median(r["cpu_s"] for r in loc)) / n, 4),
             "ray_added_wall_ms_per_agent": round(1e3 * (median(r["wall_s"] for r in ray)
                                                         - median(r["wall_s"] for r in loc)) / n, 4)}
        verdict[str(n)] = v
        print(f"  {n:>6} agents: " + ", ".join(f"{k}={val}" for k, val in v.items()))
    top = str(max(int(k) for k in verdict))
    goals = {"ray_efficiency_ge_local_at_max": verdict[top]["ray_efficiency"] >= verdict[top]["local_efficiency"],
             "ray_added_cpu_le_5ms_per_agent": all(v["ray_added_cpu_ms_per_agent"] <= 5.0 for v in verdict.values())}
    curve = [verdict[k]["ray_cpu_ms_per_call"] for k in sorted(verdict, key=int)]
    goals["ray_cpu_per_call_flat"] = max(curve) <= 1.25 * min(curve)
    print("Ray CPU per call by agent count: " + " -> ".join(f"{c:.3f}" for c in curve) + " ms")
    print("goals: " + ", ".join(f"{k}={val}" for k, val in goals.items()))
    return {"per_agents": verdict, "goals": goals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--steps", type=int, default=5, help="tool steps per sub-agent (then one answer)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--max-parallel", type=int, default=500, help="sub-agents at once (both engines)")
    ap.add_argument("--hosts", type=int, default=2, help="Ray actors (worker processes) holding the sub-agents")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--effects", action="store_true",
                    help="a tool that is not idempotent: each call waits until the journal holds it (both engines)")
    ap.add_argument("--json", action="store_true", help="also print the rows and verdict as one JSON object")
    a = ap.parse_args()
    print(HEAD, flush=True)
    with tempfile.TemporaryDirectory() as d:
        rows = asyncio.run(bench(a.agents, a.steps, a.latency, a.max_parallel, a.hosts, a.repeats, Path(d) / "b.db",
                                 a.effects))
    verdict = report(rows)
    if a.json:
        print(json.dumps({"rows": rows, "verdict": verdict}))


if __name__ == "__main__":
    main()
