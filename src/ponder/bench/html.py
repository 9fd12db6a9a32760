"""The HTML report: one self-contained file with inline SVG charts (no CDN, no plotting
library), so it opens offline, can be mailed, and diffs as text.

Charts: accuracy vs cost with the Pareto frontier; critical vs total steps per task
(points under the diagonal are parallel work); wall-clock latency distributions (finished
tasks only: a task cut at its time limit says nothing about speed). Then the
configuration as a table, what did not run and how to finish it, every answer the
models gave (with its grade and grounded fraction), cut tasks and errors.
"""

from __future__ import annotations

import html
import math
import time
import urllib.parse
from pathlib import Path

from .report import (
    CUT,
    NotRun,
    aggregate,
    config_rows,
    grounded_fraction,
    ratio_words,
    shape_verdict,
    speedups,
    verdict,
    wilson,
)
from .router import evaluate_router
from .store import TaskRecord

COLORS = {"swarm": "#d62728", "interleaved": "#1f77b4", "single": "#7f7f7f", "auto": "#2ca02c"}
W, H, PAD = 520, 320, 48
VIEWER_BASE = "http://127.0.0.1:8700"  # `ponder serve`'s default address: its /runs/<id> shows a run


def run_id_of(r: TaskRecord) -> str | None:
    """The journaled run behind a record: a `run_id` field, or `detail["run_id"]`."""
    rid = getattr(r, "run_id", None) or (r.detail or {}).get("run_id")
    return str(rid) if rid else None


def runs_table(records: list[TaskRecord], viewer_base: str | None) -> str:
    """Each task linked to its run page in the viewer (`ponder serve`, or `ponder view RUN_ID`)."""
    rows = [(r, run_id_of(r)) for r in records]
    rows = [(r, rid) for r, rid in rows if rid]
    if not rows or viewer_base is None:
        return ""
    base = viewer_base.rstrip("/")
    body = "".join(f"<tr><td>{_e(r.suite)}</td><td>{_e(r.task_id)}</td><td>{_e(r.mode)}</td><td>{_e(r.model)}</td>"
                   f"<td>{_e(r.status)}</td><td><a href='{_e(base)}/runs/{_e(urllib.parse.quote(rid, safe=''))}'>"
                   f"{_e(rid[:12])}</a></td></tr>" for r, rid in rows)
    return (f"<h2>Runs</h2><p>Each task's run in the viewer (<code>ponder serve</code>, or "
            f"<code>ponder view RUN_ID</code>), at {_e(base)}.</p><table class='runs'><tr><th>suite</th><th>task</th>"
            f"<th>mode</th><th>model</th><th>status</th><th>run</th></tr>{body}</table>")


def _e(s: object) -> str:
    return html.escape(str(s))


def _scale(lo: float, hi: float, a: float, b: float):  # type: ignore[no-untyped-def]
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return lambda v: a + (v - lo) / (hi - lo) * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi - lo < 1e-12:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.floor(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step) + 2) if start + i * step <= hi + 1e-9]


def _axes(x0: float, x1: float, y0: float, y1: float, xlabel: str, ylabel: str) -> tuple[str, object, object]:
    sx = _scale(x0, x1, PAD, W - 16)
    sy = _scale(y0, y1, H - PAD, 16)
    parts = [f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 16}" y2="{H - PAD}" stroke="#333"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{PAD}" y2="16" stroke="#333"/>']
    for t in _ticks(x0, x1):
        parts.append(f'<text x="{sx(t):.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        parts.append(f'<text x="{PAD - 4}" y="{sy(t) + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
        parts.append(f'<line x1="{PAD}" y1="{sy(t):.1f}" x2="{W - 16}" y2="{sy(t):.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{(W + PAD) / 2}" y="{H - 10}" font-size="11" text-anchor="middle">{_e(xlabel)}</text>')
    parts.append(f'<text x="12" y="{H / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {H / 2})">{_e(ylabel)}</text>')
    return "".join(parts), sx, sy


def _svg(body: str, title: str) -> str:
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'role="img" aria-label="{_e(title)}">{body}</svg><figcaption>{_e(title)}</figcaption></figure>')


def _legend(modes: list[str]) -> str:
    out = []
    for i, m in enumerate(modes):
        out.append(f'<circle cx="{W - 110}" cy="{24 + 14 * i}" r="4" fill="{COLORS.get(m, "#000")}"/>'
                   f'<text x="{W - 100}" y="{28 + 14 * i}" font-size="10">{_e(m)}</text>')
    return "".join(out)


