"""Trajectory export for RL post-training (PARL): one JSON object per run, written as JSONL.

A trajectory is rebuilt from the event stream alone, so it can come from a live
`RunResult` or from the run store long after the process exited: per agent, the
messages it saw and wrote, exactly as it had them (its `message_appended` events: system
prompt, task, assistant messages with reasoning and tool calls, tool results), the tool calls with
outcomes, and the run's reward components (`r_parallel`, `r_finish`, `r_perf`, `r_parl`, and
`r_grounded`: the share of the answer's numbers and proper names that its tool results support).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ...core.events import (
    AgentFinished,
    AgentSpawned,
    MessageAppended,
    ModelCallFinished,
    RunFinished,
    RunStarted,
    ToolResult,
    ToolStarted,
)
from ...core.grounding import grounding_reward
from ...core.messages import Message

_METRIC_KEYS = ("steps", "critical_steps", "parallelism", "agents", "serial_collapse", "spurious_agents",
                "tool_calls", "model_calls", "cost_usd", "wall_s")


def trajectory(events: Iterable[Any], *, task: str | None = None, run_id: str | None = None,
               mode: str | None = None) -> dict[str, Any]:
    evs = list(events)
    fin = next((e for e in reversed(evs) if isinstance(e, RunFinished)), None)
    metrics = fin.metrics.model_dump() if fin is not None else {}
    extra = metrics.get("extra") or {}
    start = next((e for e in evs if isinstance(e, RunStarted)), None)
    task = task if task is not None else (start.task if start is not None else None)
    final_agent = fin.agent if fin is not None else (start.agent if start is not None else "main")
    # conversations as the agents had them: every message they appended, in order (journals
    # older than `message_appended` events are rebuilt from the calls and tool results)
    exact = any(isinstance(e, MessageAppended) for e in evs)
    agents: dict[str, dict[str, Any]] = {}

    def agent(aid: str) -> dict[str, Any]:
        a = agents.get(aid)
        if a is None:
            role = "orchestrator" if aid == final_agent and mode != "interleaved" else (
                "agent" if aid == final_agent else "subagent")
            a = agents[aid] = {"role": role, "name": aid, "goal": None, "status": None, "steps": None,
                               "messages": [], "tool_calls": []}
        return a

    started: dict[str, dict[str, Any]] = {}
    for ev in evs:
        if isinstance(ev, MessageAppended):
            msgs = agent(ev.agent)["messages"]
            d = ev.message.model_dump(mode="json", exclude_none=True)
            if ev.index < len(msgs):  # appended again by a resumed attempt
                del msgs[ev.index:]
            msgs.append(d)
        elif isinstance(ev, AgentSpawned):
            a = agent(ev.agent_id)
            a.update(name=ev.name, goal=ev.goal, depends_on=ev.depends_on, model=ev.model)
            if not exact and not a["messages"]:
                a["messages"].append(Message.user(ev.goal).model_dump(mode="json", exclude_none=True))
        elif isinstance(ev, ModelCallFinished) and not exact:
            agent(ev.agent)["messages"].append(ev.message.model_dump(mode="json", exclude_none=True))
        elif isinstance(ev, ToolStarted):
            started[ev.call_id] = {"arguments": ev.arguments}
        elif isinstance(ev, ToolResult):
            a = agent(ev.agent)
            if not exact:
                content = ev.content if ev.ok else ("ERROR: " + (ev.content or ev.error or "tool failed")).replace(
                    "ERROR: ERROR: ", "ERROR: ")
                a["messages"].append(Message.tool(ev.call_id, content, ev.name).model_dump(mode="json", exclude_none=True))
            a["tool_calls"].append({"call_id": ev.call_id, "name": ev.name,
                                    "arguments": started.pop(ev.call_id, {}).get("arguments", {}),
                                    "ok": ev.ok, "duration_s": round(ev.duration_s, 6)})
        elif isinstance(ev, AgentFinished):
            a = agent(ev.agent_id)
            a.update(status=ev.status, steps=ev.steps, answer=ev.answer, error=ev.error)
    if fin is not None:
        o = agent(final_agent)
        o.update(status=fin.status, answer=fin.answer,
                 steps=fin.metrics.orchestrator_steps if final_agent == "orchestrator" else fin.metrics.steps)
    return {
        "run_id": run_id or (start.run_id if start is not None else None),
        "mode": mode or (start.mode if start is not None else None),
        "task": task,
        "status": fin.status if fin else "interrupted",
        "answer": fin.answer if fin else None,
        # GLM's hallucination penalty as a reward term: the share of the answer's numbers and
        # names that the run's tool results support (core/grounding.py)
        "rewards": {**(metrics.get("rewards") or {}),
                    **({"r_grounded": grounding_reward(fin.answer, evs, task)} if fin is not None else {})},
        "metrics": {k: metrics.get(k) for k in _METRIC_KEYS if k in metrics},
        "citations": extra.get("citations"),
        "agents": agents,
    }


def iter_store_trajectories(store: Any, run_id: str | None = None, *, limit: int = 1_000_000) -> Iterator[dict[str, Any]]:
    """Trajectories of the runs in a `RunStore` (one run, or all, newest first)."""
    rows = store.runs(limit=limit)
    if run_id is not None:
        rows = [r for r in rows if r["id"] == run_id or r["id"].startswith(run_id)]
        if not rows:
            raise KeyError(f"no run {run_id!r} in {getattr(store, 'path', 'the store')}; list runs with `ponder runs`")
    for r in rows:
        yield trajectory(store.events(r["id"]), task=r["task"], run_id=r["id"], mode=r["mode"])


def write_jsonl(trajectories: Iterable[dict[str, Any]], out: str | Path | Any) -> int:
    """Write trajectories one per line to a path or an open text file; returns how many."""
    n = 0
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8") as f:
            return write_jsonl(trajectories, f)
    for t in trajectories:
        out.write(json.dumps(t, ensure_ascii=False) + "\n")
        n += 1
    return n
