"""The verdict: per suite and mode, what was solved, at what price, how fast, how grounded.

Accuracy carries a Wilson 95% interval because comparisons here are small (5-50 tasks)
and the normal interval is wrong at that size, so a reader can see when two modes are
not separable. Table suites also get an interval on their items (cells right / cells
asked for, pooled over tasks), the finer measure when few tasks are fully solved. Cost
per solved task divides all spend (failed attempts included) by the number solved ("AI
Agents That Matter").

Three kinds of unfinished task are kept apart: *errors* (the run failed), *cut* tasks
(stopped by a step/token/wall budget or the runner's hard timeout: status budget,
timeout or cancelled) and tasks that never ran (the time budget; they are not stored,
see `Runner.pending_keys`). Cut and errored tasks still count as attempts in accuracy,
but stay out of every wall-clock figure: a task stopped at the 30 s limit says nothing
about how fast a design is.

Every ratio is stated one way, swarm relative to interleaved, in words ("swarm used 3.5x
the critical steps of interleaved").
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .store import TaskRecord

CUT = frozenset({"budget", "timeout", "cancelled"})
CONFIG_LABELS = {
    "suites": "suites", "jsonl": "JSONL suites", "corpus": "corpus for JSONL suites", "modes": "modes",
    "models": "models", "n": "tasks per suite", "suite_n": "tasks per suite, overrides", "seed": "seed", "demo": "demo sizes", "max_steps": "step budget per run",
    "task_timeout_s": "time limit per task (s)", "time_budget_s": "time budget for the comparison (s)",
    "concurrency": "tasks at once", "max_parallel": "swarm sub-agents at once",
    "sub_max_steps": "step budget per swarm sub-agent", "max_tokens": "max tokens per call",
    "thinking": "thinking", "first_tool_choice": "first step must call a tool", "judge_model": "judge model",
}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def grounded_fraction(r: TaskRecord) -> float | None:
    g = r.detail.get("grounding") if isinstance(r.detail, dict) else None
    return g.get("fraction") if isinstance(g, dict) else None


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
    wall_mean_s: float | None  # over finished tasks only (not cut, not errored)
    wall_median_s: float | None
    ttft_median_s: float | None
    tps_median: float | None
    errors: int
    engines: dict[str, int]
    cut: int = 0
    grounded: float | None = None  # mean grounded fraction over tasks whose answer made claims
    items_correct: int = 0
    items_gold: int = 0
    item_ci: tuple[float, float] | None = None
    finished: int = 0

    @property
    def item_rate(self) -> float | None:
        return self.items_correct / self.items_gold if self.items_gold else None


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
        ok = [r for r in rs if r.status == "ok"]
        walls = [r.wall_s for r in ok]
        grounded = [f for r in rs if (f := grounded_fraction(r)) is not None]
        items_c = sum(int(r.detail.get("items_correct") or 0) for r in rs)
        items_g = sum(int(r.detail.get("items_gold") or 0) for r in rs)
        rows.append(Row(
            suite, mode, model, n, k, k / n, wilson(k, n), sum(r.score for r in rs) / n, cost,
            cost / k if k else None,
            sum(r.tokens for r in rs) / n, sum(r.reasoning_tokens for r in rs) / n,
            sum(r.steps for r in rs) / n, sum(r.critical_steps for r in rs) / n, sum(r.tool_calls for r in rs) / n,
            statistics.fmean(walls) if walls else None, _median(walls),
            _median([r.ttft_s for r in rs if r.ttft_s is not None]),
            _median([r.decode_tps for r in rs if r.decode_tps is not None]),
            sum(r.status == "error" for r in rs), dict(engines),
            cut=sum(r.status in CUT for r in rs),
            grounded=statistics.fmean(grounded) if grounded else None,
            items_correct=items_c, items_gold=items_g, item_ci=wilson(items_c, items_g) if items_g else None,
            finished=len(ok),
        ))
    return rows


@dataclass
class Speedup:
    """Swarm relative to interleaved on the tasks both finished (same suite and model)."""

    suite: str
    model: str
    tasks: int
    wall_ratio: float | None  # swarm wall / interleaved wall (< 1: swarm faster)
    critical_ratio: float | None  # swarm critical steps / interleaved critical steps (< 1: swarm shorter)
    excluded: int = 0  # tasks left out because one side was cut or errored


def speedups(records: list[TaskRecord]) -> list[Speedup]:
    by: dict[tuple[str, str], dict[str, dict[str, TaskRecord]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.mode in ("swarm", "interleaved"):
            by[(r.suite, r.model)][r.task_id][r.mode] = r
    out = []
    for (suite, model), tasks in sorted(by.items()):
        pairs = [v for v in tasks.values() if len(v) == 2]
        both = [v for v in pairs if all(x.status == "ok" for x in v.values())]
        if not both:
            continue
        sw = sum(v["swarm"].wall_s for v in both)
        il = sum(v["interleaved"].wall_s for v in both)
        csw = sum(v["swarm"].critical_steps for v in both)
        cil = sum(v["interleaved"].critical_steps for v in both)
        out.append(Speedup(suite, model, len(both), sw / il if il > 0 else None, csw / cil if cil > 0 else None,
                           excluded=len(pairs) - len(both)))
    return out


def ratio_words(ratio: float | None, noun: str, *, a: str = "swarm", b: str = "interleaved") -> str:
    """One direction, in words: "swarm used 3.5× the critical steps of interleaved"."""
    if ratio is None:
        return f"no {noun} to compare"
    if 0.95 <= ratio <= 1.05:
        return f"{a} used about the same {noun} as {b} ({ratio:.2f}×)"
    return f"{a} used {ratio:.2f}× the {noun} of {b}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(ci: tuple[float, float]) -> str:
    return f"[{_pct(ci[0])}–{_pct(ci[1])}]"


def _money(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:.4f}" if x < 1 else f"${x:.2f}"


def _secs(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def _measure(r: Row) -> str:
    """How a row did, with its interval: items for table suites, tasks otherwise."""
    if r.items_gold and r.item_ci is not None:
        return (f"{r.items_correct}/{r.items_gold} items right ({_pct(r.item_rate or 0)} {_ci(r.item_ci)}), "
                f"{r.solved}/{r.n} tasks fully solved")
    return f"{r.solved}/{r.n} solved ({_pct(r.accuracy)} {_ci(r.ci)})"


def _key(r: Row) -> tuple[float, float, float]:
    rate = r.item_rate if r.item_rate is not None else r.accuracy
    return (r.accuracy, rate, r.mean_score)


def _interval(r: Row) -> tuple[float, float]:
    return r.item_ci if r.item_ci is not None else r.ci


def verdict(suite: str, rows: list[Row], sp: list[Speedup]) -> str:
    """One sentence a user can act on: which mode, and whether the data can tell."""
    rs = [r for r in rows if r.suite == suite]
    if not rs:
        return f"{suite}: no results."
    if all(r.errors == r.n for r in rs):
        return f"{suite}: every task errored (see the errors below), so there is no verdict."
    rs = [r for r in rs if r.errors < r.n]  # a mode that only errored is not a candidate
    best = max(rs, key=lambda r: (_key(r), -(r.wall_mean_s or math.inf)))
    others = [r for r in rs if r is not best]
    lo = _interval(best)[0]
    separable = all(lo > _interval(o)[1] for o in others) if others else False
    s = next((x for x in sp if x.suite == suite and x.model == best.model), None)
    speed = ""
    if s is not None:
        speed = f"; {ratio_words(s.wall_ratio, 'wall-clock time')} and {ratio_words(s.critical_ratio, 'critical steps')}"
        speed += f" (on the {s.tasks} task(s) both finished)"
    cut = sum(r.cut for r in rs)
    cut_note = f"; {cut} run(s) were cut by a budget or time limit" if cut else ""
    if all(r.solved == 0 for r in rs) and all(not r.items_correct for r in rs):
        cheapest = min(rs, key=lambda r: (r.tokens_per_task, r.wall_mean_s or math.inf))
        return (f"{suite}: no mode solved a task (best mean score {best.mean_score:.2f} by {best.mode}){speed}{cut_note}; "
                f"the model is too weak here to tell designs apart — {cheapest.mode} is the cheapest way to fail.")
    price = (f"{_money(best.cost_per_solved)} per solved task" if best.cost_per_solved
             else f"{best.tokens_per_task:,.0f} tokens per task (no API cost)")
    claim = "clearly best" if separable else "best, but not separable from the rest (95% intervals overlap)"
    rest = "; ".join(f"{o.mode} {_measure(o)}" for o in others)
    return (f"{suite}: {best.mode} ({best.model}) is {claim}: {_measure(best)}, {price}"
            + (f"; {rest}" if rest else "") + f"{speed}{cut_note}.")


def shape_verdict(rows: list[Row], records: list[TaskRecord]) -> list[str]:
    """Which design fits which shape of work: swarm vs interleaved on the wide suites (many
    independent items) and on the deep ones (each step needs the last), with intervals."""
    feats: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        feats[r.suite].append(r.features or {})

    def mean(suite: str, key: str) -> float:
        xs = [float(f.get(f"suite_{key}", f.get(key, 0)) or 0) for f in feats[suite]]
        return statistics.fmean(xs) if xs else 0.0

    def rate(r: Row) -> float:
        return r.item_rate if r.item_rate is not None else r.accuracy

    out = []
    for shape, test in (("wide work (many independent items)", lambda s: mean(s, "width") >= 4),
                        ("deep work (each step needs the previous answer)", lambda s: mean(s, "hops") >= 2)):
        parts = []
        for suite in sorted({r.suite for r in rows}):
            if not test(suite):
                continue
            by = {r.mode: r for r in rows if r.suite == suite}
            sw, il = by.get("swarm"), by.get("interleaved")
            if sw is None or il is None:
                continue
            a, b = _interval(sw), _interval(il)
            if a[0] > b[1]:
                who = "swarm fits it better"
            elif b[0] > a[1]:
                who = "interleaved fits it better"
            else:
                who = "the 95% intervals overlap, so this data cannot separate the designs"
            unit = "items" if sw.items_gold else "tasks"
            parts.append(f"{suite}: swarm {_pct(rate(sw))} {_ci(a)} vs interleaved {_pct(rate(il))} "
                         f"{_ci(b)} of {unit} right — {who}")
        if parts:
            out.append(f"{shape}: " + "; ".join(parts) + ".")
    return out


def config_rows(config: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The comparison's settings as (label, value) pairs a reader can scan."""
    if not config:
        return []
    out = []
    for key, label in CONFIG_LABELS.items():
        if key not in config:
            continue
        v = config[key]
        if v in (None, [], ""):
            if key in ("jsonl", "corpus", "judge_model", "first_tool_choice", "suite_n", "sub_max_steps"):
                continue
            v = "none"
        elif isinstance(v, list | tuple):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}: {b}" for a, b in v.items())
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        out.append((label, str(v)))
    return out


