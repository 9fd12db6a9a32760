"""Where the swarm loses the lookup suites on the embedded model, one engine change at a time.

    .venv/bin/python benchmarks/lookup_swarm_probe.py --suite lookup-wide --n 2 [--change all-tools ...] [--trace]

Experiment code, not product: each `--change` emulates, from outside the engine (through
the Swarm's public `agent_factory` hook and a request-rewriting model proxy), one change
the swarm engine would need for a 135M orchestrator, so its effect can be measured before
anyone edits the engine:

* `all-tools`   a sub-agent granted no tool (or only memory) gets the swarm's tools;
* `name-in-task` a sub-agent's task text starts with its subtask name (the 135M
                orchestrator writes the item into `name`, the first field, and junk into `task`);
* `wait-all`    the guided `wait` takes no task ids (it waits for all);
* `sub-first`   sub-agents' first step must call a tool (what `first_tool_choice` does for
                an interleaved agent).

Prints per task: score, status, steps, critical steps, and the orchestrator's plan/finish
with `--trace`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import statistics
import time
from typing import Any

from ponder.bench.graders import grade
from ponder.bench.suites import load_suite
from ponder.core.events import ToolResult, ToolStarted
from ponder.engines.base import Budgets
from ponder.engines.interleaved import Interleaved
from ponder.engines.swarm import Swarm
from ponder.models.registry import model

CHANGES = ("all-tools", "name-in-task", "wait-all", "sub-first")


class WaitAll:
    """Model proxy: the orchestrator's forced `wait` is offered without task ids."""

    def __init__(self, inner: Any):
        self.inner = inner

    def stream(self, request: Any, *, agent: str = "main") -> Any:
        tools = request.tools or []
        if agent == "orchestrator" and len(tools) == 1 and tools[0]["function"]["name"] == "wait":
            t = copy.deepcopy(tools[0])
            t["function"]["parameters"] = {"type": "object", "properties": {}, "required": []}
            request = request.model_copy(update={"tools": [t]})
        return self.inner.stream(request, agent=agent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def agent_factory(changes: set[str], all_tools: list[Any]) -> Any:
    def make(model_: Any, tools: list[Any], *, budgets: Budgets, system_prompt: str, agent_id: str,
             thinking: str) -> Any:
        if "all-tools" in changes and not ({t.name for t in tools} - {"memory_read", "memory_write"}):
            tools = list(all_tools)
        agent = Interleaved(model_, tools, thinking=thinking, budgets=budgets, system_prompt=system_prompt,  # type: ignore[arg-type]
                            agent_id=agent_id, first_tool_choice="required" if "sub-first" in changes else None)
        if "name-in-task" not in changes:
            return agent
        label = re.sub(r"-\d+$", "", agent_id.split("#")[0]).replace("-", " ")

        class Named:
            async def run_into(self, text: str, sink: Any) -> Any:
                return await agent.run_into(f"{label}: {text}", sink)

        return Named()

    return make


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="lookup-wide", choices=["lookup-wide", "lookup-chain"])
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--change", action="append", default=[], choices=CHANGES)
    ap.add_argument("--thinking", default="off", choices=["on", "off", "auto"])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args()
    changes = set(args.change)
    suite = load_suite(args.suite, n=args.n, seed=args.seed, demo=True)
    m: Any = model("smollm2")
    if "wait-all" in changes:
        m = WaitAll(m)
    print(f"{args.suite} n={args.n} seed={args.seed} thinking={args.thinking} changes={sorted(changes) or 'none'}")
    scores = []
    for t in suite.tasks:
        tools = suite.tools()
        swarm = Swarm(m, tools, max_parallel=8, thinking=args.thinking,
                      budgets=Budgets(max_steps=12, wall_timeout_s=args.timeout), sub_budgets=Budgets(max_steps=4),
                      agent_factory=agent_factory(changes, tools))
        t0 = time.perf_counter()
        res = await swarm.run(t.question)
        g = grade(t.grader, res.answer, t.answer, t.meta)
        scores.append(g.score)
        looked = [e for e in res.events if isinstance(e, ToolStarted) and e.name == "lookup"]
        print(f"{t.task_id}: score {g.score:.2f} status {res.status} steps {res.metrics.steps} critical "
              f"{res.metrics.critical_steps} lookups {len(looked)} wall {time.perf_counter() - t0:.0f}s "
              f"answer {(res.answer or '')[:80]!r}")
        if args.trace:
            for e in res.events:
                if isinstance(e, ToolStarted):
                    print(f"   [{e.agent}] {e.name} {json.dumps(e.arguments)[:300]}")
                elif isinstance(e, ToolResult) and e.agent == "orchestrator":
                    print(f"   [{e.agent}] -> {e.content[:300]!r}")
    print(f"mean score {statistics.fmean(scores):.3f} over {len(scores)} task(s)")


if __name__ == "__main__":
    asyncio.run(main())
