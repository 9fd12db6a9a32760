"""The `proxy` engine: one model call on a conversation the client owns.

What `POST /v1/chat/completions` runs for a plain model name (`glm-4.7`) and for an
`interleaved/...` model whose request carries the client's own tools: ponder does not loop
or run tools, it makes the one call the client asked for, in the model's wire dialect, with
the reasoning of earlier turns put back (see `conversation.py`), and hands the reply back.
It is an engine so that the call goes through `ponder.runs` like every run: journaled
(run row, the reply with its reasoning, usage, cost), cancelled by the client's disconnect,
counted by the same telemetry.

It registers itself as the engine `proxy` through the builder's public registry; it lives
here, not in `engines/`, because only the server builds it (the conversation comes from an
HTTP request, not a task). A proxy run cannot be resumed: the client holds the conversation.

The first-chunk gate: a streamed reply often arrives in one read (short answers, fast
servers), and the run would then go on to its end, the journal's closing write included,
before the client's first chunk is sent. With `gate` set, the call waits after its first
visible event until the server has sent that chunk (at most `GATE_MAX_S`), so the
bookkeeping comes after the client's first token, not before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from ..core.events import ContentDelta, ErrorEvent, ModelCallFinished, ReasoningDelta, ToolCallEvent
from ..core.messages import Message
from ..core.metrics import RunMetrics
from ..engines.base import Budgets, Outcome
from ..engines.build import ENGINES, EngineConfig, ModelFactory, register_engine
from ..engines.runtime import RunContext, Runnable
from ..models.base import ChatModel, ChatRequest
from ..tools.base import Tool

MODE = "proxy"
_VISIBLE = (ReasoningDelta, ContentDelta, ToolCallEvent)
GATE_MAX_S = 1.0


class Proxy(Runnable):
    """One call of `model` on `request` (set by the server before the run)."""

    mode: ClassVar[str] = MODE

    def __init__(self, model: ChatModel, *, thinking: str = "auto", preserve_reasoning: bool = True,
                 budgets: Budgets | None = None):
        self.model = model
        self.thinking = thinking
        self.preserve_reasoning = preserve_reasoning
        self.budgets = budgets or Budgets(max_steps=1)
        self.request: ChatRequest | None = None
        self.gate: asyncio.Event | None = None  # set by the server once the first chunk is out
        self.reply: Message | None = None
        self.settings: dict[str, Any] | None = None

    @property
    def main_agent(self) -> str:
        return "main"

    def describe(self) -> dict[str, Any]:
        return self.settings if self.settings is not None else {"mode": MODE, "model": self.model.name}

    async def drive(self, task: str, ctx: RunContext) -> Outcome:
        request = self.request
        if request is None:
            raise ValueError("the proxy engine runs a client's conversation: set engine.request before the run")
        emit = ctx.emit
        final: ModelCallFinished | None = None
        gate = self.gate
        async for ev in self.model.stream(request, agent="main"):
            emit(ev)
            tp = type(ev)
            if gate is not None and tp in _VISIBLE:
                if not gate.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(GATE_MAX_S):
                            await gate.wait()
                gate = None
            if tp is ModelCallFinished:
                final = ev  # type: ignore[assignment]
            elif tp is ErrorEvent:
                partial = ev.partial  # type: ignore[union-attr]
                return Outcome("error", partial.content if partial is not None else None,
                               f"model error ({ev.error_type}): {ev.message}")  # type: ignore[union-attr]
        if final is None:
            return Outcome("error", None, f"model {self.model.name!r} ended its stream without a result")
        self.reply = final.message
        if final.message.content:
            ctx.last_content = final.message.content
        return Outcome("ok", final.message.content or "", None)

    async def conclude(self, ctx: RunContext, outcome: Outcome) -> tuple[Outcome, RunMetrics]:
        return outcome, ctx.base_metrics(steps=1, critical_steps=1)

    def history(self) -> list[Message]:
        msgs = list(self.request.messages) if self.request is not None else []
        return msgs + [self.reply] if self.reply is not None else msgs


def _build(cfg: EngineConfig, model: ChatModel, make: ModelFactory, tools: list[Tool]) -> Proxy:
    return Proxy(model, thinking=cfg.thinking, preserve_reasoning=cfg.preserve_reasoning, budgets=cfg.run_budgets(1))


if MODE not in ENGINES:
    register_engine(MODE, _build)
