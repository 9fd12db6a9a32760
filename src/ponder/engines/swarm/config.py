"""The swarm's options as one frozen object (what `Swarm(...)` and `build_engine` take)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..base import Budgets

ORCH = "orchestrator"  # the orchestrator's agent id in events
DEFAULT_MEMORY_CHARS = 4_000
EXECUTORS = ("local", "ray")


def _orch_budgets() -> Budgets:
    return Budgets(max_steps=15, max_tool_calls=1_500)


def _sub_budgets() -> Budgets:
    return Budgets(max_steps=100)


@dataclass(frozen=True, slots=True, kw_only=True)
class SwarmConfig:
    """Everything a swarm run is configured by, apart from its models and tools.

    Budgets: `budgets.max_steps` bounds the orchestrator (default 15), `sub_budgets.max_steps`
    each sub-agent (default 100); `budgets.max_tool_calls` (default 1,500, counted over every
    sub-agent), `max_tokens`, `max_cost_usd` and `wall_timeout_s` are swarm-wide."""

    max_parallel: int = 100  # sub-agents running at once (Kimi K2.5's setting)
    max_agents: int = 100  # sub-agent tasks in one run
    min_subtasks: int = 1  # the guided plan's minimum fan-out
    budgets: Budgets = field(default_factory=_orch_budgets)
    sub_budgets: Budgets = field(default_factory=_sub_budgets)
    thinking: str = "auto"  # the sub-agents' thinking mode
    orchestrator_thinking: str | None = None  # on/off for the orchestrator (default: as `thinking`)
    guided: bool | None = None  # one forced tool per orchestrator step (None: for constrained-decoding models)
    preserve_reasoning: bool = True
    verify_code: bool = True
    self_check: bool = False
    first_tool_choice: str | None = None  # the sub-agents' first step (e.g. "required": look before answering)
    memory_chars: int = DEFAULT_MEMORY_CHARS  # shared memory shown in one context
    result_chars: int = 1_500  # one sub-agent result handed to the orchestrator
    wait_chars: int = 40_000  # one `wait` result
    sub_timeout_s: float | None = None  # wall clock of one sub-agent
    orch_max_tokens: int | None = None
    system_prompt: str | None = None  # the orchestrator's
    reward_lambdas: tuple[float, float] = (0.1, 0.1)
    # where sub-agents run: "local" (tasks on this process's event loop) or "ray" (async actors
    # spread over a Ray cluster; the driver keeps the scheduler, shared memory and journal)
    executor: str = "local"
    ray_address: str | None = None  # "auto", "HOST:PORT", "ray://HOST:PORT"; None: ray.init()'s default
    ray_hosts: int | None = None  # Ray actors holding the sub-agents (default: one per CPU of the cluster)

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1 (got {self.max_parallel}); 100 is the Kimi K2.5 setting")
        if self.max_agents < 1:
            raise ValueError(f"max_agents must be at least 1 (got {self.max_agents})")
        for name in ("thinking",):
            if getattr(self, name) not in ("on", "off", "auto"):
                raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {getattr(self, name)!r}")
        if self.orchestrator_thinking not in (None, "on", "off", "auto"):
            raise ValueError(f"orchestrator_thinking must be 'on', 'off' or 'auto', not {self.orchestrator_thinking!r}")
        if self.sub_timeout_s is not None and self.sub_timeout_s <= 0:
            raise ValueError(f"sub_timeout_s must be positive (got {self.sub_timeout_s})")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {self.executor!r}")
        if self.ray_hosts is not None and self.ray_hosts < 1:
            raise ValueError(f"ray_hosts must be at least 1 (got {self.ray_hosts})")
        object.__setattr__(self, "min_subtasks", max(1, min(self.min_subtasks, self.max_agents)))

    @property
    def orch_thinking(self) -> str | None:
        ot = self.orchestrator_thinking or self.thinking
        return ot if ot in ("on", "off") else None

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.model_dump(exclude_none=True) if isinstance(v, Budgets) else (list(v) if isinstance(v, tuple) else v)
        return out
