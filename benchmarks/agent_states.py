"""What saved KV states (models/kv_states.py) and a second context buy a swarm on the embedded model.

    .venv/bin/python benchmarks/agent_states.py [--agents 8] [--turns 3] [--repeats 2]

K conversations (a swarm's sub-agents: one system prompt, one task line each, a tool
result per turn) take turns on the embedded model, round-robin, as sub-agents do when a
swarm's calls interleave. Measured side by side, alternating order per repeat:

* `states off, 1 context`: llama.cpp reuses only the previous call's prefix;
* `states on, 1 context`: each conversation resumes its own saved state;
* `states on, 2 contexts`: the same, two calls at once (the default on 2+ cores).

Printed per setting: median seconds per call, all calls' wall time, prompt tokens evaluated
(prompt - cached) and the cost of saving states (median ms per save, its share of the wall).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from ponder.core.messages import Message
from ponder.models import kv_states
from ponder.models.base import ChatRequest
from ponder.models.embedded import EmbeddedModel
from ponder.models.registry import model

SYSTEM = ("You are a focused worker agent in a swarm. Use your tools when they help. When done, reply with your "
          "result as plain text. You can use these tools:\n- lookup(entity): Look up one fact: for a company the year "
          "it was founded, for a person the year they were born, for a city its population.")
HEAD = "Find the year each of the following companies was founded, with lookup(entity) for each one:"


def conversation(i: int, turns_done: int) -> list[Message]:
    msgs = [Message.system(SYSTEM), Message.user(f"{HEAD}\n{i + 1}. Company number {i + 1}")]
    for t in range(turns_done):
        msgs += [Message.assistant(f'lookup("Company number {i + 1}") try {t}'),
                 Message.user(f"Result of tool lookup:\nCompany number {i + 1} was founded in {1900 + 7 * i + t}")]
    return msgs


async def run_setting(m: EmbeddedModel, agents: int, turns: int, concurrent: bool) -> dict[str, float]:
    per_call: list[float] = []
    evaluated = 0

    async def one(i: int, t: int) -> None:
        nonlocal evaluated
        t0 = time.perf_counter()
        fin = await m.complete(ChatRequest(messages=conversation(i, t), max_tokens=12, temperature=0.0, seed=0))
        per_call.append(time.perf_counter() - t0)
        evaluated += fin.usage.prompt_tokens - fin.usage.cached_prompt_tokens

    t0 = time.perf_counter()
    for t in range(turns):
        if concurrent:
            await asyncio.gather(*(one(i, t) for i in range(agents)))
        else:
            for i in range(agents):
                await one(i, t)
    wall = time.perf_counter() - t0
    return {"median_call_s": statistics.median(per_call), "wall_s": wall, "evaluated": evaluated}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    settings = {
        "states off, 1 context": dict(pool_size=1, kv_cache_mb=0),
        "states on, 1 context": dict(pool_size=1, kv_cache_mb=256),
        "states on, 2 contexts": dict(pool_size=2, kv_cache_mb=256),
    }
    # time every save: the cache's own cost
    saves: list[float] = []
    real_dump = kv_states._dump

    def timed_dump(llm: object) -> bytes | None:
        t0 = time.perf_counter()
        try:
            return real_dump(llm)
        finally:
            saves.append(time.perf_counter() - t0)

    kv_states._dump = timed_dump  # type: ignore[assignment]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in settings}
    save_ms: dict[str, list[float]] = {k: [] for k in settings}
    for r in range(a.repeats):
        order = list(settings) if r % 2 == 0 else list(reversed(settings))
        for name in order:
            m = model("smollm2", **settings[name])  # type: ignore[arg-type]
            assert isinstance(m, EmbeddedModel)
            if m._pool.states is not None:  # a fresh cache per repeat
                m._pool.states = kv_states.StateCache(m._pool.states.capacity)
            asyncio.run(m.complete(ChatRequest(messages=[Message.user("hi")], max_tokens=1)))  # load the context(s)
            saves.clear()
            results[name].append(asyncio.run(run_setting(m, a.agents, a.turns, concurrent=settings[name]["pool_size"] > 1)))
            save_ms[name].extend(s * 1000 for s in saves)
    base = statistics.median(x["wall_s"] for x in results["states off, 1 context"])
    print(f"{a.agents} conversations x {a.turns} turns, round-robin; medians of {a.repeats} repeats")
    print(f"{'setting':24} {'s/call':>7} {'wall s':>7} {'vs off':>7} {'prompt tok evaluated':>21} {'save ms':>8}")
    for name, rs in results.items():
        wall = statistics.median(x["wall_s"] for x in rs)
        sm = f"{statistics.median(save_ms[name]):.1f}" if save_ms[name] else "-"
        print(f"{name:24} {statistics.median(x['median_call_s'] for x in rs):7.2f} {wall:7.1f} {wall / base:6.2f}x "
              f"{statistics.median(x['evaluated'] for x in rs):21.0f} {sm:>8}")


if __name__ == "__main__":
    main()
