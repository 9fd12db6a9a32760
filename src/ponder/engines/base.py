"""What every engine returns, and the budgets they share.

Engines are async generators of core events (`stream`) with a convenience `run` that
drains the stream into a `RunResult`. A budget hit, a cancellation or a failure ends
the run cleanly with `status` and `reason` set and whatever answer existed so far.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..core.events import Event
from ..core.messages import Message, Usage


class Budgets(BaseModel):
    max_steps: int = 30
    max_tool_calls: int | None = None
    max_tokens: int | None = None  # prompt + completion over the whole run
    max_cost_usd: float | None = None
    wall_timeout_s: float | None = None


class RunMetrics(BaseModel):
    steps: int = 0
    critical_steps: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    model_calls: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    ttft_first_s: float | None = None
    ttft_median_s: float | None = None
    decode_tps_median: float | None = None
    wall_s: float = 0.0
    # interleaved
    violations: int = 0  # steps that acted without reasoning even after a re-ask
    reasks: int = 0
    verifications: int = 0
    rejections: int = 0
    fixes: int = 0
    # swarm
    agents: int = 0
    parallelism: float | None = None
    serial_collapse: bool | None = None
    spurious_agents: int = 0
    rewards: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class RunResult(BaseModel):
    answer: str | None
    status: Literal["ok", "budget", "cancelled", "error"] = "ok"
    reason: str | None = None
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    events: list[Event] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
