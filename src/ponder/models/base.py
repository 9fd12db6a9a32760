"""The model interface every backend implements, and the assembler they share.

A backend's `stream()` yields the core events of one call and always ends with exactly
one of `ModelCallFinished` (success) or `ErrorEvent` (failure, with what had arrived
kept in `partial`). Transport failures never escape as exceptions from `stream()`;
configuration errors (unknown model, missing key) are raised before the first event.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainValidator

from ..core.errors import ModelError
from ..core.events import (
    ContentDelta,
    ErrorEvent,
    Event,
    ModelCallFinished,
    ReasoningDelta,
    ToolCallEvent,
)
from ..core.messages import Message, Reasoning, ToolCall, Usage
from .catalog import ModelSpec
from .profiles import Capabilities

Thinking = Literal["on", "off"]


def _tool_list(v: Any) -> list[dict[str, Any]]:
    """Check the shape, keep the very same list object."""
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise ValueError("tools must be a list of OpenAI function-tool schemas (dicts), e.g. Toolbox.schemas()")
    return v


def _message_list(v: Any) -> list[Message]:
    if type(v) is not list:
        if isinstance(v, tuple | list):
            v = list(v)
        else:
            raise ValueError("messages must be a list of ponder Message objects")
    for m in v:
        if type(m) is not Message:
            if isinstance(m, Message):
                continue
            if isinstance(m, dict):  # e.g. from JSON: validate it into a Message
                return [x if isinstance(x, Message) else Message.model_validate(x) for x in v]
            raise ValueError(f"messages must be ponder Message objects, got {type(m).__name__}")
    return v


class ChatRequest(BaseModel):
    """One call's inputs, provider-neutral. Dialects turn it into each provider's JSON."""

    # the caller's list as given (checked, not copied: engines pass a fresh list each call)
    messages: Annotated[list[Message], PlainValidator(_message_list)]
    # OpenAI function-tool schemas, passed through as given (not copied): backends cache their
    # JSON by the list's identity, and an agent sends the same list on every step
    tools: Annotated[list[dict[str, Any]], PlainValidator(_tool_list)] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    thinking: Thinking | None = None  # None: the provider's default
    reasoning_effort: str | None = None  # e.g. "high", "max" (the profile lists what the provider accepts)
    preserve_reasoning: bool = True  # send earlier turns' reasoning back (dialect rules apply)
    # For chat models with no reasoning field (the Interleaved engine's <think>-tag mode): the
    # wire dialect puts earlier reasoning back inside the assistant content as <think>…</think>
    # (all of it when preserving, else only the current chain's). Messages stay as they are.
    reasoning_as_tags: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    response_schema: dict[str, Any] | None = None  # JSON schema for structured output
    stop: list[str] | None = None
    seed: int | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)


class ChatModel(ABC):
    """A model ponder can call. Subclasses implement `stream`."""

    spec: ModelSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def native_thinking(self) -> bool:
        """True when the model emits reasoning on its own (no elicitation needed)."""
        return self.spec.profile.native_thinking

    @property
    def capabilities(self) -> Capabilities:
        """What engines may rely on (native thinking, constrained decoding, vision)."""
        return self.spec.capabilities

    @abstractmethod
    def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]: ...

    async def complete(self, request: ChatRequest, *, agent: str = "main") -> ModelCallFinished:
        """Run one call to the end; raise `ModelError` if it ended in an error event."""
        final: ModelCallFinished | None = None
        async for ev in self.stream(request, agent=agent):
            if isinstance(ev, ModelCallFinished):
                final = ev
            elif isinstance(ev, ErrorEvent):
                raise ModelError(ev.message, retryable=ev.retryable)
        if final is None:
            raise ModelError(f"model {self.name!r} ended its stream without a result")
        return final

    async def aclose(self) -> None:  # pragma: no cover - default no-op
        return None


class CallAssembler:
    """Accumulates one call's deltas and produces its events and telemetry.

    Shared by every backend so that TTFT, tokens/s and cost mean the same thing whatever
    the transport: TTFT is the time to the first reasoning *or* content token; decode
    tokens/s is (completion tokens - 1) / (end - first token).
    """

    __slots__ = ("spec", "agent", "t0", "t_first", "content", "reasoning", "tool_calls", "usage", "finish_reason", "dialect", "raw")

    def __init__(self, spec: ModelSpec, agent: str = "main", dialect: str | None = None):
        self.spec = spec
        self.agent = agent
        self.dialect = dialect or spec.dialect
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.raw: str | None = None  # the whole generated text, when the backend has it

    def _mark(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()

    def reasoning_delta(self, text: str) -> ReasoningDelta | None:
        if not text:
            return None
        self._mark()
        self.reasoning.append(text)
        return ReasoningDelta(text=text, agent=self.agent)

    def content_delta(self, text: str) -> ContentDelta | None:
        if not text:
            return None
        self._mark()
        self.content.append(text)
        return ContentDelta(text=text, agent=self.agent)

    def tool_call(self, call: ToolCall) -> ToolCallEvent:
        self._mark()
        self.tool_calls.append(call)
        return ToolCallEvent(call=call, agent=self.agent)

    def message(self) -> Message:
        text = "".join(self.reasoning)
        return Message(
            role="assistant",
            content="".join(self.content) or None,
            reasoning=Reasoning(text=text, model=self.spec.model_id, dialect=self.dialect) if text else None,
            tool_calls=list(self.tool_calls),
            raw=self.raw,
        )

    def finish(self, usage: Usage | None = None, finish_reason: str | None = None) -> list[Event]:
        """The event that closes a successful call: the finished message with its telemetry."""
        end = time.perf_counter()
        if usage is not None:
            self.usage = usage
        if finish_reason is not None:
            self.finish_reason = finish_reason
        u = self.usage or Usage()
        total = end - self.t0
        ttft = (self.t_first - self.t0) if self.t_first is not None else None
        tps = None
        if self.t_first is not None and u.completion_tokens > 1 and end > self.t_first:
            tps = (u.completion_tokens - 1) / (end - self.t_first)
        return [
            ModelCallFinished(
                model=self.spec.name,
                message=self.message(),
                usage=u,
                cost_usd=self.spec.cost(u),
                ttft_s=ttft,
                total_s=total,
                decode_tokens_per_s=tps,
                finish_reason=self.finish_reason,
                agent=self.agent,
            ),
        ]

    def error(self, exc: BaseException | str, *, retryable: bool = False) -> ErrorEvent:
        msg = str(exc)
        partial = self.message() if (self.content or self.reasoning or self.tool_calls) else None
        return ErrorEvent(
            error_type=type(exc).__name__ if not isinstance(exc, str) else "ModelError",
            message=msg,
            retryable=retryable,
            partial=partial,
            agent=self.agent,
        )
