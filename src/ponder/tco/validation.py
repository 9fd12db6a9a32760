"""The model against published measurements (`data/validation.json`).

A row passes when both decode throughput per GPU and per-user tokens/s are within
TOLERANCE of the measurement, or when it carries an explicit `known_error` explaining the
miss. The same efficiencies serve every row; nothing here is tuned per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .arch import get_model
from .hardware import get_gpu
from .perf import Deployment, Estimate, Workload, estimate

TOLERANCE = 0.25


@dataclass
class ValidationRow:
    id: str
    conditions: dict[str, Any]
    measured_gpu_tok_s: float
    measured_user_tok_s: float
    source: str
    known_error: str | None
    predicted: Estimate

    @property
    def gpu_error(self) -> float:
        return self.predicted.gpu_tok_s / self.measured_gpu_tok_s - 1

    @property
    def user_error(self) -> float:
        return self.predicted.user_tok_s / self.measured_user_tok_s - 1

    @property
    def within(self) -> bool:
        return abs(self.gpu_error) <= TOLERANCE and abs(self.user_error) <= TOLERANCE

    @property
    def status(self) -> str:
        if self.within:
            return "ok"
        return "known" if self.known_error else "FAIL"


_DEPLOY_KEYS = ("n_gpus", "tp", "ep", "dp", "precision", "disaggregated", "overlap_comm",
                "speculative_tokens", "acceptance", "kv_dtype")


def load_rows() -> list[dict[str, Any]]:
    raw = json.loads((resources.files("ponder.tco") / "data" / "validation.json").read_text())
    return list(raw["rows"])


def predict_row(row: dict[str, Any]) -> Estimate:
    kw = {k: row[k] for k in _DEPLOY_KEYS if k in row}
    d = Deployment(model=get_model(row["model"]), gpu=get_gpu(row["gpu"]), **kw)
    return estimate(d, Workload(row["prompt"], row["output"], row["users"]))


def run_validation() -> list[ValidationRow]:
    out = []
    for r in load_rows():
        cond = {k: r[k] for k in ("model", "gpu", "prompt", "output", "users", *_DEPLOY_KEYS) if k in r}
        out.append(ValidationRow(
            id=r["id"], conditions=cond, measured_gpu_tok_s=r["measured_gpu_tok_s"],
            measured_user_tok_s=r["measured_user_tok_s"], source=r["source"],
            known_error=r.get("known_error"), predicted=predict_row(r),
        ))
    return out


def markdown_table(rows: list[ValidationRow]) -> str:
    """The table docs/tco.md carries (regenerate with `python -m ponder.tco.validation`)."""
    lines = [
        "| row | conditions | tok/s/GPU meas. | pred. | err | tok/s/user meas. | pred. | err | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.conditions
        cond = (f"{c['model']} {c['n_gpus']}x{c['gpu']} tp{c.get('tp')}/ep{c.get('ep')}/dp{c.get('dp')} "
                f"{c['precision']} {c['prompt']}/{c['output']} c={c['users']}"
                + (" disagg" if c.get("disaggregated") else ""))
        lines.append(
            f"| {r.id} | {cond} | {r.measured_gpu_tok_s:g} | {r.predicted.gpu_tok_s:.1f} | {r.gpu_error:+.0%} "
            f"| {r.measured_user_tok_s:g} | {r.predicted.user_tok_s:.1f} | {r.user_error:+.0%} | {r.status} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table(run_validation()))
