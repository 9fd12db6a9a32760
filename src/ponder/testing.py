"""Test doubles, named as such: a scripted model for engine tests and benchmarks.

`ScriptedModel` is never a product backend. It replays replies written by a test (or
computed from the request by a function), streams them through the same
`CallAssembler` as the real backends, and records every request, plus the exact JSON
payload a given wire dialect would have sent, so tests can assert what goes on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .core.events import Event
from .core.messages import ToolCall, Usage
from .models.base import CallAssembler, ChatModel, ChatRequest
from .models.catalog import ModelSpec


@dataclass
class Reply:
    content: str | None = None
    reasoning: str | None = None
    tool_calls: Sequence[ToolCall | tuple[str, dict[str, Any]]] = ()
    delay_s: float = 0.0
    error: str | None = None  # end the call with an ErrorEvent instead
    usage: Usage | None = None


ReplyFn = Callable[[ChatRequest, int], Reply]


@dataclass
class ScriptedModel(ChatModel):
    """A scripted test-double model. `script` is a list of replies or a function (request, n) -> Reply."""

    script: Sequence[Reply] | ReplyFn
    name_: str = "scripted"
    native: bool = True
    wire_dialect: str | None = None  # record payloads as this dialect would build them
    price_output: float = 0.0
    requests: list[ChatRequest] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count())

    def __post_init__(self) -> None:
        self.spec = ModelSpec(name=self.name_, model_id=self.name_, dialect="scripted",
                              native_thinking=self.native, price_output=self.price_output)

    def _next(self, request: ChatRequest) -> Reply:
        n = len(self.requests) - 1
        if callable(self.script):
            return self.script(request, n)
        if n >= len(self.script):
            return Reply(content="(script exhausted)")
        return self.script[n]

    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        self.requests.append(request)
        if self.wire_dialect:
            from .models.dialects import get_dialect

            self.payloads.append(get_dialect(self.wire_dialect).build_payload(self.spec, request, stream=True))
        reply = self._next(request)
        asm = CallAssembler(self.spec, agent)
        # always suspend, as a real call does (sleep(0) yields to the loop): engines must not
        # come to depend on a model call finishing without giving other agents a turn
        await asyncio.sleep(reply.delay_s)
        if reply.reasoning:
            if ev := asm.reasoning_delta(reply.reasoning):
                yield ev
        if reply.content:
            if ev := asm.content_delta(reply.content):
                yield ev
        for i, tc in enumerate(reply.tool_calls):
            if isinstance(tc, tuple):
                tc = ToolCall(id=f"call_{next(self._ids)}_{i}", name=tc[0], arguments=tc[1])
            yield asm.tool_call(tc)
        if reply.error:
            yield asm.error(reply.error, retryable=False)
            return
        usage = reply.usage or Usage(
            prompt_tokens=sum(len((m.content or "").split()) + 4 for m in request.messages),
            completion_tokens=len((reply.content or "").split()) + len((reply.reasoning or "").split()) + 8 * len(reply.tool_calls) + 1,
            reasoning_tokens=len((reply.reasoning or "").split()),
        )
        for ev in asm.finish(usage, "tool_calls" if reply.tool_calls else "stop"):
            yield ev
