"""The model against published measurements (`data/validation.json`), and a leave-one-out
check of the constants that were fitted to some of those measurements.

A row passes when its figures (decode tokens/s per GPU and per user; prefill tokens/s per GPU
for prefill-pool rows) are within TOLERANCE of the measurement, or when it carries an explicit
`known_error` explaining the miss. The same efficiencies serve every row; nothing is tuned per row.

Two constants were chosen with rows of this table in view (`FITTED`). For each, leave-one-out
refits the constant on its fitting rows minus one and predicts the row left out; the report
prints the in-sample error (shipped constant) beside the held-out error, so a constant that only
works on the rows it was fitted to shows up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from .arch import get_model
from .hardware import get_gpu
from .perf import DEFAULT_CONSTANTS, Constants, Deployment, Estimate, Workload, _prefill_rate, estimate

TOLERANCE = 0.25


@dataclass
class ValidationRow:
    id: str
    kind: str
    tags: list[str]
    conditions: dict[str, Any]
    measured_gpu_tok_s: float
    measured_user_tok_s: float | None
    source: str
    known_error: str | None
    predicted_gpu_tok_s: float
    predicted_user_tok_s: float | None
    predicted: Estimate | None  # None for prefill rows

    @property
    def gpu_error(self) -> float:
        return self.predicted_gpu_tok_s / self.measured_gpu_tok_s - 1

    @property
    def user_error(self) -> float | None:
        if self.measured_user_tok_s is None or self.predicted_user_tok_s is None:
            return None
        return self.predicted_user_tok_s / self.measured_user_tok_s - 1

    @property
    def within(self) -> bool:
        ue = self.user_error
        return abs(self.gpu_error) <= TOLERANCE and (ue is None or abs(ue) <= TOLERANCE)

    @property
    def status(self) -> str:
        if self.within:
            return "ok"
        return "known" if self.known_error else "FAIL"


_DEPLOY_KEYS = ("n_gpus", "tp", "ep", "dp", "precision", "attn_precision", "moe_precision", "disaggregated",
                "overlap_comm", "speculative_tokens", "acceptance", "kv_dtype")


def load_rows() -> list[dict[str, Any]]:
    raw = json.loads((resources.files("ponder.tco") / "data" / "validation.json").read_text())
    return list(raw["rows"])


def _deployment(row: dict[str, Any]) -> Deployment:
    kw = {k: row[k] for k in _DEPLOY_KEYS if k in row}
    return Deployment(model=get_model(row["model"]), gpu=get_gpu(row["gpu"]), **kw)


def predict_figures(row: dict[str, Any], k: Constants = DEFAULT_CONSTANTS) -> tuple[float, float | None, Estimate | None]:
    """(tok/s/GPU, tok/s/user or None, the estimate for decode rows)."""
    d = _deployment(row)
    if row.get("kind", "decode") == "prefill":
        return _prefill_rate(d, row["prompt"], k) / d.n_gpus, None, None
    e = estimate(d, Workload(row["prompt"], row["output"], row["users"]), k=k)
    if not e.fits:
        raise ValueError(f"validation row {row['id']} does not fit in memory: {e.fit_note}")
    assert e.gpu_tok_s is not None
    return e.gpu_tok_s, e.user_tok_s, e


def run_validation(k: Constants = DEFAULT_CONSTANTS) -> list[ValidationRow]:
    out = []
    for r in load_rows():
        cond = {key: r[key] for key in ("model", "gpu", "prompt", "output", "users", *_DEPLOY_KEYS) if key in r}
        g, u, e = predict_figures(r, k)
        out.append(ValidationRow(
            id=r["id"], kind=r.get("kind", "decode"), tags=r.get("tags", []), conditions=cond,
            measured_gpu_tok_s=r["measured_gpu_tok_s"], measured_user_tok_s=r.get("measured_user_tok_s"),
            source=r["source"], known_error=r.get("known_error"), predicted_gpu_tok_s=g, predicted_user_tok_s=u,
            predicted=e,
        ))
    return out


# ---- fitted constants and leave-one-out ------------------------------------------------------

@dataclass(frozen=True)
class Fitted:
    name: str  # field of Constants
    rows: tuple[str, ...]  # the rows it was chosen with (those without a known error)
    bounds: tuple[float, float]
    why: str


FITTED = (
    Fitted("overlap_eff", ("k2-sglang-h200-decode-ep96", "dsv3-sglang-h100-decode-ep72", "dsv3-profile-h800-decode-ep128",
                           "dsv3-deepseek-prod-h800-decode-ep144", "dsv3-sglang-h100-prefill-ep32",
                           "k2-sglang-h200-prefill-ep32", "dsv3-profile-h800-prefill-ep32"),
           (0.0, 1.0), "two-batch overlap: fraction of the shorter of compute and communication hidden"),
    Fitted("kernel_overhead_s", ("k25-sglang-h200-tp8-c1", "glm45-vllm-recipe-c16"),
           (1e-6, 20e-6), "fixed cost per dependent kernel; dominates batch-1 decode"),
)


def _loss(rows: list[dict[str, Any]], k: Constants) -> float:
    """Mean squared log error over the rows' figures."""
    errs: list[float] = []
    for r in rows:
        g, u, _ = predict_figures(r, k)
        errs.append(math.log(g / r["measured_gpu_tok_s"]) ** 2)
        if u is not None and r.get("measured_user_tok_s"):
            errs.append(math.log(u / r["measured_user_tok_s"]) ** 2)
    return sum(errs) / len(errs)


