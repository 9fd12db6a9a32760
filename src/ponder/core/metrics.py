"""The typed figures a run ends with (`RunFinished.metrics`).

They live in `core` because the closing event carries them: every consumer (the CLI's
metrics line, the compare harness, the run store, the viewer) reads these fields by name,
never by string keys into a dict. Engine-specific detail that no consumer needs typed
(per-task records, stage breakdowns) stays in `extra`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .messages import Usage


class RunMetrics(BaseModel):
    # every engine
    steps: int = 0  # model-call steps over all agents
    critical_steps: int = 0  # the longest chain of steps that had to run one after another
    tool_calls: int = 0
    tool_errors: int = 0
    model_calls: int = 0
    model_errors: int = 0
    damaged_streams: int = 0  # model calls whose stream arrived damaged (see docs/architecture.md)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    ttft_first_s: float | None = None
    ttft_median_s: float | None = None
    decode_tps_median: float | None = None
    wall_s: float = 0.0  # active time, summed over the run's attempts when it was resumed
    attempts: int = 1  # 1 + how many times the run was resumed from its journal
    # think-before-act (the Interleaved loop; sub-agents' counts are summed in a swarm)
    violations: int = 0  # steps that acted without reasoning even after a re-ask
    reasks: int = 0
    verifications: int = 0
    rejections: int = 0
    fixes: int = 0
    repeat_guards: int = 0
    self_check_calls: int = 0
    # swarm
    agents: int = 0
    orchestrator_steps: int = 0
    peak_concurrency: int = 0
    parallelism: float | None = None
    serial_collapse: bool | None = None
    spurious_agents: int = 0
    rewards: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
