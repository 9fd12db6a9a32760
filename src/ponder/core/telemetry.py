"""Per-run aggregation of what users pay for, computed from the event stream alone.

Any consumer (engine, CLI, compare harness) can feed events to `RunTelemetry.observe`
and read the same figures: model calls, tokens (reasoning separately), cost, TTFT and
decode tokens/s aggregates, tool calls and tool errors, per agent.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .events import ErrorEvent, ModelCallFinished, ToolResult
from .messages import Usage


@dataclass
class RunTelemetry:
    usage: Usage = field(default_factory=Usage)  # running totals, added in place
    cost_usd: float = 0.0
    model_calls: int = 0
    model_errors: int = 0
    damaged_streams: int = 0  # calls whose stream arrived damaged (repaired or cut), see docs/architecture.md
    tool_calls: int = 0
    tool_errors: int = 0
    ttfts: list[float] = field(default_factory=list)
    decode_tps: list[float] = field(default_factory=list)
    model_time_s: float = 0.0
    per_agent_calls: dict[str, int] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens

    def observe(self, ev: object) -> None:
        tp = type(ev)
        if tp is ModelCallFinished:
            self.model_calls += 1
            self.usage.add(ev.usage)  # type: ignore[attr-defined]
            self.cost_usd += ev.cost_usd  # type: ignore[attr-defined]
            self.model_time_s += ev.total_s  # type: ignore[attr-defined]
            if ev.ttft_s is not None:  # type: ignore[attr-defined]
                self.ttfts.append(ev.ttft_s)  # type: ignore[attr-defined]
            if ev.decode_tokens_per_s is not None:  # type: ignore[attr-defined]
                self.decode_tps.append(ev.decode_tokens_per_s)  # type: ignore[attr-defined]
            agent = ev.agent  # type: ignore[attr-defined]
            self.per_agent_calls[agent] = self.per_agent_calls.get(agent, 0) + 1
        elif tp is ToolResult:
            self.tool_calls += 1
            if not ev.ok:  # type: ignore[attr-defined]
                self.tool_errors += 1
        elif tp is ErrorEvent:
            self.model_errors += 1
            if ev.error_type == "StreamDamaged":  # type: ignore[attr-defined]
                self.damaged_streams += 1

    def summary(self) -> dict[str, float | int | None]:
        return {
            "model_calls": self.model_calls,
            "model_errors": self.model_errors,
            "tool_calls": self.tool_calls,
            "tool_errors": self.tool_errors,
            "prompt_tokens": self.usage.prompt_tokens,
            "cached_prompt_tokens": self.usage.cached_prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "ttft_first_s": self.ttfts[0] if self.ttfts else None,
            "ttft_median_s": statistics.median(self.ttfts) if self.ttfts else None,
            "decode_tps_median": statistics.median(self.decode_tps) if self.decode_tps else None,
            "model_time_s": self.model_time_s,
        }