def fit_constant(f: Fitted, rows: list[dict[str, Any]], k: Constants = DEFAULT_CONSTANTS) -> float:
    """Golden-section search of one constant over its bounds (the losses here are unimodal)."""
    lo, hi = f.bounds
    phi = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - phi * (b - a), a + phi * (b - a)
    fc, fd = _loss(rows, replace(k, **{f.name: c})), _loss(rows, replace(k, **{f.name: d}))
    for _ in range(30):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - phi * (b - a)
            fc = _loss(rows, replace(k, **{f.name: c}))
        else:
            a, c, fc = c, d, fd
            d = a + phi * (b - a)
            fd = _loss(rows, replace(k, **{f.name: d}))
    return (a + b) / 2


@dataclass
class LooRow:
    constant: str
    row: str
    refit_value: float  # fitted on the other rows
    in_sample_gpu: float  # error with the shipped constant
    in_sample_user: float | None
    held_out_gpu: float  # error with the constant refitted without this row
    held_out_user: float | None


def leave_one_out(k: Constants = DEFAULT_CONSTANTS) -> tuple[list[LooRow], dict[str, float]]:
    """Per fitted constant and fitting row: in-sample vs held-out errors; plus each constant's
    value refitted on all its rows (to compare with the shipped value)."""
    by_id = {r["id"]: r for r in load_rows()}
    out: list[LooRow] = []
    full: dict[str, float] = {}
    for f in FITTED:
        rows = [by_id[i] for i in f.rows]
        full[f.name] = fit_constant(f, rows, k)
        for r in rows:
            v = fit_constant(f, [x for x in rows if x is not r], k)
            g0, u0, _ = predict_figures(r, k)
            g1, u1, _ = predict_figures(r, replace(k, **{f.name: v}))
            mu = r.get("measured_user_tok_s")
            out.append(LooRow(
                f.name, r["id"], v, g0 / r["measured_gpu_tok_s"] - 1, (u0 / mu - 1) if (u0 and mu) else None,
                g1 / r["measured_gpu_tok_s"] - 1, (u1 / mu - 1) if (u1 and mu) else None,
            ))
    return out, full


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.0%}"


def markdown_table(rows: list[ValidationRow]) -> str:
    """The table docs/tco.md carries (regenerate with `ponder tco --validate`)."""
    lines = [
        "| row | what it tests | conditions | tok/s/GPU meas. | pred. | err | tok/s/user meas. | pred. | err | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.conditions
        prec = c["precision"] + (f" (attn {c['attn_precision']}, moe {c['moe_precision']})"
                                 if "attn_precision" in c or "moe_precision" in c else "")
        cond = (f"{c['model']} {c['n_gpus']}x{c['gpu']} tp{c.get('tp')}/ep{c.get('ep')}/dp{c.get('dp')} "
                f"{prec} kv {c.get('kv_dtype', 'bf16')} " +
                (f"prefill {c['prompt']} tok" if r.kind == "prefill" else f"{c['prompt']}/{c['output']} c={c['users']}")
                + (" disagg" if c.get("disaggregated") else "") + (" overlap" if c.get("overlap_comm") else "")
                + (f" spec{c['speculative_tokens']}@{c['acceptance']}" if c.get("speculative_tokens") else ""))
        mu = "—" if r.measured_user_tok_s is None else f"{r.measured_user_tok_s:g}"
        pu = "—" if r.predicted_user_tok_s is None else f"{r.predicted_user_tok_s:.1f}"
        lines.append(
            f"| {r.id} | {', '.join(r.tags) or r.kind} | {cond} | {r.measured_gpu_tok_s:g} | {r.predicted_gpu_tok_s:.1f} "
            f"| {r.gpu_error:+.0%} | {mu} | {pu} | {_pct(r.user_error)} | {r.status} |"
        )
    return "\n".join(lines)


def loo_table(loo: list[LooRow], full: dict[str, float], k: Constants = DEFAULT_CONSTANTS) -> str:
    lines = [
        "| constant | shipped | refit on all its rows | held-out row | refit without it | in-sample err (GPU / user) | held-out err (GPU / user) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in loo:
        shipped = getattr(k, r.constant)
        lines.append(f"| {r.constant} | {shipped:g} | {full[r.constant]:.3g} | {r.row} | {r.refit_value:.3g} "
                     f"| {_pct(r.in_sample_gpu)} / {_pct(r.in_sample_user)} | {_pct(r.held_out_gpu)} / {_pct(r.held_out_user)} |")
    return "\n".join(lines)


def report() -> str:
    rows = run_validation()
    ok = sum(r.within for r in rows)
    loo, full = leave_one_out()
    return (f"{markdown_table(rows)}\n\n{ok} of {len(rows)} rows within ±{TOLERANCE:.0%}; "
            f"{sum(r.status == 'known' for r in rows)} outside with a written reason (docs/tco.md, data/validation.json); "
            f"{sum(r.status == 'FAIL' for r in rows)} unexplained.\n\nLeave-one-out of the fitted constants:\n\n"
            f"{loo_table(loo, full)}\n")


if __name__ == "__main__":  # pragma: no cover
    print(report())