def pareto_chart(records: list[TaskRecord]) -> str:
    """Accuracy vs cost per (suite, mode, model). Cost is USD per task, or tokens per task
    when every model was free (local), so the chart still ranks designs by spend."""
    rows = aggregate(records)
    use_usd = any(r.cost_usd > 0 for r in rows)
    xs = [(r.cost_usd / r.n if use_usd else r.tokens_per_task) for r in rows]
    ys = [r.accuracy * 100 for r in rows]
    x1 = max(xs + [1e-9]) * 1.1
    axes, sx, sy = _axes(0, x1, 0, 100, "USD per task" if use_usd else "tokens per task", "solved %")
    parts = [axes]
    for suite in sorted({r.suite for r in rows}):
        pts = sorted((x, y) for r, x, y in zip(rows, xs, ys, strict=True) if r.suite == suite)
        front, best = [], -1.0
        for x, y in pts:
            if y > best:
                front.append((x, y))
                best = y
        if len(front) >= 2:
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in front)  # type: ignore[operator]
            parts.append(f'<polyline points="{d}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    for r, x, y in zip(rows, xs, ys, strict=True):
        lo, hi = wilson(r.solved, r.n)
        cx, cy = sx(x), sy(y)  # type: ignore[operator]
        parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{sy(lo * 100):.1f}" y2="{sy(hi * 100):.1f}" '  # type: ignore[operator]
                     f'stroke="{COLORS.get(r.mode, "#000")}" opacity="0.35"/>')
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{COLORS.get(r.mode, "#000")}">'
                     f'<title>{_e(f"{r.suite} · {r.mode} · {r.model}: {r.accuracy:.0%}, {x:.4g}")}</title></circle>'
                     f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" font-size="9">{_e(r.suite)}</text>')
    parts.append(_legend(sorted({r.mode for r in rows})))
    return _svg("".join(parts), "Accuracy vs cost (dashed: Pareto frontier per suite; bars: 95% Wilson CI)")


def steps_chart(records: list[TaskRecord]) -> str:
    rs = [r for r in records if r.steps > 0]
    top = max([r.steps for r in rs] + [r.critical_steps for r in rs] + [1]) * 1.05
    axes, sx, sy = _axes(0, top, 0, top, "total steps (all agents)", "critical steps")
    parts = [axes, f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(top):.1f}" y2="{sy(top):.1f}" '  # type: ignore[operator]
                   f'stroke="#bbb" stroke-dasharray="3 3"/>']
    for r in rs:
        parts.append(f'<circle cx="{sx(r.steps):.1f}" cy="{sy(r.critical_steps):.1f}" r="4" '  # type: ignore[operator]
                     f'fill="{COLORS.get(r.engine, "#000")}" opacity="0.7">'
                     f'<title>{_e(f"{r.task_id} · {r.mode}: {r.steps} steps, {r.critical_steps} critical")}</title></circle>')
    parts.append(_legend(sorted({r.engine for r in rs})))
    return _svg("".join(parts), "Critical vs total steps per task (below the diagonal = work done in parallel)")


