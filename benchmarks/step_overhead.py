"""Sequential step overhead: one agent, 20 tool steps, a 0 ms endpoint — engine vs a bare HTTP loop.

The mock OpenAI-compatible server (test double, 0 ms latency, its own process) scripts an
agent that calls its tool until it holds 20 results, then answers. Three clients do the same
21 calls one after another: the bare floor (an aiohttp loop that posts, parses the SSE
stream, runs the tool and appends the messages by hand), the Interleaved engine alone, and
the Interleaved engine through `ponder.runs` with the journal (every event appended to
SQLite as it happens, what every entry point does). Reported: wall and CPU per step, medians
over alternating rounds. Goal: the journaled engine stays <= the floor x 1.2 per step.

    .venv/bin/python benchmarks/step_overhead.py [--steps 20] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mock_openai_server import start_mock_server  # noqa: E402
from swarm_fanout import floor_agent, floor_client, work  # noqa: E402

from ponder import runs  # noqa: E402
from ponder.core.store import RunStore  # noqa: E402
from ponder.engines.base import Budgets  # noqa: E402
from ponder.engines.interleaved import Interleaved  # noqa: E402
from ponder.models.openai_compat import close_clients  # noqa: E402
from ponder.models.registry import model  # noqa: E402


async def floor(url: str, steps: int, client: Any) -> int:
    return await floor_agent(client, url, f"do it; STEPS {steps}")


async def engine(url: str, steps: int, store: RunStore | None) -> int:
    eng = Interleaved(model(f"openai:{url}#mock"), [work], thinking="off", budgets=Budgets(max_steps=steps + 5))
    task = f"do it; STEPS {steps}"
    res = await (runs.run(eng, task, store=store) if store is not None else eng.run(task))
    assert res.status == "ok", res.reason
    return res.metrics.model_calls


async def bench(steps: int, rounds: int, db: Path) -> dict[str, dict[str, float]]:
    url, stop = start_mock_server(0.0)
    client = floor_client()
    store = RunStore(db)
    rows: dict[str, list[tuple[float, float]]] = {"floor": [], "engine": [], "engine+journal": []}
    try:
        for _ in range(2):  # warm-up
            await floor(url, steps, client)
            await engine(url, steps, None)
            await engine(url, steps, store)
        for _ in range(rounds):
            for name, fn in (("floor", lambda: floor(url, steps, client)), ("engine", lambda: engine(url, steps, None)),
                             ("engine+journal", lambda: engine(url, steps, store))):
                c0, t0 = time.process_time(), time.perf_counter()
                calls = await fn()
                rows[name].append(((time.perf_counter() - t0) / calls * 1e3, (time.process_time() - c0) / calls * 1e3))
    finally:
        await client.close()
        await close_clients()
        stop()
    out = {k: {"wall_ms_per_step": statistics.median(w for w, _ in v), "cpu_ms_per_step": statistics.median(c for _, c in v)}
           for k, v in rows.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        res = asyncio.run(bench(a.steps, a.rounds, Path(d) / "steps.db"))
    fl = res["floor"]
    print(f"{'client':15} {'wall ms/step':>12} {'cpu ms/step':>12} {'wall vs floor':>13} {'cpu vs floor':>12}")
    for k, v in res.items():
        print(f"{k:15} {v['wall_ms_per_step']:>12.3f} {v['cpu_ms_per_step']:>12.3f} "
              f"{v['wall_ms_per_step'] / fl['wall_ms_per_step']:>12.2f}x {v['cpu_ms_per_step'] / fl['cpu_ms_per_step']:>11.2f}x")
    j = res["engine+journal"]
    ok = j["wall_ms_per_step"] <= 1.2 * fl["wall_ms_per_step"]
    print(f"goal (journaled engine <= 1.2x the floor per step, wall): {'met' if ok else 'NOT met'} "
          f"({j['wall_ms_per_step'] / fl['wall_ms_per_step']:.2f}x)")


if __name__ == "__main__":
    main()
