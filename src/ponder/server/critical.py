"""Which steps of a swarm run lie on its critical path (the viewer highlights them).

`engines.swarm.metrics.critical_steps` gives the critical path's *length*: the longest path
through the DAG of orchestrator steps `O_t` (weight 1) and sub-agent tasks `S_i` (weight =
their steps), see that module's docstring. The viewer needs the path itself, so this
module walks the same DAG, built from the same `TaskRecord`s by the same rules, keeping
each node's longest path to it, and then walks back from the end along the edges that are
tight (the predecessor's longest path plus the node's weight equals the node's).

A node is *critical* when some longest path passes through it (zero slack, as in the
critical-path method): with three equal sub-agents delivered together, all three are
critical, since shortening any one of them alone does not shorten the run. Tasks with no
steps carry no calls to highlight and are left out. The length this module finds is
checked against `critical_steps` in the tests, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engines.swarm.metrics import TaskRecord

Node = tuple[str, Any]  # ("O", step) | ("S", task_id) | ("END", None)
END: Node = ("END", None)


@dataclass(slots=True)
class CriticalPath:
    length: int
    orchestrator_steps: list[int] = field(default_factory=list)  # O_t on a longest path
    tasks: list[str] = field(default_factory=list)  # task ids on a longest path
    agents: list[str] = field(default_factory=list)  # their agent ids

    def to_json(self) -> dict[str, Any]:
        return {"length": self.length, "orchestrator_steps": self.orchestrator_steps, "tasks": self.tasks,
                "agents": self.agents}


def critical_path(orchestrator_steps: int, tasks: Iterable[TaskRecord]) -> CriticalPath:
    """The critical orchestrator steps and tasks of a swarm run (module docstring)."""
    T = max(int(orchestrator_steps), 0)
    recs = {t.task_id: t for t in tasks}
    preds: dict[Node, list[Node]] = {("O", t): ([("O", t - 1)] if t >= 2 else []) for t in range(1, T + 1)}
    weight: dict[Node, int] = {("O", t): 1 for t in range(1, T + 1)}
    for tid, r in recs.items():
        node: Node = ("S", tid)
        weight[node] = max(int(r.steps), 0)
        p: list[Node] = []
        launch = min(max(r.launched_at, 0), T)
        if launch >= 1:
            p.append(("O", launch))
        p += [("S", d) for d in r.depends_on if d in recs and d != tid]
        preds[node] = p
        if r.delivered_at is not None and r.delivered_at + 1 <= T:
            preds[("O", r.delivered_at + 1)].append(node)
    preds[END] = ([("O", T)] if T >= 1 else []) + [("S", tid) for tid in recs]
    weight[END] = 0

    longest: dict[Node, int] = {}

    def visit(n: Node, seen: frozenset[Node] = frozenset()) -> int:
        # iterative over the orchestrator chain, recursive only along task dependencies (short)
        if n in longest:
            return longest[n]
        if n in seen:  # the scheduler rejects cycles; never loop forever on bad input
            return 0
        best = max((visit(p, seen | {n}) for p in preds[n]), default=0)
        longest[n] = best + weight[n]
        return longest[n]

    for t in range(1, T + 1):  # fill the chain in order so recursion stays shallow
        visit(("O", t))
    total = visit(END)

    on_path: set[Node] = set()
    todo = [END]
    while todo:
        n = todo.pop()
        need = longest[n] - weight[n]
        for p in preds[n]:
            if need > 0 and p not in on_path and longest.get(p) == need:
                on_path.add(p)
                todo.append(p)
    steps = sorted(t for kind, t in on_path if kind == "O")
    crit_tasks = sorted((t for kind, t in on_path if kind == "S" and weight[("S", t)] > 0),
                        key=lambda tid: (recs[tid].launched_at, _task_order(tid)))
    return CriticalPath(total, steps, crit_tasks, [recs[t].agent_id for t in crit_tasks])


def _task_order(tid: str) -> tuple[int, str]:
    return (int(tid[1:]), tid) if tid[1:].isdigit() else (10**9, tid)


def task_records(tasks: Iterable[Mapping[str, Any]]) -> list[TaskRecord]:
    """`TaskRecord`s from the dicts a swarm's `RunFinished.metrics.extra["tasks"]` holds."""
    out = []
    for d in tasks:
        out.append(TaskRecord(task_id=str(d["task_id"]), agent_id=str(d.get("agent_id") or d["task_id"]),
                              name=str(d.get("name") or ""), launched_at=int(d.get("launched_at") or 0),
                              depends_on=[str(x) for x in d.get("depends_on") or []], steps=int(d.get("steps") or 0),
                              status=str(d.get("status") or "pending"), delivered_at=d.get("delivered_at")))
    return out
