"""ponder events as OpenAI chat-completion deltas, chunks and responses.

One `Translator` per request reads the run's events and says what the client sees:

* the main agent's reasoning as `reasoning_content` deltas (or, for clients that show only
  content, inside `content` as `<think>…</think>`);
* progress of tools and sub-agents as short reasoning lines (`→ search {"query": …}`,
  `← search: 3 hits`, `+ agent w1: …`, `✓ w1 ok`), so a chat UI shows what the run is doing;
* the answer as `content`: streamed live for a single agent; a swarm's answer (the
  orchestrator's `finish`) at the end;
* in proxy mode (one call for the client, its own tools), the model's tool calls, under ids
  ponder hands out.

`SSE` writes the chunks: the fixed part of every chunk is encoded once per request and each
delta is one orjson call, because a streamed reply is hundreds of chunks.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    ContentDelta,
    ErrorEvent,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    ToolCallEvent,
    ToolResult,
    ToolStarted,
    VerificationEvent,
)
from ..core.messages import Message, Usage
from .conversation import new_call_id

LINE_CHARS = 160
FINISH = {"ok": "stop", "budget": "length", "cancelled": "stop", "error": "stop"}


def short(text: Any, n: int = LINE_CHARS) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def progress_line(ev: Any, main_agent: str = "main") -> str | None:
    """One short line saying what a tool, a sub-agent or a budget just did (None: nothing to
    say). The OpenAI stream shows these as reasoning, MCP as progress messages."""
    tp = type(ev)
    main = ev.agent == main_agent
    if tp is ToolStarted:
        who = "" if main else f"[{ev.agent}] "
        args = orjson.dumps(ev.arguments).decode() if ev.arguments else ""
        return short(f"→ {who}{ev.name} {args}")
    if tp is ToolResult:
        if not main:
            return None
        mark = "←" if ev.ok else "✗"
        return short(f"{mark} {ev.name}: {ev.content if ev.ok else (ev.error or ev.content)}")
    if tp is AgentSpawned:
        return short(f"+ agent {ev.agent_id} ({ev.name}): {ev.goal}")
    if tp is AgentFinished:
        mark = "✓" if ev.status == "ok" else "✗"
        return short(f"{mark} agent {ev.agent_id} {ev.status} after {ev.steps} steps" + (f": {ev.error}" if ev.error else ""))
    if tp is BudgetHit:
        return short(f"budget {ev.budget} reached ({ev.value:g} of {ev.limit:g})")
    if tp is VerificationEvent and not ev.ok:
        return short(f"✗ code rejected before running: {ev.reason}")
    return None


_PROGRESS = frozenset({ToolStarted, ToolResult, AgentSpawned, AgentFinished, BudgetHit, VerificationEvent})


def usage_json(u: Usage, cost_usd: float) -> dict[str, Any]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_prompt_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "cost_usd": round(cost_usd, 10)}


class Translator:
    """Events in, deltas out (`feed`), and the whole reply for a non-streamed response."""

    def __init__(self, *, main_agent: str = "main", think_tags: bool = False, proxy: bool = False,
                 answer_at_end: bool = False):
        self.main = main_agent
        self.think_tags = think_tags
        self.proxy = proxy  # one model call for the client: its tool calls go to the client, an error ends it
        self.answer_at_end = answer_at_end  # a swarm: its answer is RunFinished.answer
        self.reasoning: list[str] = []
        self.content: list[str] = []  # the answer text the client gets (no think tags)
        self.tool_calls: list[dict[str, Any]] = []
        self.handed: dict[str, str] = {}  # the provider's tool-call id -> the id given to the client
        self.reply: Message | None = None  # proxy mode: the model's message
        self.fin: RunFinished | None = None
        self.run_id: str | None = None
        self.emitted = 0  # deltas given out
        self._think_open = False
        self._at_line_start = True
        self._gap = False  # tools ran since the last answer text: the next text starts a paragraph

    # ---- pieces ---------------------------------------------------------------------------------
    def _reason(self, text: str) -> dict[str, Any]:
        self.reasoning.append(text)
        self._at_line_start = text.endswith("\n")
        if self.think_tags:
            if not self._think_open:
                self._think_open = True
                return {"content": "<think>" + text}
            return {"content": text}
        return {"reasoning_content": text}

    def _line(self, text: str) -> dict[str, Any]:
        return self._reason(("" if self._at_line_start else "\n") + text + "\n")

    def _close_think(self, out: list[dict[str, Any]]) -> None:
        if self._think_open:
            self._think_open = False
            out.append({"content": "</think>"})

    def _answer(self, text: str, out: list[dict[str, Any]]) -> None:
        self._close_think(out)
        if self._gap:
            self._gap = False
            text = "\n\n" + text
        self.content.append(text)
        out.append({"content": text})

    # ---- the event stream -----------------------------------------------------------------------
    def feed(self, ev: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        tp = type(ev)
        main = ev.agent == self.main
        if tp is ReasoningDelta:
            if main:
                out.append(self._reason(ev.text))
        elif tp is ContentDelta:
            if main:
                if self.answer_at_end:
                    out.append(self._reason(ev.text))
                else:
                    self._answer(ev.text, out)
        elif tp is ToolCallEvent:
            if main and self.proxy:
                self._close_think(out)
                call = ev.call
                ours = self.handed[call.id] = new_call_id()
                args = call.arguments_json()
                tc = {"index": len(self.tool_calls), "id": ours, "type": "function",
                      "function": {"name": call.name, "arguments": args}}
                self.tool_calls.append(tc)
                out.append({"tool_calls": [tc]})
        elif tp in _PROGRESS:
            if tp is ToolStarted and self.content:
                self._gap = True
            if (line := progress_line(ev, self.main)) is not None:
                out.append(self._line(line))
        elif tp is ErrorEvent:
            if main and not self.proxy:
                out.append(self._line(short(f"model error ({ev.error_type}): {ev.message}")))
        elif tp is ModelCallFinished:
            if main:
                self.reply = ev.message
        elif tp is RunFinished:
            self.fin = ev
            self.run_id = ev.run_id
            if ev.answer and (self.answer_at_end or not self.content) and not self.tool_calls:
                self._answer(ev.answer, out)
            self._close_think(out)
        elif ev.type == "run_started":
            self.run_id = ev.run_id
        self.emitted += len(out)
        return out

    # ---- the end --------------------------------------------------------------------------------
    @property
    def answer_text(self) -> str:
        return "".join(self.content)

    def finish_reason(self) -> str:
        if self.tool_calls:
            return "tool_calls"
        return FINISH.get(self.fin.status if self.fin else "error", "stop")

    def usage(self) -> dict[str, Any]:
        m = self.fin.metrics if self.fin is not None else None
        return usage_json(m.usage if m else Usage(), m.cost_usd if m else 0.0)

    def extension(self, restored: int) -> dict[str, Any]:
        """The `ponder` field: what the run was, beyond OpenAI's shape."""
        fin = self.fin
        out: dict[str, Any] = {"run_id": self.run_id, "status": fin.status if fin else None,
                               "restored_reasoning": restored}
        if fin is not None:
            m = fin.metrics
            out.update(reason=fin.reason, cost_usd=round(m.cost_usd, 10), model_calls=m.model_calls,
                       tool_calls=m.tool_calls, steps=m.steps, wall_s=m.wall_s)
        return out

    def message(self) -> dict[str, Any]:
        """The assistant message of a non-streamed response."""
        reasoning = "".join(self.reasoning)
        content = self.answer_text
        msg: dict[str, Any] = {"role": "assistant"}
        if self.think_tags and reasoning:
            msg["content"] = f"<think>{reasoning}</think>{content}"
        else:
            msg["content"] = content if (content or not self.tool_calls) else None
            if reasoning:
                msg["reasoning_content"] = reasoning
        if self.tool_calls:
            msg["tool_calls"] = [{k: v for k, v in tc.items() if k != "index"} for tc in self.tool_calls]
        return msg


class SSE:
    """Chunk encoder for one response."""

    __slots__ = ("_head", "_tail", "cid", "created", "model")

    def __init__(self, cid: str, model: str, created: int | None = None):
        self.cid = cid
        self.model = model
        self.created = created if created is not None else int(time.time())
        self._head = (b'data: {"id":' + orjson.dumps(cid) + b',"object":"chat.completion.chunk","created":'
                      + str(self.created).encode() + b',"model":' + orjson.dumps(model)
                      + b',"system_fingerprint":null,"choices":[{"index":0,"delta":')
        self._tail = b',"logprobs":null,"finish_reason":null}]}\n\n'

    def delta(self, d: dict[str, Any]) -> bytes:
        return self._head + orjson.dumps(d) + self._tail

    def finish(self, reason: str) -> bytes:
        return self._head + b'{},"logprobs":null,"finish_reason":' + orjson.dumps(reason) + b"}]}\n\n"

    def usage(self, usage: dict[str, Any], ponder: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({"id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                                         "model": self.model, "system_fingerprint": None, "choices": [],
                                         "usage": usage, "ponder": ponder}) + b"\n\n"

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(body) + b"\n\n"

    DONE = b"data: [DONE]\n\n"