def latency_chart(records: list[TaskRecord]) -> str:
    """Box plot of wall-clock seconds per (suite, mode), one row each, with every task as a dot."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r.status == "ok":
            groups.setdefault((r.suite, r.mode), []).append(r.wall_s)
    if not groups:
        return "<p>No task finished, so there is no latency to show.</p>"
    keys = sorted(groups)
    height = max(H, 40 + 26 * len(keys))
    top = max([max(v) for v in groups.values()] + [1e-3]) * 1.05
    sx = _scale(0, top, 150, W - 16)
    parts = [f'<rect x="0" y="0" width="{W}" height="{height}" fill="white"/>']
    for t in _ticks(0, top):
        parts.append(f'<line x1="{sx(t):.1f}" y1="16" x2="{sx(t):.1f}" y2="{height - 30}" stroke="#eee"/>'
                     f'<text x="{sx(t):.1f}" y="{height - 16}" font-size="10" text-anchor="middle">{t:g}</text>')
    for i, (suite, mode) in enumerate(keys):
        vals = sorted(groups[(suite, mode)])
        y = 30 + 26 * i
        q = [vals[int(round(p * (len(vals) - 1)))] for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
        c = COLORS.get(mode, "#000")
        parts.append(f'<text x="144" y="{y + 4}" font-size="10" text-anchor="end">{_e(suite)} · {_e(mode)}</text>'
                     f'<line x1="{sx(q[0]):.1f}" x2="{sx(q[4]):.1f}" y1="{y}" y2="{y}" stroke="{c}"/>'
                     f'<rect x="{sx(q[1]):.1f}" y="{y - 7}" width="{max(1.0, sx(q[3]) - sx(q[1])):.1f}" height="14" '
                     f'fill="{c}" opacity="0.25" stroke="{c}"/>'
                     f'<line x1="{sx(q[2]):.1f}" x2="{sx(q[2]):.1f}" y1="{y - 7}" y2="{y + 7}" stroke="{c}" stroke-width="2"/>')
        for v in vals:
            parts.append(f'<circle cx="{sx(v):.1f}" cy="{y}" r="2" fill="{c}"/>')
    parts.append(f'<text x="{(W + 150) / 2}" y="{height - 2}" font-size="11" text-anchor="middle">wall-clock seconds per task</text>')
    body = "".join(parts)
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
            f'role="img" aria-label="latency">{body}</svg><figcaption>Latency distributions (box: quartiles, '
            f'bar: median, dots: tasks; finished tasks only)</figcaption></figure>')


def _answers_table(records: list[TaskRecord]) -> str:
    head = ("<tr><th>suite</th><th>task</th><th>mode</th><th>model</th><th>status</th><th>score</th>"
            "<th>grounded</th><th>answer</th><th>expected</th></tr>")
    body = []
    for r in sorted(records, key=lambda r: (r.suite, r.task_id, r.mode, r.model)):
        g = grounded_fraction(r)
        gd = r.detail.get("grounding") or {}
        miss = gd.get("ungrounded") or []
        gcell = "—" if g is None else f"{g:.0%}" + (f"<br><small>not in the evidence: {_e(', '.join(miss[:6]))}</small>"
                                                    if miss else "")
        ans = (r.answer or "")
        ans = ans if len(ans) <= 1500 else ans[:1500] + " …"
        body.append(f"<tr><td>{_e(r.suite)}</td><td>{_e(r.task_id)}</td><td>{_e(r.mode)}</td><td>{_e(r.model)}</td>"
                    f"<td>{_e(r.status)}</td><td>{r.score:.2f}{' ✓' if r.solved else ''}</td><td>{gcell}</td>"
                    f"<td class='ans'>{_e(ans) or '<i>no answer</i>'}</td>"
                    f"<td class='ans'>{_e(r.detail.get('gold', ''))}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render_html(records: list[TaskRecord], comparison_id: str, config: dict[str, object] | None = None,
                not_run: NotRun | None = None, tco_svg: str | None = None,
                viewer_base: str | None = VIEWER_BASE) -> str:
    """`tco_svg`: a serving-cost Pareto chart from `ponder.tco.pareto_svg`, shown when given.
    `viewer_base`: where the run viewer is served; tasks with a run id link to their run page."""
    rows = aggregate(records)
    sp = speedups(records)
    suites = sorted({r.suite for r in rows})
    head = ("<tr><th>suite</th><th>mode</th><th>model</th><th>n</th><th>solved [95% CI]</th><th>items right [95% CI]</th>"
            "<th>score</th><th>grounded</th><th>$/solved</th><th>tokens/task</th><th>reasoning tok</th><th>steps</th>"
            "<th>critical</th><th>tools</th><th>wall s (finished)</th><th>TTFT s</th><th>tok/s</th><th>cut</th>"
            "<th>errors</th></tr>")
    body = []
    for r in rows:
        items = (f"{r.items_correct}/{r.items_gold} [{r.item_ci[0]:.0%}–{r.item_ci[1]:.0%}]"
                 if r.items_gold and r.item_ci else "—")
        body.append(
            f"<tr><td>{_e(r.suite)}</td><td style='color:{COLORS.get(r.mode, '#000')}'>{_e(r.mode)}</td>"
            f"<td>{_e(r.model)}</td><td>{r.n}</td><td>{r.accuracy:.0%} [{r.ci[0]:.0%}–{r.ci[1]:.0%}]</td><td>{items}</td>"
            f"<td>{r.mean_score:.2f}</td><td>{'—' if r.grounded is None else f'{r.grounded:.0%}'}</td>"
            f"<td>{'—' if r.cost_per_solved is None else f'${r.cost_per_solved:.4f}'}</td>"
            f"<td>{r.tokens_per_task:,.0f}</td><td>{r.reasoning_tokens_per_task:,.0f}</td><td>{r.steps:.1f}</td>"
            f"<td>{r.critical_steps:.1f}</td><td>{r.tool_calls:.1f}</td>"
            f"<td>{'—' if r.wall_mean_s is None else f'{r.wall_mean_s:.1f}'}</td>"
            f"<td>{'—' if r.ttft_median_s is None else f'{r.ttft_median_s:.2f}'}</td>"
            f"<td>{'—' if r.tps_median is None else f'{r.tps_median:.0f}'}</td><td>{r.cut}</td><td>{r.errors}</td></tr>")
    verdicts = "".join(f"<li>{_e(verdict(s, rows, sp))}</li>" for s in suites)
    fit = "".join(f"<li>{_e(line)}</li>" for line in shape_verdict(rows, records))
    speed = "".join(f"<li>{_e(s.suite)} / {_e(s.model)} ({s.tasks} task(s) both finished"
                    + (f"; {s.excluded} left out, cut or errored on one side" if s.excluded else "") + "): "
                    f"{_e(ratio_words(s.wall_ratio, 'wall-clock time'))}; "
                    f"{_e(ratio_words(s.critical_ratio, 'critical steps'))}.</li>" for s in sp)
    router, scores = evaluate_router(records)
    rt = "".join(f"<tr><td>{_e(s.policy)}</td><td>{s.n}</td><td>{s.accuracy:.0%}</td><td>{s.mean_score:.2f}</td>"
                 f"<td>{s.wall_s:.2f}</td><td>${s.cost_usd:.4f}</td></tr>" for s in scores)
    router_html = (f"<p>{_e(router.describe())}. Held-out tasks replay the stored result of each policy's choice.</p>"
                   f"<table><tr><th>policy</th><th>tasks</th><th>solved</th><th>score</th><th>wall s</th><th>$/task</th></tr>{rt}</table>"
                   if scores else "<p>Run both swarm and interleaved to evaluate the router.</p>")
    errs = [r for r in records if r.status == "error"][:50]
    err_html = "".join(f"<li>{_e(r.suite)}/{_e(r.task_id)}/{_e(r.mode)}/{_e(r.model)}: {_e(r.error)}</li>" for r in errs)
    cut = [r for r in records if r.status in CUT]
    cut_html = "".join(f"<li>{_e(r.suite)}/{_e(r.task_id)}/{_e(r.mode)}/{_e(r.model)}: {_e(r.status)} — "
                       f"{_e(r.detail.get('reason') or '')}</li>" for r in cut)
    cfg = config_rows(dict(config) if config else None)
    cfg_html = ("<table>" + "".join(f"<tr><th>{_e(k)}</th><td style='text-align:left'>{_e(v)}</td></tr>" for k, v in cfg)
                + "</table>") if cfg else ""
    if not_run is not None and not_run.keys:
        nr_items = "".join(f"<li>{_e(s)}/{_e(t)}/{_e(m)}/{_e(mo)}</li>" for s, t, m, mo in not_run.keys[:200])
        not_run_html = (f"<h2>Did not run ({len(not_run.keys)})</h2><p>{_e(not_run.summary())}. Finish them with "
                        f"<code>{_e(not_run.resume)}</code>.</p><ul>{nr_items}</ul>")
    else:
        not_run_html = ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ponder compare {_e(comparison_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1300px}}
table{{border-collapse:collapse;font-size:13px;margin:8px 0}}td,th{{border:1px solid #ddd;padding:3px 7px;text-align:right}}
td:nth-child(-n+3),th{{text-align:left}}td.ans{{text-align:left;white-space:pre-wrap;max-width:420px;font-family:ui-monospace,monospace;font-size:12px}}
figure{{display:inline-block;margin:8px}}figcaption{{font-size:12px;color:#555;max-width:{W}px}}
code{{background:#f4f4f4;padding:1px 4px}}</style></head><body>
<h1>ponder compare <code>{_e(comparison_id)}</code></h1>
<p>Generated {time.strftime('%Y-%m-%d %H:%M:%S')} · {len(records)} task results.</p>
{cfg_html}
{not_run_html}
<h2>Verdict</h2><ul>{verdicts}</ul>
<h2>Which design fits which shape of work</h2><ul>{fit or '<li>run swarm and interleaved on a wide and a deep suite</li>'}</ul>
<h2>Per suite and mode</h2><table>{head}{''.join(body)}</table>
<p><small>grounded: the share of the numbers and proper names in an answer that appear in the tool results the run saw
(or the task); wall s: finished tasks only; cut: stopped by a step/token/wall budget or the time limit.</small></p>
<h2>Swarm vs interleaved</h2><ul>{speed or '<li>run both modes to compare</li>'}</ul>
<h2>Charts</h2>{pareto_chart(records)}{steps_chart(records)}{latency_chart(records)}
{'<h2>Serving cost (ponder tco)</h2>' + tco_svg if tco_svg else ''}
<h2>Router (--mode auto)</h2>{router_html}
<h2>Cut by a budget or time limit ({len(cut)})</h2><ul>{cut_html or '<li>none</li>'}</ul>
<h2>Errors ({len([r for r in records if r.status == "error"])})</h2><ul>{err_html or '<li>none</li>'}</ul>
<h2>Every answer</h2>{_answers_table(records)}
{runs_table(records, viewer_base)}
</body></html>"""


def write_html(records: list[TaskRecord], comparison_id: str, out: str | Path | None = None,
               config: dict[str, object] | None = None, not_run: NotRun | None = None,
               tco_svg: str | None = None, viewer_base: str | None = VIEWER_BASE) -> Path:
    path = Path(out) if out else Path("reports") / f"compare-{comparison_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(records, comparison_id, config, not_run, tco_svg=tco_svg, viewer_base=viewer_base),
                    encoding="utf-8")
    return path
