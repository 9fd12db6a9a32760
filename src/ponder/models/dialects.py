"""Wire dialects: each provider's real rules for the OpenAI-compatible chat API.

The differences that matter are all about reasoning and thinking:

- kimi (Moonshot): reasoning arrives as `reasoning_content`; every assistant message with
  tool calls must go back *with* its `reasoning_content` while thinking is on (the API
  answers 400 otherwise); thinking is switched off with `thinking: {"type": "disabled"}`;
  tool-call ids look like `functions.NAME:IDX`; recommended sampling is 1.0/0.95 when
  thinking and 0.6/0.95 instant.
- glm (Z.ai): `thinking: {"type": "enabled"|"disabled", "clear_thinking": bool}`; preserved
  thinking (`clear_thinking: false`) requires every earlier `reasoning_content` back,
  complete, unmodified and in order.
- deepseek: `reasoning_content`; only the current tool-call chain's reasoning goes back.
- vllm / sglang: thinking on/off through `chat_template_kwargs` (`enable_thinking` for
  GLM/Qwen templates, `thinking` for Kimi's); past reasoning as `reasoning_content`, which
  the GLM/Kimi chat templates render; reasoning deltas as `reasoning` or `reasoning_content`.
- llamacpp: llama.cpp servers; `chat_template_kwargs` for thinking, JSON-schema
  `response_format` for structured output.
- openai: the plain API; reasoning is never sent back.

A dialect is a pure function from a provider-neutral `ChatRequest` to JSON, so payloads
are testable without a network.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any

from ..core import fastjson
from ..core.messages import Message
from .base import ChatRequest
from .catalog import ModelSpec

_KIMI_ID = re.compile(r"^(functions\.)?[\w\-.]+:\d+$")
_LONG_DIGITS = re.compile(r"\d{16}")


_TOOLS_JSON: dict[tuple[int, ...], tuple[list[dict[str, Any]], str]] = {}


def _tools_json(tools: list[dict[str, Any]]) -> str:
    """JSON of a tool list, cached by the identity of its schema dicts: `Tool.schema()` hands
    out the same dict every time, so 100 agents sharing a tool encode it once. The cache
    keeps the dicts themselves, so an id is never reused while cached."""
    key = tuple(map(id, tools))
    hit = _TOOLS_JSON.get(key)
    if hit is not None and hit[0] == tools:  # identical dicts compare by identity first: cheap
        return hit[1]
    if len(_TOOLS_JSON) >= 1024:
        _TOOLS_JSON.clear()
    text = json.dumps(tools)
    _TOOLS_JSON[key] = (list(tools), text)
    return text


# every request field the head JSON may depend on (extra_body is handled apart: see _head_json)
_head_fields = operator.attrgetter(*(f for f in ChatRequest.model_fields if f not in ("messages", "tools", "extra_body")))


def _last_user_index(messages: list[Message]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    return -1


@dataclass(slots=True, eq=False)
class _Prefix:
    """A history's rendered prefix: the messages it covers, their joined JSON, the tool-id map
    and the last user index it was rendered with."""

    src: list[Message]
    joined: str
    id_map: dict[str, str]
    last_user: int


class Dialect:
    name = "openai"
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning")

    def __init__(self) -> None:
        self._heads: dict[tuple[Any, ...], tuple[ModelSpec, str]] = {}

    # ---- messages ---------------------------------------------------------------------------
    def keep_reasoning(self, request: ChatRequest, index: int, msg: Message, last_user: int) -> bool:
        """Whether this assistant message's reasoning goes back on the wire."""
        return False

    def tool_call_id(self, call_id: str, name: str, idx: int) -> str:
        return call_id

    def _plan(self, request: ChatRequest) -> list[tuple[Message, bool | str, str | None]]:
        """Per message: (message, whether its reasoning goes back, its wire tool_call_id)."""
        msgs = request.messages
        return self._plan_range(request, msgs, 0, len(msgs), {}, _last_user_index(msgs))

    def _plan_range(self, request: ChatRequest, msgs: list[Message], start: int, end: int,
                    id_map: dict[str, str], last_user: int) -> list[tuple[Message, bool | str, str | None]]:
        out: list[tuple[Message, bool | str, str | None]] = []
        tags = request.reasoning_as_tags
        for i in range(start, end):
            m = msgs[i]
            role = m.role
            if role == "assistant":
                for idx, tc in enumerate(m.tool_calls):
                    id_map[tc.id] = self.tool_call_id(tc.id, tc.name, idx)
                if tags:  # think-tag models: reasoning goes back inside the content (see message_dict)
                    keep: bool | str = "tags" if m.reasoning is not None and (
                        request.preserve_reasoning or i > last_user) else False
                else:
                    keep = self.keep_reasoning(request, i, m, last_user)
                out.append((m, keep, None))
            elif role == "tool":
                cid = m.tool_call_id or ""
                out.append((m, False, id_map.get(cid, cid)))
            else:
                out.append((m, False, None))
        return out

    def message_dict(self, m: Message, keep: bool | str, tool_id: str | None) -> dict[str, Any]:
        """`keep`: False (reasoning stays out), True (as `reasoning_content`) or "tags" (inside
        the content as `<think>…</think>`, for chat models with no reasoning field)."""
        if m.role == "assistant":
            content = m.content or ""
            if keep == "tags" and m.reasoning is not None:
                content = f"<think>{m.reasoning.text}</think>{content}"
                keep = False
            d: dict[str, Any] = {"role": "assistant", "content": content}
            if m.tool_calls:
                d["tool_calls"] = [
                    {"id": self.tool_call_id(tc.id, tc.name, idx), "type": "function",
                     "function": {"name": tc.name, "arguments": tc.arguments_json()}}
                    for idx, tc in enumerate(m.tool_calls)
                ]
            if keep:
                d["reasoning_content"] = m.reasoning.text if m.reasoning else ""
            return d
        if m.role == "tool":
            d = {"role": "tool", "tool_call_id": tool_id or "", "content": m.content or ""}
            if m.name:
                d["name"] = m.name
            return d
        return {"role": m.role, "content": m.content or ""}

    def messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        return [self.message_dict(*x) for x in self._plan(request)]

    def message_json(self, m: Message, keep: bool | str, tool_id: str | None) -> str:
        """A message's wire JSON, encoded once per (dialect, rendering) and reused: an agent
        re-sends its whole history on every step, so this keeps a step's client cost flat."""
        key = (self.name, keep, tool_id)
        cache = m.wire_cache()
        cached = cache.get(key)
        if cached is None:
            cached = cache[key] = fastjson.dumps(self.message_dict(m, keep, tool_id))
        return cached

    # ---- request ----------------------------------------------------------------------------
    def thinking_params(self, spec: ModelSpec, request: ChatRequest) -> dict[str, Any]:
        return {}

    def sampling(self, spec: ModelSpec, request: ChatRequest) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if request.temperature is not None:
            out["temperature"] = request.temperature
        if request.top_p is not None:
            out["top_p"] = request.top_p
        return out

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": True}}

    def build_payload(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The request as a dict (what tests inspect). `build_body` gives the same JSON, faster."""
        return {"messages": self.messages(request), **self._head(spec, request, stream)}

    def build_body(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> bytes:
        """The same JSON as `build_payload`, assembled from cached pieces, so that a step costs
        what is new in it rather than the whole history: each message's JSON is encoded once
        (`message_json`), the history before the newest message is kept joined between steps
        (`_messages_json`), and the tool schemas and the request's other fields are encoded
        once per distinct value."""
        parts = ['{"messages": [', self._messages_json(request), "]"]
        if request.tools:
            parts += [', "tools": ', _tools_json(request.tools)]
        head = self._head_json(spec, request, stream)
        parts.append(", " + head[1:] if head != "{}" else "}")
        return "".join(parts).encode()

    def _messages_json(self, request: ChatRequest) -> str:
        """The messages' JSON, comma-joined. An agent's history only grows, so the rendering of
        all but the last message is kept on the first message (it lives as long as the
        history does) and the next step renders only what was appended. The last message is
        never kept: an engine may add a one-off note there. Any change to the prefix, a new
        user turn (which moves the "current chain" some dialects key on) or different
        thinking flags renders everything again."""
        msgs = request.messages
        n = len(msgs)
        if n < 3:
            return ",".join(self.message_json(*x) for x in self._plan(request))
        key = ("prefix", self.name, request.thinking, request.preserve_reasoning, request.reasoning_as_tags)
        cache = msgs[0].wire_cache()
        st: _Prefix | None = cache.get(key)  # type: ignore[assignment]
        # `src` holds the covered messages after the first (the first holds this cache: keeping
        # it in `src` too would make a reference cycle, freed only by a full GC)
        if st is not None:
            k = len(st.src) + 1
            last_user = st.last_user
            for i in range(k, n):
                if msgs[i].role == "user":
                    last_user = i
            if k > n - 1 or last_user != st.last_user or msgs[1:k] != st.src:  # identity-first: cheap
                st = None
        if st is None:
            last_user = _last_user_index(msgs)
            st = _Prefix([], "", {}, last_user)
        k = len(st.src) + 1 if st.joined else 0
        new = [self.message_json(*x) for x in self._plan_range(request, msgs, k, n - 1, st.id_map, last_user)]
        if new:
            st.joined = ",".join([st.joined, *new]) if st.joined else ",".join(new)
            st.src.extend(msgs[max(k, 1) : n - 1])
        cache[key] = st  # type: ignore[assignment]
        tail = self.message_json(*self._plan_range(request, msgs, n - 1, n, dict(st.id_map), last_user)[0])
        return st.joined + "," + tail

    def _head_json(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> str:
        """JSON of everything but messages and tools. Cached: it is the same on every step of
        an agent. The key is every other request field (so a field added to ChatRequest later
        is in the key without anyone remembering it); a request with `extra_body` or with an
        unhashable value (a stop list, a tool_choice object, a response schema) is not cached."""
        key: tuple[Any, ...] | None = None
        if not request.extra_body:
            try:
                key = (id(spec), spec.model_id, stream, bool(request.tools), *_head_fields(request))
                hit = self._heads.get(key)
            except TypeError:
                key = None
        if key is None:
            return self._head_text(spec, request, stream)
        if hit is None or hit[0] is not spec:
            if len(self._heads) >= 256:
                self._heads.clear()
            hit = self._heads[key] = (spec, self._head_text(spec, request, stream))
        return hit[1]

    def _head_text(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> str:
        d = self._head(spec, request, stream)
        d.pop("tools", None)
        return json.dumps(d)

    def _head(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> dict[str, Any]:
        p: dict[str, Any] = {"model": spec.model_id, "stream": stream}
        if stream:
            p["stream_options"] = {"include_usage": True}
        if request.tools:
            p["tools"] = request.tools
            if request.tool_choice is not None:
                p["tool_choice"] = request.tool_choice
        if request.max_tokens is not None:
            p["max_tokens"] = request.max_tokens
        if request.stop:
            p["stop"] = request.stop
        if request.seed is not None:
            p["seed"] = request.seed
        if request.response_schema is not None:
            p["response_format"] = self.response_format(request.response_schema)
        p.update(self.sampling(spec, request))
        p.update(self.thinking_params(spec, request))
        p.update(request.extra_body)
        return p

    # ---- response ---------------------------------------------------------------------------
    def reasoning_of(self, delta: dict[str, Any]) -> str | None:
        for f in self.reasoning_fields:
            v = delta.get(f)
            if v:
                return v
        return None


class OpenAIDialect(Dialect):
    name = "openai"


class KimiDialect(Dialect):
    name = "kimi"
    reasoning_fields = ("reasoning_content",)

    def keep_reasoning(self, request, index, msg, last_user):
        # Required on every tool-call message while thinking is on; other turns only when preserving.
        if msg.tool_calls and request.thinking != "off":
            return True
        return request.preserve_reasoning and msg.reasoning is not None

    def tool_call_id(self, call_id, name, idx):
        return call_id if _KIMI_ID.match(call_id) else f"functions.{name}:{idx}"

    def thinking_params(self, spec, request):
        if request.thinking == "off":
            return {"thinking": {"type": "disabled"}}
        if request.thinking == "on":
            return {"thinking": {"type": "enabled"}}
        return {}

    def sampling(self, spec, request):
        instant = request.thinking == "off"
        return {
            "temperature": request.temperature if request.temperature is not None else (0.6 if instant else 1.0),
            "top_p": request.top_p if request.top_p is not None else 0.95,
        }


class GLMDialect(Dialect):
    name = "glm"
    reasoning_fields = ("reasoning_content",)

    def keep_reasoning(self, request, index, msg, last_user):
        if msg.reasoning is None:
            return False
        # Interleaved: the current tool loop's thinking always goes back; preserved: all of it.
        return request.preserve_reasoning or index > last_user

    def thinking_params(self, spec, request):
        t: dict[str, Any] = {"type": "disabled" if request.thinking == "off" else "enabled"}
        t["clear_thinking"] = not request.preserve_reasoning
        return {"thinking": t}


class DeepSeekDialect(Dialect):
    name = "deepseek"
    reasoning_fields = ("reasoning_content",)

    def keep_reasoning(self, request, index, msg, last_user):
        return msg.reasoning is not None and index > last_user

    def thinking_params(self, spec, request):
        if request.thinking is None:
            return {}
        return {"thinking": {"type": "enabled" if request.thinking == "on" else "disabled"}}


class SelfHostedDialect(Dialect):
    """vLLM and SGLang: the chat template decides; we steer it with chat_template_kwargs."""

    name = "vllm"

    def keep_reasoning(self, request, index, msg, last_user):
        if msg.reasoning is None:
            return False
        return request.preserve_reasoning or index > last_user

    def thinking_params(self, spec, request):
        kw: dict[str, Any] = {}
        if request.thinking is not None:
            on = request.thinking == "on"
            kw.update({"enable_thinking": on, "thinking": on})
        if request.preserve_reasoning:
            kw["clear_thinking"] = False
        return {"chat_template_kwargs": kw} if kw else {}

    def response_format(self, schema):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


class VLLMDialect(SelfHostedDialect):
    name = "vllm"


class SGLangDialect(SelfHostedDialect):
    name = "sglang"


class LlamaCppDialect(SelfHostedDialect):
    name = "llamacpp"

    def thinking_params(self, spec, request):
        if request.thinking is None:
            return {}
        on = request.thinking == "on"
        return {"chat_template_kwargs": {"enable_thinking": on, "thinking": on}}

    def response_format(self, schema):
        # llama-cpp-python's server takes a schema on json_object; llama-server accepts both.
        return {"type": "json_object", "schema": schema}


_DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (OpenAIDialect(), KimiDialect(), GLMDialect(), DeepSeekDialect(), VLLMDialect(), SGLangDialect(), LlamaCppDialect())
}
_DIALECTS["scripted"] = _DIALECTS["openai"]
_DIALECTS["glm-raw"] = _DIALECTS["glm"]  # raw models render templates; these only name their reasoning rules
_DIALECTS["kimi-raw"] = _DIALECTS["kimi"]


def get_dialect(name: str) -> Dialect:
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; choose one of {', '.join(sorted(_DIALECTS))}") from None


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """Parse a tool call's JSON arguments; never raises (the error goes back to the model)."""
    if not raw or not raw.strip():
        return {}, None
    try:
        # orjson first (a few times faster); the standard library where orjson might read
        # differently (long digit runs: big integers it would turn into floats) or refuses
        val = json.loads(raw) if _LONG_DIGITS.search(raw) else fastjson.loads(raw)
    except json.JSONDecodeError as e:
        return {}, f"arguments are not valid JSON ({e.msg} at char {e.pos}); send a JSON object"
    if not isinstance(val, dict):
        return {}, f"arguments must be a JSON object, got {type(val).__name__}"
    return val, None