def sample_answers(records: list[TaskRecord], limit: int = 1) -> dict[tuple[str, str], list[TaskRecord]]:
    """Up to `limit` records per (suite, mode), a finished one with an answer first."""
    by: dict[tuple[str, str], list[TaskRecord]] = defaultdict(list)
    for r in records:
        by[(r.suite, r.mode)].append(r)
    out = {}
    for k, rs in sorted(by.items()):
        rs = sorted(rs, key=lambda r: (not r.answer, r.status != "ok", r.task_id))
        out[k] = rs[:limit]
    return out


def _short(text: str | None, n: int = 110) -> str:
    t = " ⏎ ".join(x.strip() for x in (text or "").strip().splitlines() if x.strip())
    return (t[: n - 1] + "…") if len(t) > n else (t or "(no answer)")


@dataclass
class NotRun:
    """Units of the plan that have no result, and the command that finishes them."""

    keys: list[tuple[str, str, str, str]] = field(default_factory=list)
    resume: str = ""

    def summary(self) -> str:
        by: dict[tuple[str, str], int] = defaultdict(int)
        for suite, _task, mode, _model in self.keys:
            by[(suite, mode)] += 1
        return ", ".join(f"{suite}/{mode}: {k}" for (suite, mode), k in sorted(by.items()))


