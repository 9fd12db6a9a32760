"""Swarm metrics: critical steps, parallelism, serial collapse, spurious parallelism, PARL rewards.

**Critical steps** (Kimi K2.5 PARL) is a latency proxy: the length, in model calls, of
the longest chain of calls that had to happen one after another. We compute it exactly
as a longest path over a DAG whose nodes are

* `O_t` — orchestrator step t (one model call plus its tool calls), weight 1;
* `S_i` — sub-agent task i, weight = its steps (model calls);

with edges `O_{t-1} → O_t` (the orchestrator is sequential), `O_launch(i) → S_i` (a task
starts when the step that assigned it runs), `S_dep → S_i` (declared dependencies), and
`S_i → O_{d+1}` where d is the orchestrator step whose tool call handed i's result to
the orchestrator (the next call is the first one that can use it). A result that was
never handed over (cancelled, or the orchestrator answered without waiting) edges
into the end of the run.

A **stage** is one orchestrator step t together with the sub-agents whose results it
awaited. When the orchestrator launches and awaits within one step (the synchronous
pattern of the paper), the longest path reduces to the published formula

    CriticalSteps = Σ_t ( S_main(t) + max_i S_sub,i(t) ),   S_main(t) = 1

and when it keeps working while sub-agents run, orchestrator steps that overlap them
are (correctly) not added on top. `stage_breakdown` reports the per-stage terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TaskRecord:
    """What the metrics need to know about one sub-agent task."""

    task_id: str
    agent_id: str
    name: str
    launched_at: int  # orchestrator step that assigned it (1-based)
    depends_on: list[str] = field(default_factory=list)
    steps: int = 0
    status: str = "pending"  # pending | running | ok | error | cancelled | budget
    answer: str | None = None
    error: str | None = None
    delivered_at: int | None = None  # orchestrator step whose tool call returned the result
    started: float | None = None  # time.time(), as event timestamps (a resumed run restores them)
    ended: float | None = None
    tokens: int = 0


def critical_steps(orchestrator_steps: int, tasks: Iterable[TaskRecord]) -> int:
    """Longest path through the step DAG described in the module docstring."""
    recs = {t.task_id: t for t in tasks}
    memo: dict[str, int] = {}
    orch: list[int] = [0] * (orchestrator_steps + 1)  # orch[t] = longest path ending with O_t
    by_delivery: dict[int, list[str]] = {}
    for t in recs.values():
        if t.delivered_at is not None and t.delivered_at + 1 <= orchestrator_steps:
            by_delivery.setdefault(t.delivered_at + 1, []).append(t.task_id)

    def sub(tid: str, seen: frozenset[str] = frozenset()) -> int:
        if tid in memo:
            return memo[tid]
        if tid in seen:  # the scheduler rejects cycles; never loop forever on bad input
            return 0
        r = recs[tid]
        launch = min(max(r.launched_at, 0), orchestrator_steps)
        before = orch[launch] if launch >= 1 else 0
        for d in r.depends_on:
            if d in recs:
                before = max(before, sub(d, seen | {tid}))
        memo[tid] = before + r.steps
        return memo[tid]

    for t in range(1, orchestrator_steps + 1):
        prev = orch[t - 1]
        for tid in by_delivery.get(t, ()):
            prev = max(prev, sub(tid))
        orch[t] = prev + 1
    end = orch[orchestrator_steps]
    for tid in recs:
        end = max(end, sub(tid))
    return end


def stage_breakdown(orchestrator_steps: int, tasks: Iterable[TaskRecord]) -> list[dict[str, Any]]:
    """Per orchestrator step: what it launched, what it awaited, and its stage term 1 + max S_sub."""
    tasks = list(tasks)
    out = []
    for t in range(1, orchestrator_steps + 1):
        awaited = [r for r in tasks if r.delivered_at == t]
        out.append({
            "step": t,
            "launched": [r.task_id for r in tasks if r.launched_at == t],
            "awaited": [r.task_id for r in awaited],
            "max_sub_steps": max((r.steps for r in awaited), default=0),
            "term": 1 + max((r.steps for r in awaited), default=0),
        })
    return out


def peak_concurrency(tasks: Iterable[TaskRecord]) -> int:
    """The most sub-agents running at one instant, from their start/end times."""
    marks: list[tuple[float, int]] = []
    for r in tasks:
        if r.started is None:
            continue
        marks.append((r.started, 1))
        marks.append((r.ended if r.ended is not None else float("inf"), -1))
    marks.sort(key=lambda m: (m[0], m[1]))  # an end and a start at the same instant do not overlap
    peak = cur = 0
    for _, d in marks:
        cur += d
        peak = max(peak, cur)
    return peak


_NORM = re.compile(r"\W+")


def spurious(tasks: Iterable[TaskRecord]) -> list[str]:
    """Task ids that finished with empty output, or with output equal to an earlier task's."""
    seen: set[str] = set()
    bad: list[str] = []
    for r in sorted(tasks, key=lambda r: (r.ended or 0.0)):
        if r.status in ("pending", "running", "cancelled"):
            continue
        norm = _NORM.sub(" ", (r.answer or "").lower()).strip()
        if not norm or norm in seen:
            bad.append(r.task_id)
        seen.add(norm)
    return bad


_CITE = re.compile(r"\[([A-Za-z0-9_.:/#@-]{1,64})\]")


def citations(answer: str | None, names: Iterable[str]) -> dict[str, list[str]]:
    """Which `[agent]` markers in the answer name real sub-agents (by name or id), and which do not."""
    known = set(names)
    found = list(dict.fromkeys(_CITE.findall(answer or "")))
    return {
        "cited": [c for c in found if c in known],
        "unknown": [c for c in found if c not in known and not c.isdigit()],
        "uncited": sorted(n for n in known if n not in found),
    }


@dataclass
class SwarmStats:
    total_steps: int
    critical_steps: int
    parallelism: float | None
    peak_concurrency: int
    serial_collapse: bool
    spurious_tasks: list[str]
    rewards: dict[str, float]


def compute(
    orchestrator_steps: int,
    tasks: list[TaskRecord],
    *,
    score: float | None = None,
    lambdas: tuple[float, float] = (0.1, 0.1),
) -> SwarmStats:
    """All swarm figures at once. Rewards follow PARL: r = λ1·r_parallel + λ2·r_finish + r_perf.

    r_parallel = 1 − critical/total (the share of steps taken off the critical path by
    running them in parallel; 0 under serial collapse); r_finish = share of sub-agents
    that finished ok with a non-spurious answer; r_perf = the task score when given.
    """
    total = orchestrator_steps + sum(t.steps for t in tasks)
    crit = critical_steps(orchestrator_steps, tasks)
    peak = peak_concurrency(tasks)
    collapse = peak <= 1
    bad = spurious(tasks)
    par = (total / crit) if crit else None
    r_parallel = 0.0 if collapse or not total else max(0.0, min(1.0, 1.0 - crit / total))
    good = sum(1 for t in tasks if t.status == "ok" and t.task_id not in bad)
    r_finish = good / len(tasks) if tasks else 0.0
    rewards = {"r_parallel": round(r_parallel, 6), "r_finish": round(r_finish, 6)}
    r_total = lambdas[0] * r_parallel + lambdas[1] * r_finish
    if score is not None:
        rewards["r_perf"] = float(score)
        r_total += float(score)
    rewards["r_parl"] = round(r_total, 6)
    return SwarmStats(total, crit, round(par, 4) if par else None, peak, collapse, bad, rewards)
