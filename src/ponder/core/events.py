"""The one typed event stream.

Models, tools and engines all yield these; the CLI, the run store, the reports and the
compare harness only ever read them. Every event says which agent produced it
(`agent`, "main" for a single agent, the sub-agent's id inside a swarm) and when (`ts`,
seconds since the epoch), so streams from 100 parallel agents can be merged into one
and still be told apart.

Events are slotted dataclasses, not pydantic models: a 100-agent swarm makes thousands per
second, and a dataclass is built in a third of the time and is one object for the garbage
collector instead of three. They are validated where they cross a boundary: `event_from_json`
(the run store, the SSE server's clients) checks them against the same types, and
`event_to_json` writes them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from .messages import Message, ToolCall, Usage
from .metrics import RunMetrics


@dataclass(slots=True, kw_only=True)
class _Event:
    agent: str = "main"
    ts: float = field(default_factory=time.time)


# ---- model call -----------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class ReasoningDelta(_Event):
    type: Literal["reasoning_delta"] = "reasoning_delta"
    text: str


@dataclass(slots=True, kw_only=True)
class ContentDelta(_Event):
    type: Literal["content_delta"] = "content_delta"
    text: str


@dataclass(slots=True, kw_only=True)
class ToolCallEvent(_Event):
    """A tool call, complete and with parsed arguments (never a fragment)."""

    type: Literal["tool_call"] = "tool_call"
    call: ToolCall


@dataclass(slots=True, kw_only=True)
class ModelCallFinished(_Event):
    """Closes one model call: the assembled assistant message and all its telemetry (usage,
    cost, TTFT, total time, decode tokens/s). There is no separate usage or timing event:
    one event per call carries it all, which keeps a 100-agent stream lean."""

    type: Literal["model_call_finished"] = "model_call_finished"
    model: str
    message: Message
    usage: Usage
    cost_usd: float = 0.0
    ttft_s: float | None = None
    total_s: float = 0.0
    decode_tokens_per_s: float | None = None
    finish_reason: str | None = None


@dataclass(slots=True, kw_only=True)
class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    error_type: str
    message: str
    retryable: bool = False
    partial: Message | None = None  # what had arrived before the failure


# ---- tools ----------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class ToolStarted(_Event):
    type: Literal["tool_started"] = "tool_started"
    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ToolResult(_Event):
    type: Literal["tool_result"] = "tool_result"
    call_id: str
    name: str
    ok: bool
    content: str
    error: str | None = None
    duration_s: float = 0.0


@dataclass(slots=True, kw_only=True)
class ToolRecovered(_Event):
    """On resume: a tool call was in flight when the process stopped. `action` says what the
    journal chose by the tool's declared policy: `rerun` (idempotent) or `unknown` (the model
    is told the outcome is unknown), or `journal` (its effect was found in the journal, e.g. the
    sub-agents a swarm's `plan` had started)."""

    type: Literal["tool_recovered"] = "tool_recovered"
    call_id: str
    name: str
    action: Literal["rerun", "unknown", "journal"]


# ---- runs -----------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class RunStarted(_Event):
    """The first event of every run (and of every resumed attempt): the run's id, so a
    client can fetch the run, and the configuration that rebuilds its engine on resume."""

    type: Literal["run_started"] = "run_started"
    run_id: str
    mode: str
    task: str
    model: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0  # 0: the first start; n: the n-th resume


@dataclass(slots=True, kw_only=True)
class MessageAppended(_Event):
    """`agent`'s conversation gained `message` at position `index`. Conversations are only
    ever appended to, so these events rebuild every agent's history byte-exact (reasoning
    included) from the journal: what a resumed run sends its provider is what it sent before."""

    type: Literal["message_appended"] = "message_appended"
    index: int
    message: Message


# ---- engines --------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    step: int


@dataclass(slots=True, kw_only=True)
class StepFinished(_Event):
    type: Literal["step_finished"] = "step_finished"
    step: int
    tool_calls: int = 0
    had_reasoning: bool = True
    note: str | None = None


@dataclass(slots=True, kw_only=True)
class VerificationEvent(_Event):
    """Verify-before-execute: code checked before the python tool ran it."""

    type: Literal["verification"] = "verification"
    call_id: str
    ok: bool
    reason: str | None = None
    stage: Literal["policy", "self_check"] = "policy"


@dataclass(slots=True, kw_only=True)
class AgentSpawned(_Event):
    type: Literal["agent_spawned"] = "agent_spawned"
    agent_id: str
    parent: str | None = None
    name: str
    goal: str
    model: str | None = None
    depends_on: list[str] = field(default_factory=list)
    task_id: str | None = None
    instructions: str | None = None
    tools: list[str] | None = None
    launched_at: int | None = None  # the orchestrator step that started it


@dataclass(slots=True, kw_only=True)
class ResultsDelivered(_Event):
    """The orchestrator's step `step` received these sub-agent results (critical steps are
    computed from when results were handed over, so the journal keeps it)."""

    type: Literal["results_delivered"] = "results_delivered"
    task_ids: list[str]
    step: int


@dataclass(slots=True, kw_only=True)
class AgentFinished(_Event):
    type: Literal["agent_finished"] = "agent_finished"
    agent_id: str
    status: Literal["ok", "error", "cancelled", "budget"]
    answer: str | None = None
    steps: int = 0
    error: str | None = None


@dataclass(slots=True, kw_only=True)
class MemoryWrite(_Event):
    type: Literal["memory_write"] = "memory_write"
    key: str
    value: str
    step: int | None = None


@dataclass(slots=True, kw_only=True)
class BudgetHit(_Event):
    type: Literal["budget_hit"] = "budget_hit"
    budget: str
    limit: float
    value: float


@dataclass(slots=True, kw_only=True)
class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: Literal["ok", "budget", "cancelled", "error"]
    answer: str | None = None
    reason: str | None = None
    metrics: RunMetrics = field(default_factory=RunMetrics)
    run_id: str | None = None


Event = Annotated[
    ReasoningDelta
    | ContentDelta
    | ToolCallEvent
    | ModelCallFinished
    | ErrorEvent
    | ToolStarted
    | ToolResult
    | ToolRecovered
    | RunStarted
    | MessageAppended
    | StepStarted
    | StepFinished
    | VerificationEvent
    | AgentSpawned
    | ResultsDelivered
    | AgentFinished
    | MemoryWrite
    | BudgetHit
    | RunFinished,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_TO_JSON: dict[type, Any] = {}  # per event type: its pydantic-core serializer's to_json (no Python wrapper per call)


def event_to_json(ev: _Event) -> str:
    """One event as JSON (fields that are None left out): what the store, the CLI's --json
    output and the SSE server write."""
    to_json = _TO_JSON.get(type(ev))
    if to_json is None:
        to_json = _TO_JSON[type(ev)] = TypeAdapter(type(ev)).serializer.to_json
    return to_json(ev, exclude_none=True).decode()


def event_from_json(data: str | bytes) -> Event:
    """Parse and validate one event written by `event_to_json`."""
    return EVENT_ADAPTER.validate_json(data)
