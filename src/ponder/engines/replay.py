"""Reading a run back from its journal: what `resume` continues from.

A journal is the run's event stream (as written by a recorder). From it alone this module
rebuilds, per agent (a *lane*, keyed by run id and agent id), the conversation exactly as
it was sent (`MessageAppended` events, reasoning byte-exact), how many steps completed,
the step that was open when the process stopped, and the tool results that had already
arrived; for the run, the telemetry so far (budgets go on counting from there) and the
active wall time of earlier attempts. Engines read it; nothing here touches a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.events import (
    Event,
    MessageAppended,
    ModelCallFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    ToolResult,
)
from ..core.messages import Message, ToolCall
from ..core.telemetry import RunTelemetry


class ReplayError(ValueError):
    """The journal cannot be resumed (no start event, a gap in a conversation)."""


@dataclass
class LaneReplay:
    """One agent's state in the journal."""

    agent: str
    messages: list[Message] = field(default_factory=list)  # the conversation from index `base` on
    base: int = -1  # index of the first message this run appended (earlier ones: the session's history)
    steps: int = 0  # completed steps (StepFinished)
    open_step: int | None = None  # a StepStarted with no StepFinished yet
    results: dict[str, ToolResult] = field(default_factory=dict)  # tool results by call id
    unappended_reply: Message | None = None  # a finished call of the open step not yet in the conversation
    step_has_reply: bool = False  # the open step's reply is in the conversation

    def pending_calls(self) -> list[ToolCall]:
        """The tool calls of the last assistant message that have no result message yet."""
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if m.role == "assistant":
                answered = {x.tool_call_id for x in self.messages[i + 1:] if x.role == "tool"}
                return [c for c in m.tool_calls if c.id not in answered]
            if m.role == "user":
                return []
        return []


@dataclass
class RunReplay:
    run_id: str
    task: str
    mode: str
    config: dict[str, Any]
    started: RunStarted
    events: list[Event]
    lanes: dict[str, LaneReplay]
    telemetry: RunTelemetry
    attempts: int  # how many starts the journal holds (the next attempt's number)
    wall_s: float  # active time of the earlier attempts
    last_content: str | None = None  # the main agent's latest text


def replay(events: Iterable[Event], *, main_agent: str | None = None) -> RunReplay:
    """Fold a journal into a `RunReplay`. Raises `ReplayError` when it cannot be resumed."""
    evs = list(events)
    first = next((e for e in evs if type(e) is RunStarted), None)
    if first is None:
        raise ReplayError("the journal has no run_started event: this run cannot be resumed")
    lanes: dict[str, LaneReplay] = {}
    telemetry = RunTelemetry()
    attempts = 0
    wall = 0.0
    seg_start: float | None = None
    last_ts = first.ts
    main = main_agent or first.agent

    def lane(agent: str) -> LaneReplay:
        ln = lanes.get(agent)
        if ln is None:
            ln = lanes[agent] = LaneReplay(agent)
        return ln

    for ev in evs:
        tp = type(ev)
        if tp is RunStarted:
            if seg_start is not None:
                wall += max(0.0, last_ts - seg_start)
            seg_start = ev.ts
            attempts += 1
        elif tp is MessageAppended:
            ln = lane(ev.agent)
            if ln.base < 0:
                ln.base = ev.index  # type: ignore[attr-defined]
            i = ev.index - ln.base  # type: ignore[attr-defined]
            if i != len(ln.messages):
                if 0 <= i < len(ln.messages):  # written twice (a resumed attempt re-appended it)
                    ln.messages[i] = ev.message  # type: ignore[attr-defined]
                    del ln.messages[i + 1:]
                else:
                    raise ReplayError(f"agent {ev.agent!r}: the journal misses messages before index {ev.index}; "
                                      "it cannot be resumed")
            else:
                ln.messages.append(ev.message)  # type: ignore[attr-defined]
            if ev.message.role == "assistant":  # type: ignore[attr-defined]
                ln.unappended_reply = None
                ln.step_has_reply = True
        elif tp is StepStarted:
            ln = lane(ev.agent)
            ln.open_step = ev.step  # type: ignore[attr-defined]
            ln.unappended_reply = None
            ln.step_has_reply = False
        elif tp is StepFinished:
            ln = lane(ev.agent)
            ln.steps = max(ln.steps, ev.step)  # type: ignore[attr-defined]
            ln.open_step = None
        elif tp is ModelCallFinished:
            ln = lane(ev.agent)
            if ln.open_step is not None and not ln.step_has_reply:  # (not a self-check call during tools)
                ln.unappended_reply = ev.message  # type: ignore[attr-defined]
        elif tp is ToolResult:
            lane(ev.agent).results[ev.call_id] = ev  # type: ignore[attr-defined,assignment]
        telemetry.observe(ev)
        last_ts = ev.ts
    if seg_start is not None:
        wall += max(0.0, last_ts - seg_start)
    last_content = None
    main_lane = lanes.get(main)
    if main_lane is not None:
        for m in reversed(main_lane.messages):
            if m.role == "user":
                break
            if m.role == "assistant" and m.content:
                last_content = m.content
                break
    return RunReplay(run_id=first.run_id, task=first.task, mode=first.mode, config=dict(first.config), started=first,
                     events=evs, lanes=lanes, telemetry=telemetry, attempts=attempts, wall_s=wall,
                     last_content=last_content)
