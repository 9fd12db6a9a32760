"""Start-to-result time of the python tool.

    python benchmarks/sandbox_overhead.py [--runs N]

Measures `print(1)` and a ~10 ms computation through the full tool path (ToolStarted ->
ToolResult), with the namespaces the machine supports and, when `unshare` is used, without
them for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from ponder.core.messages import ToolCall
from ponder.tools.sandbox import probe_isolation, python_tool

CASES = {
    "print(1)": "print(1)",
    "~10ms compute": "s = 0\nfor i in range(300_000):\n    s += i * i\nprint(s)",
}


async def measure(use_namespaces: bool, runs: int) -> dict[str, dict[str, float]]:
    tool = python_tool(use_namespaces=use_namespaces)
    out: dict[str, dict[str, float]] = {}
    for label, code in CASES.items():
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            async for ev in tool.execute(ToolCall(id=str(i), name="python", arguments={"code": code})):
                last = ev
            dt = time.perf_counter() - t0
            assert getattr(last, "ok", False), getattr(last, "content", last)
            if i:  # the first run includes the one-time probe
                times.append(dt * 1000)
        times.sort()
        out[label] = {
            "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 1),
        }
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    iso = probe_isolation()
    print("isolation:", json.dumps(iso.describe()))
    results = {"with namespaces" if iso.unshare else "no namespaces available": await measure(True, args.runs)}
    if iso.unshare:
        results["without namespaces"] = await measure(False, args.runs)
    for mode, cases in results.items():
        for label, r in cases.items():
            print(f"{mode:>24} | {label:<14} | median {r['median_ms']:7.1f} ms | p90 {r['p90_ms']:7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
