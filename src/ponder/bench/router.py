"""`--mode auto`: pick swarm or interleaved per task, from what the task text shows.

Features are read from the question only (never the gold answer), so the router can run
before any engine does:

- width: how many independent items the task asks for ("the following 20 companies",
  a ';'-separated or bulleted list). Wide work splits into parallel sub-agents.
- hops: relational cues ("the CEO of the company that organized ..."): a chain where
  each step needs the previous answer, which parallel agents cannot shortcut.
- ambiguity: hedges and alternatives ("or", "approximately", "which of").
- needs_search / needs_compute: whether the task is about looking things up or working
  something out.

Two routers: fixed rules (swarm when width >= 4), and a decision stump fitted on stored
comparison results (label: which engine scored higher, ties broken by wall time), which
`evaluate_router` checks on held-out tasks against always-swarm and always-interleaved.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .store import TaskRecord

FEATURES = ("width", "hops", "ambiguity", "needs_search", "needs_compute", "length")

_FOLLOWING_N = re.compile(r"\b(?:following|these|those|all|listed)\s+(\d{1,3})\s+[a-z]", re.I)
_HOP_CUES = re.compile(r"\b(of the|where|whose|that|who|which)\b", re.I)
_AMBIG_CUES = re.compile(r"\b(or|either|approximately|roughly|about|which of|any)\b", re.I)
_SEARCH_CUES = re.compile(r"\b(search|document|find|look up|who|where|which company|city)\b", re.I)
_MATH = re.compile(r"\d+\s*[-+*/^=]\s*\d+|\b(sum|product|solve|compute|calculate|how many)\b", re.I)


def task_features(question: str) -> dict[str, float]:
    q = question.split("\n\n")[0]  # the task, not the format instructions appended to it
    width = 1
    m = _FOLLOWING_N.search(q)
    if m:
        width = int(m.group(1))
    else:
        after = q.split(":", 1)[1] if ":" in q else ""
        items = [s for s in re.split(r";|\n\s*[-*\d.]+\s", after) if s.strip()]
        bullets = len(re.findall(r"^\s*(?:[-*]|\d+[.)])\s+", question, flags=re.M))
        width = max(width, len(items) if len(items) >= 2 else 1, bullets)
    return {
        "width": float(width),
        "hops": float(len(_HOP_CUES.findall(q))),
        "ambiguity": float(len(_AMBIG_CUES.findall(q))),
        "needs_search": float(bool(_SEARCH_CUES.search(q))),
        "needs_compute": float(bool(_MATH.search(q))),
        "length": float(len(q.split())),
    }


@dataclass
class Router:
    """A decision stump: swarm when `feature` >= `threshold` (or < when `above` is False)."""

    feature: str = "width"
    threshold: float = 4.0
    above: bool = True
    source: str = "rules"
    train_accuracy: float | None = None

    def choose(self, question_or_features: str | dict[str, float]) -> str:
        f = task_features(question_or_features) if isinstance(question_or_features, str) else question_or_features
        v = float(f.get(self.feature, 0.0))
        return "swarm" if (v >= self.threshold) == self.above else "interleaved"

    def describe(self) -> str:
        op = ">=" if self.above else "<"
        acc = f", train accuracy {self.train_accuracy:.0%}" if self.train_accuracy is not None else ""
        return f"{self.source}: swarm when {self.feature} {op} {self.threshold:g}, else interleaved{acc}"


def _better(sw: TaskRecord, il: TaskRecord) -> str:
    """Which engine a user would have wanted for this task: higher score, then faster, then cheaper."""
    if abs(sw.score - il.score) > 1e-9:
        return "swarm" if sw.score > il.score else "interleaved"
    if abs(sw.wall_s - il.wall_s) > 1e-6:
        return "swarm" if sw.wall_s < il.wall_s else "interleaved"
    return "swarm" if sw.cost_usd < il.cost_usd else "interleaved"


def paired(records: list[TaskRecord]) -> dict[tuple[str, str, str], dict[str, TaskRecord]]:
    """(suite, task, model) -> {engine: record}, for tasks run by both swarm and interleaved."""
    by: dict[tuple[str, str, str], dict[str, TaskRecord]] = defaultdict(dict)
    for r in records:
        if r.mode in ("swarm", "interleaved"):
            by[(r.suite, r.task_id, r.model)][r.mode] = r
    return {k: v for k, v in by.items() if len(v) == 2}


def fit_router(records: list[TaskRecord]) -> Router:
    """Fit the stump that best reproduces the per-task winner. Falls back to the rules
    when there are no paired results to learn from."""
    pairs = paired(records)
    if not pairs:
        return Router()
    data = [(v["swarm"].features, _better(v["swarm"], v["interleaved"])) for v in pairs.values()]
    best = Router(train_accuracy=sum(Router().choose(f) == y for f, y in data) / len(data))
    for feat in FEATURES:
        values = sorted({float(f.get(feat, 0.0)) for f, _ in data})
        for t in values:
            for above in (True, False):
                r = Router(feat, t, above, "fitted")
                acc = sum(r.choose(f) == y for f, y in data) / len(data)
                if best.train_accuracy is None or acc > best.train_accuracy + 1e-9:
                    best = Router(feat, t, above, "fitted", acc)
    return best


def held_out(key: tuple[str, str, str], fraction: float = 0.34) -> bool:
    """A stable split: the same task is always in the same half, whatever else ran."""
    return (zlib.crc32("/".join(key).encode()) % 1000) < fraction * 1000


@dataclass
class PolicyScore:
    policy: str
    n: int
    accuracy: float
    mean_score: float
    wall_s: float
    cost_usd: float


def evaluate_router(records: list[TaskRecord], fraction: float = 0.34) -> tuple[Router, list[PolicyScore]]:
    """Fit on the training split, score auto vs always-swarm / always-interleaved (and the
    per-task oracle) on held-out tasks, replaying the stored result of each choice."""
    pairs = paired(records)
    train = [r for k, v in pairs.items() if not held_out(k, fraction) for r in v.values()]
    test = {k: v for k, v in pairs.items() if held_out(k, fraction)}
    if not test:  # too few tasks for a split: evaluate on everything (the report says so)
        test = pairs
    router = fit_router(train) if train else Router()
    policies: dict[str, list[TaskRecord]] = {"always-swarm": [], "always-interleaved": [], "auto": [], "oracle": []}
    for v in test.values():
        policies["always-swarm"].append(v["swarm"])
        policies["always-interleaved"].append(v["interleaved"])
        policies["auto"].append(v[router.choose(v["swarm"].features)])
        policies["oracle"].append(v[_better(v["swarm"], v["interleaved"])])
    out = []
    for name, recs in policies.items():
        n = len(recs)
        if not n:
            continue
        out.append(PolicyScore(name, n, sum(r.solved for r in recs) / n, sum(r.score for r in recs) / n,
                               sum(r.wall_s for r in recs) / n, sum(r.cost_usd for r in recs) / n))
    return router, out


def router_summary(records: list[TaskRecord]) -> dict[str, Any]:
    router, scores = evaluate_router(records)
    return {"router": router.describe(), "scores": [s.__dict__ for s in scores]}
