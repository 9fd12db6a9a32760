"""The verdict: per suite and mode, what was solved, at what price, how fast.

Accuracy carries a Wilson 95% interval because comparisons here are small (5-50 tasks)
and the normal interval is wrong at that size, so a reader can see when two modes are
not separable. Cost per solved task divides all spend (failed attempts included) by the
number solved ("AI Agents That Matter"). Speedup is wall-clock interleaved / swarm on
the same tasks with the same model.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .store import TaskRecord


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


@dataclass
class Row:
    suite: str
    mode: str
    model: str
    n: int
    solved: int
    accuracy: float
    ci: tuple[float, float]
    mean_score: float
    cost_usd: float
    cost_per_solved: float | None
    tokens_per_task: float
    reasoning_tokens_per_task: float
    steps: float
    critical_steps: float
    tool_calls: float
    wall_mean_s: float
    wall_median_s: float
    ttft_median_s: float | None
    tps_median: float | None
    errors: int
    engines: dict[str, int]


def aggregate(records: list[TaskRecord]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[TaskRecord]] = defaultdict(list)
    for r in records:
        groups[(r.suite, r.mode, r.model)].append(r)
    rows = []
    for (suite, mode, model), rs in sorted(groups.items()):
        n = len(rs)
        k = sum(r.solved for r in rs)
        cost = sum(r.cost_usd for r in rs)
        engines: dict[str, int] = defaultdict(int)
        for r in rs:
            engines[r.engine] += 1
        rows.append(Row(
            suite, mode, model, n, k, k / n, wilson(k, n), sum(r.score for r in rs) / n, cost,
            cost / k if k else None,
            sum(r.tokens for r in rs) / n, sum(r.reasoning_tokens for r in rs) / n,
            sum(r.steps for r in rs) / n, sum(r.critical_steps for r in rs) / n, sum(r.tool_calls for r in rs) / n,
            sum(r.wall_s for r in rs) / n, statistics.median(r.wall_s for r in rs),
            _median([r.ttft_s for r in rs if r.ttft_s is not None]),
            _median([r.decode_tps for r in rs if r.decode_tps is not None]),
            sum(r.status == "error" for r in rs), dict(engines),
        ))
    return rows


@dataclass
class Speedup:
    suite: str
    model: str
    tasks: int
    wall_speedup: float | None  # interleaved wall / swarm wall (> 1: swarm faster)
    critical_ratio: float | None  # interleaved critical steps / swarm critical steps


def speedups(records: list[TaskRecord]) -> list[Speedup]:
    by: dict[tuple[str, str], dict[str, dict[str, TaskRecord]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.mode in ("swarm", "interleaved") and r.status != "error":
            by[(r.suite, r.model)][r.task_id][r.mode] = r
    out = []
    for (suite, model), tasks in sorted(by.items()):
        both = [v for v in tasks.values() if len(v) == 2]
        if not both:
            continue
        sw = sum(v["swarm"].wall_s for v in both)
        il = sum(v["interleaved"].wall_s for v in both)
        csw = sum(v["swarm"].critical_steps for v in both)
        cil = sum(v["interleaved"].critical_steps for v in both)
        out.append(Speedup(suite, model, len(both), il / sw if sw > 0 else None, cil / csw if csw > 0 else None))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _money(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:.2f}"


def verdict(suite: str, rows: list[Row], sp: list[Speedup]) -> str:
    """One sentence a user can act on: which mode, and whether the data can tell."""
    rs = [r for r in rows if r.suite == suite]
    if not rs:
        return f"{suite}: no results."
    if all(r.errors == r.n for r in rs):
        return f"{suite}: every task errored (see the errors below), so there is no verdict."
    rs = [r for r in rs if r.errors < r.n]  # a mode that only errored is not a candidate
    best = max(rs, key=lambda r: (r.accuracy, r.mean_score, -r.wall_mean_s))
    others = [r for r in rs if r is not best]
    separable = all(best.ci[0] > o.ci[1] for o in others) if others else False
    s = next((x for x in sp if x.suite == suite and x.model == best.model), None)
    speed = ""
    if s and s.wall_speedup:
        if 0.95 <= s.wall_speedup <= 1.05:
            speed = "; swarm ran about as fast as interleaved"
        else:
            faster = "faster" if s.wall_speedup >= 1 else "slower"
            ratio = s.wall_speedup if s.wall_speedup >= 1 else 1 / s.wall_speedup
            speed = f"; swarm ran {ratio:.1f}× {faster} than interleaved"
        if s.critical_ratio and abs(s.critical_ratio - 1) > 0.05:
            speed += f" with {s.critical_ratio:.1f}× fewer critical steps" if s.critical_ratio >= 1 else \
                f" with {1 / s.critical_ratio:.1f}× more critical steps"
    if all(r.solved == 0 for r in rs):
        cheapest = min(rs, key=lambda r: (r.tokens_per_task, r.wall_mean_s))
        return (f"{suite}: no mode solved a task (best mean score {best.mean_score:.2f} by {best.mode}){speed}; "
                f"the model is too weak here to tell designs apart — {cheapest.mode} is the cheapest way to fail.")
    price = (f"{_money(best.cost_per_solved)} per solved task" if best.cost_per_solved
             else f"{best.tokens_per_task:,.0f} tokens per task (no API cost)")
    claim = "clearly best" if separable else f"best but not separable from the rest at n={best.n} (95% CIs overlap)"
    return (f"{suite}: {best.mode} ({best.model}) is {claim} at {_pct(best.accuracy)} solved, "
            f"{price}{speed}.")


def render_terminal(records: list[TaskRecord], comparison_id: str, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = aggregate(records)
    sp = speedups(records)
    for suite in sorted({r.suite for r in rows}):
        t = Table(title=f"[bold]{suite}[/bold] · comparison {comparison_id}", title_justify="left")
        for col in ("mode", "model", "n", "solved [95% CI]", "score", "$/solved", "tok/task", "reason tok",
                    "steps", "crit", "tools", "wall s", "TTFT s", "tok/s", "err"):
            t.add_column(col, justify="left" if col in ("mode", "model") else "right",
                         no_wrap=col not in ("mode", "model"))
        for r in (r for r in rows if r.suite == suite):
            mode = r.mode if r.mode != "auto" else "auto (" + ", ".join(f"{k}:{v}" for k, v in r.engines.items()) + ")"
            t.add_row(mode, r.model, str(r.n), f"{_pct(r.accuracy)} [{_pct(r.ci[0])}–{_pct(r.ci[1])}]",
                      f"{r.mean_score:.2f}", _money(r.cost_per_solved), f"{r.tokens_per_task:,.0f}",
                      f"{r.reasoning_tokens_per_task:,.0f}", f"{r.steps:.1f}", f"{r.critical_steps:.1f}",
                      f"{r.tool_calls:.1f}", f"{r.wall_mean_s:.1f}",
                      "—" if r.ttft_median_s is None else f"{r.ttft_median_s:.2f}",
                      "—" if r.tps_median is None else f"{r.tps_median:.0f}", str(r.errors))
        console.print(t)
        console.print(f"[bold]verdict[/bold] {verdict(suite, rows, sp)}\n")
    for s in sp:
        if s.wall_speedup:
            console.print(f"speedup {s.suite}/{s.model}: swarm vs interleaved wall-clock ×{s.wall_speedup:.2f}, "
                          f"critical steps ×{(s.critical_ratio or 0):.2f} over {s.tasks} tasks")
    errs = [r for r in records if r.status == "error"]
    if errs:
        console.print(f"[yellow]{len(errs)} task(s) errored[/yellow]; first: {errs[0].task_id}/{errs[0].mode}: {errs[0].error}")


def summary_dict(records: list[TaskRecord]) -> dict[str, Any]:
    """Machine-readable report (used by tests and `--json`)."""
    rows = aggregate(records)
    sp = speedups(records)
    return {
        "rows": [r.__dict__ for r in rows],
        "speedups": [s.__dict__ for s in sp],
        "verdicts": {s: verdict(s, rows, sp) for s in sorted({r.suite for r in rows})},
    }
