"""The engine contract: what an engine implements, what every run returns, and the budgets.

An engine implements one thing, *how to drive a turn*: `drive(task, ctx)` emits events
through `ctx.emit` and returns an `Outcome`; `conclude(ctx, outcome)` turns that into the
run's typed metrics. Everything around it (the run id and the first event, the wall clock,
the caller's cancel, run-wide token and cost limits, the single `RunFinished`, `stream()`
and `run()`) is written once, in `engines/runtime.py`, and is the same for every engine.
A budget hit, a cancellation or a failure ends the run cleanly with `status` and `reason`
set and whatever answer existed so far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ..core.events import Event
from ..core.messages import Message
from ..core.metrics import RunMetrics

if TYPE_CHECKING:
    from .runtime import RunContext

Status = Literal["ok", "budget", "cancelled", "error"]

__all__ = ["Budgets", "Engine", "Outcome", "RunMetrics", "RunResult", "Status", "check_answer", "placeholder_reason"]


class Budgets(BaseModel):
    """Limits of a run. `max_steps` and `max_tool_calls` bound one agent (in a swarm: the
    orchestrator, and each sub-agent through its own `sub_budgets`); tokens, cost and wall
    clock bound the whole run."""

    max_steps: int = Field(default=30, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)  # prompt + completion over the whole run
    max_cost_usd: float | None = Field(default=None, gt=0)
    wall_timeout_s: float | None = Field(default=None, gt=0)


@dataclass(slots=True)
class Outcome:
    """How a turn ended, before metrics: what `drive` returns."""

    status: Status
    answer: str | None = None
    reason: str | None = None


# replies that say something about the work rather than answer the task (seen from small
# models: the swarm example once "answered" with the wait tool's own "all tasks are done.");
# words that can be real answers ("yes", "no", "done", "42") are not here
_PLACEHOLDER = re.compile(r"^\W*(?:all tasks are done|all tasks done|no answer|final answer|the answer|answer|"
                          r"results?|the results?|plan|finish|task|tasks)\W*$", re.I)


def placeholder_reason(answer: str | None) -> str | None:
    """Why `answer` is not an answer (blank, or only words about the work such as "all tasks
    are done" or "final answer"), else None: a run ending with one is not `ok`."""
    if answer is None or not answer.strip():
        return "the model ended without an answer"
    if _PLACEHOLDER.match(answer.strip()):
        return f"the answer is only a placeholder ({answer.strip()[:40]!r}), not an answer to the task"
    return None


def check_answer(outcome: Outcome) -> Outcome:
    """An `ok` outcome whose answer is a placeholder becomes an `error` saying so."""
    if outcome.status == "ok":
        why = placeholder_reason(outcome.answer)
        if why is not None:
            return Outcome("error", outcome.answer, why)
    return outcome


@runtime_checkable
class Engine(Protocol):
    """One way to drive a turn. `Interleaved` and `Swarm` implement it; `build_engine`
    makes either from a config; the runtime runs any of them."""

    mode: ClassVar[str]
    budgets: Budgets

    @property
    def main_agent(self) -> str:
        """The agent id of the run's own events (`main`, or `orchestrator` in a swarm)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What `RunStarted` records: enough to rebuild this engine with `build_engine`."""
        ...

    async def drive(self, task: str, ctx: RunContext) -> Outcome: ...

    async def conclude(self, ctx: RunContext, outcome: Outcome) -> tuple[Outcome, RunMetrics]:
        """After `drive` (or after a stop the runtime made): the final outcome and metrics."""
        ...

    def history(self) -> list[Message]:
        """The main agent's conversation after the run (for `RunResult.messages`)."""
        ...


class RunResult(BaseModel):
    answer: str | None
    status: Status = "ok"
    reason: str | None = None
    run_id: str | None = None
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    events: list[Event] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
