"""Raw completions for self-hosted models: ponder renders the chat template itself.

Some deployments expose only `/v1/completions`, or run without the server-side tool and
reasoning parsers (`--tool-call-parser`, `--reasoning-parser`). `RawCompletionModel`
renders the conversation with the model family's own template (GLM-4.7, Kimi K2; see
`templates.py`), streams raw text, and splits reasoning, content and tool calls with the
streaming-safe parsers in `parsers.py`. Because ponder renders the template, preserved
reasoning and turn-level thinking work exactly as the template defines them, whatever the
server supports.

    model("glm47-raw:http://host:8000/v1#zai-org/GLM-4.7-FP8")  # via resolve(dialect=...)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..core.errors import ModelError, StreamDamaged
from ..core.events import Event
from .base import CallAssembler, ChatRequest
from .openai_compat import OpenAICompatModel, _text
from .parsers import ContentText, ParsedToolCall, ParseProblem, RawFormat, RawOutputParser, ReasoningText
from .sse import SSEState
from .templates import render_glm47, render_kimi_k2

STOPS: dict[str, list[str]] = {
    "glm47": ["<|user|>", "<|observation|>", "<|endoftext|>"],
    "kimi_k2": ["<|im_end|>"],
}


class RawCompletionModel(OpenAICompatModel):
    path = "/completions"

    def __init__(self, spec, *, raw_format: RawFormat = "glm47", **kw: Any):
        super().__init__(spec, **kw)
        if raw_format not in STOPS:
            raise ValueError(f"raw format {raw_format!r} has no template; use one of {sorted(STOPS)}")
        self.raw_format = raw_format

    def render(self, request: ChatRequest) -> str:
        thinking = request.thinking != "off"
        if self.raw_format == "glm47":
            return render_glm47(request.messages, request.tools or None, thinking=thinking,
                                clear_thinking=not request.preserve_reasoning)
        return render_kimi_k2(request.messages, request.tools or None, thinking=thinking,
                              preserve_thinking=request.preserve_reasoning)

    def build_body(self, request: ChatRequest) -> bytes:
        return json.dumps(self.build_payload(request)).encode()

    def build_payload(self, request: ChatRequest) -> dict[str, Any]:
        p: dict[str, Any] = {
            "model": self.spec.model_id,
            "prompt": self.render(request),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens or 4096,
            "stop": (request.stop or []) + STOPS[self.raw_format],
            "skip_special_tokens": False,  # vLLM/SGLang: keep the tool-call markup tokens
        }
        if request.temperature is not None:
            p["temperature"] = request.temperature
        if request.top_p is not None:
            p["top_p"] = request.top_p
        if request.seed is not None:
            p["seed"] = request.seed
        p.update(request.extra_body)
        return p

    async def _post_once(self, body: bytes, asm: CallAssembler, request: ChatRequest, deadline: float) -> AsyncIterator[Event]:
        async for ev in self._stream_once(body, asm, request, deadline):  # raw mode always streams
            yield ev

    async def _stream_once(self, body: bytes, asm: CallAssembler, request: ChatRequest, deadline: float) -> AsyncIterator[Event]:
        parser = RawOutputParser(
            self.raw_format, tools_schema=request.tools or None,
            # GLM-4.7's generation prompt ends inside <think>; Kimi's model opens it itself.
            starts_in_reasoning=self.raw_format == "glm47" and request.thinking != "off",
            id_prefix=f"call_{uuid.uuid4().hex[:8]}_",  # GLM has no ids: unique across the conversation
        )
        resp, first_wait, whole = await self._open_stream(body, deadline)
        usage_raw: dict[str, Any] | None = None
        finish: str | None = None
        if whole is not None:  # the server answered with one JSON reply instead of a stream
            data, damage = whole
            choice = data["choices"][0]
            text = choice.get("text")
            if text is not None and type(text) is not str:
                raise ModelError(self._clean(f"{self.spec.name}: malformed response body (text is not a string)"))
            for ev in self._pieces(parser.feed(text or ""), asm):
                yield ev
            if damage:
                raise StreamDamaged(self._clean(f"{self.spec.name}: reply damaged: {damage}; partial output kept"))
            usage_raw, finish = data.get("usage"), choice.get("finish_reason") or "stop"
        else:
            state = SSEState()
            try:
                async for chunks in self._sse(resp, state, first_wait):
                    for chunk in chunks:
                        try:
                            if chunk.get("usage"):
                                usage_raw = chunk["usage"]
                            for choice in chunk.get("choices") or ():
                                for ev in self._pieces(parser.feed(_text(choice.get("text")) or ""), asm):
                                    yield ev
                                if choice.get("finish_reason"):
                                    finish = choice["finish_reason"]
                        except (AttributeError, TypeError, ValueError):  # JSON, but not a chunk's shape
                            state.misshapen(chunk)
                self._check_complete(state, finish)
            except ModelError:  # text the parser still holds goes into the error's partial message
                self._pieces(parser.close(), asm)
                raise
        for ev in self._pieces(parser.close(), asm):
            yield ev
        for ev in asm.finish(self._usage(usage_raw, asm), "tool_calls" if asm.tool_calls else finish):
            yield ev

    def _pieces(self, pieces: list[Any], asm: CallAssembler) -> list[Event]:
        out: list[Event] = []
        for p in pieces:
            if isinstance(p, ReasoningText):
                ev = asm.reasoning_delta(p.text)
            elif isinstance(p, ContentText):
                ev = asm.content_delta(p.text)
            elif isinstance(p, ParsedToolCall):
                ev = asm.tool_call(p.to_tool_call())
            elif isinstance(p, ParseProblem):
                # A malformed call goes back to the model as text it can see and fix.
                ev = asm.content_delta(f"\n[unparseable tool call: {p.message}]\n")
            else:
                ev = None
            if ev is not None:
                out.append(ev)
        return out
