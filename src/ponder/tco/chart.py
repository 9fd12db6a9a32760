"""Self-contained HTML report with an inline SVG latency-throughput chart (no JS, no CDN)."""

from __future__ import annotations

import html
import math
from pathlib import Path

from .perf import DEFAULT_SWEEP, Deployment, Estimate, pareto, sweep

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
W, H = 760, 460
ML, MR, MT, MB = 70, 20, 30, 55


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def svg_chart(series: dict[str, list[Estimate]], *, title: str) -> str:
    """x = output tokens/s per user (interactivity), y = output tokens/s per GPU. Lines join each
    series' Pareto frontier; every fitting point is drawn and labelled with its user count."""
    pts = [p for s in series.values() for p in s if p.fits]
    xmax = _nice_max(max((p.user_tok_s or 0.0 for p in pts), default=1.0) * 1.05)
    ymax = _nice_max(max((p.gpu_tok_s or 0.0 for p in pts), default=1.0) * 1.05)
    pw, ph = W - ML - MR, H - MT - MB

    def sx(v: float | None) -> float:
        return ML + pw * (v or 0.0) / xmax

    def sy(v: float | None) -> float:
        return MT + ph * (1 - (v or 0.0) / ymax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
           f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    for i in range(6):
        xv, yv = xmax * i / 5, ymax * i / 5
        out.append(f'<line x1="{sx(xv):.1f}" y1="{MT}" x2="{sx(xv):.1f}" y2="{MT + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{sx(xv):.1f}" y="{MT + ph + 16}" text-anchor="middle">{xv:g}</text>')
        out.append(f'<line x1="{ML}" y1="{sy(yv):.1f}" x2="{ML + pw}" y2="{sy(yv):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ML - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:g}</text>')
    out.append(f'<text x="{ML + pw / 2}" y="{H - 12}" text-anchor="middle">output tokens/s per user</text>')
    out.append(f'<text transform="translate(16,{MT + ph / 2}) rotate(-90)" text-anchor="middle">'
               'output tokens/s per GPU</text>')
    for i, (name, s) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        front = sorted(pareto(s), key=lambda p: p.user_tok_s or 0.0)
        if len(front) > 1:
            path = " ".join(f"{sx(p.user_tok_s):.1f},{sy(p.gpu_tok_s):.1f}" for p in front)
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for p in s:
            if not p.fits:
                continue
            out.append(f'<circle cx="{sx(p.user_tok_s):.1f}" cy="{sy(p.gpu_tok_s):.1f}" r="3.5" fill="{c}">'
                       f'<title>{html.escape(name)}: {p.users} users, {p.user_tok_s or 0:.1f} tok/s/user, '
                       f'{p.gpu_tok_s or 0:.1f} tok/s/GPU</title></circle>')
            out.append(f'<text x="{sx(p.user_tok_s) + 5:.1f}" y="{sy(p.gpu_tok_s) - 5:.1f}" font-size="10" '
                       f'fill="{c}">{p.users}</text>')
        ly = MT + 14 + 16 * i
        out.append(f'<rect x="{ML + pw - 210}" y="{ly - 9}" width="10" height="10" fill="{c}"/>')
        out.append(f'<text x="{ML + pw - 195}" y="{ly}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _cell(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def html_report(series: dict[str, list[Estimate]], *, title: str, notes: list[str] | None = None) -> str:
    rows = []
    for name, s in series.items():
        for p in s:
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{p.users}</td><td>{'yes' if p.fits else 'does not fit'}</td>"
                f"<td>{_cell(p.ttft_s and p.ttft_s * 1e3, '.0f')}</td><td>{_cell(p.user_tok_s, '.1f')}</td>"
                f"<td>{_cell(p.gpu_tok_s, '.1f')}</td><td>{_cell(p.usd_per_m_input, '.3f')}</td>"
                f"<td>{_cell(p.usd_per_m_output, '.2f')}</td>"
                f"<td>{html.escape(p.fit_note + ('; fits with ' + p.suggestion if p.suggestion else ''))}</td></tr>"
            )
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in (notes or []))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,td:last-child{{text-align:left}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
{svg_chart(series, title="Latency-throughput Pareto curves (ponder tco roofline model)")}
<h2>Points</h2>
<table><tr><th>deployment</th><th>users</th><th>fits</th><th>TTFT ms</th><th>tok/s/user</th><th>tok/s/GPU</th>
<th>$/1M in</th><th>$/1M out</th><th>memory</th></tr>
{''.join(rows)}
</table>
<ul>{note_html}</ul>
<p>Model: per-operation roofline with named efficiencies; see docs/tco.md. Points that do not fit in memory are
listed but not drawn.</p>
</body></html>
"""


def write_report(path: str | Path, series: dict[str, list[Estimate]], *, title: str,
                 notes: list[str] | None = None) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html_report(series, title=title, notes=notes), encoding="utf-8")
    return p


def write_svg(path: str | Path, series: dict[str, list[Estimate]], *, title: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(svg_chart(series, title=title), encoding="utf-8")
    return p


def pareto_svg(models: list[str], gpus: list[str], *, n_gpus: int = 8, precision: str = "fp8",
               prompt: int = 8192, output: int = 1024, users: list[int] | None = None,
               title: str | None = None, **deployment: object) -> str:
    """The `ponder tco --plot` chart as an SVG string, for another report to embed (the compare
    HTML report takes it as `tco_svg`). One curve per model x GPU: throughput per user against
    throughput per GPU over a concurrency sweep; extra keywords go to `Deployment`."""
    from .arch import get_model
    from .hardware import get_gpu

    series: dict[str, list[Estimate]] = {}
    for m in models:
        for g in gpus:
            d = Deployment(model=get_model(m), gpu=get_gpu(g), n_gpus=n_gpus, precision=precision,
                           **deployment)  # type: ignore[arg-type]
            series[f"{m} {precision} {n_gpus}x{g}"] = sweep(d, prompt, output, users or DEFAULT_SWEEP)
    return svg_chart(series, title=title or f"ponder tco: {prompt} in / {output} out, tokens/s per user vs per GPU")