def render_terminal(records: list[TaskRecord], comparison_id: str, console: Any = None, *,
                    config: dict[str, Any] | None = None, not_run: NotRun | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    rows = aggregate(records)
    sp = speedups(records)
    cfg = config_rows(config)
    if cfg:
        ct = Table(title=f"[bold]configuration[/bold] · comparison {comparison_id}", title_justify="left",
                   show_header=False)
        ct.add_column("setting")
        ct.add_column("value")
        for k, v in cfg:
            ct.add_row(k, v)
        console.print(ct)
    samples = sample_answers(records)
    for suite in sorted({r.suite for r in rows}):
        t = Table(title=f"[bold]{suite}[/bold] · comparison {comparison_id}", title_justify="left")
        for col in ("mode", "model", "n", "solved [95% CI]", "score", "grounded", "$/solved", "tok/task",
                    "reason tok", "steps", "crit", "tools", "wall s", "TTFT s", "tok/s", "cut", "err"):
            t.add_column(col, justify="left" if col in ("mode", "model") else "right",
                         no_wrap=col not in ("mode", "model"))
        for r in (r for r in rows if r.suite == suite):
            mode = r.mode if r.mode != "auto" else "auto (" + ", ".join(f"{k}:{v}" for k, v in r.engines.items()) + ")"
            t.add_row(mode, r.model, str(r.n), f"{_pct(r.accuracy)} {_ci(r.ci)}",
                      f"{r.mean_score:.2f}", "—" if r.grounded is None else _pct(r.grounded),
                      _money(r.cost_per_solved), f"{r.tokens_per_task:,.0f}",
                      f"{r.reasoning_tokens_per_task:,.0f}", f"{r.steps:.1f}", f"{r.critical_steps:.1f}",
                      f"{r.tool_calls:.1f}", _secs(r.wall_mean_s),
                      "—" if r.ttft_median_s is None else f"{r.ttft_median_s:.2f}",
                      "—" if r.tps_median is None else f"{r.tps_median:.0f}", str(r.cut), str(r.errors))
        console.print(t)
        for (s, mode), recs in samples.items():
            if s != suite:
                continue
            for rec in recs:
                mark = "✓" if rec.solved else "✗"
                gold = rec.detail.get("gold")
                # answers and gold are model/user text: printed as text, never as markup
                console.print(Text.assemble((f"  {mode} answered {rec.task_id}: ", "dim"), _short(rec.answer),
                                            (f" {mark} (expected: {_short(str(gold) if gold else '?', 60)})", "dim")),
                              highlight=False)
        console.print(Text.assemble(("verdict", "bold"), f" {verdict(suite, rows, sp)}\n"))
    shapes = shape_verdict(rows, records)
    for line in shapes:
        console.print(f"[bold]design fit[/bold] {line}")
    for s in sp:
        console.print(f"swarm vs interleaved on {s.suite}/{s.model} ({s.tasks} task(s) both finished"
                      + (f"; {s.excluded} left out, cut or errored on one side" if s.excluded else "") + "): "
                      f"{ratio_words(s.wall_ratio, 'wall-clock time')}; {ratio_words(s.critical_ratio, 'critical steps')}.")
    cut = [r for r in records if r.status in CUT]
    if cut:
        console.print(f"[yellow]{len(cut)} task(s) cut by a budget or time limit[/yellow] (counted as attempts, left "
                      f"out of wall-clock figures); first: {cut[0].task_id}/{cut[0].mode}: "
                      f"{escape(str(cut[0].detail.get('reason') or cut[0].status))}")
    errs = [r for r in records if r.status == "error"]
    if errs:
        console.print(f"[yellow]{len(errs)} task(s) errored[/yellow]; first: {errs[0].task_id}/{errs[0].mode}: "
                      f"{escape(errs[0].error or '')}")
    if not_run is not None and not_run.keys:
        console.print(f"[yellow]{len(not_run.keys)} task(s) did not run[/yellow] ({not_run.summary()}). "
                      f"Finish them with: [bold]{not_run.resume}[/bold]")


def summary_dict(records: list[TaskRecord]) -> dict[str, Any]:
    """Machine-readable report (used by tests and `--json`)."""
    rows = aggregate(records)
    sp = speedups(records)
    return {
        "rows": [r.__dict__ for r in rows],
        "speedups": [s.__dict__ for s in sp],
        "verdicts": {s: verdict(s, rows, sp) for s in sorted({r.suite for r in rows})},
        "design_fit": shape_verdict(rows, records),
    }
