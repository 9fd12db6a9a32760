"""Wire dialects: how each provider's OpenAI-compatible chat JSON is written.

What a dialect knows is the wire: the reasoning field's name, tool-call id formats,
`response_format` variants, image parts. The rules (which reasoning goes back, how
thinking is toggled and whether it can be, which sampling values may be sent) are the
model's `Profile` (`profiles.py`, shipped as data): a dialect reads the spec's profile, or
its own default profile for a spec of another dialect (a scripted test double recording
what Kimi would have been sent).

- kimi (Moonshot): `reasoning_content`; tool-call ids look like `functions.NAME:IDX`.
- glm (Z.ai), deepseek: `reasoning_content`.
- vllm / sglang / llamacpp: reasoning deltas as `reasoning` or `reasoning_content`;
  structured output as the server takes it.
- openai: the plain API.

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
from .profiles import Profile, dialect_defaults

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


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """`body["a"]["b"] = value` for path "a.b", making the inner objects as needed."""
    *heads, last = path.split(".")
    for h in heads:
        nxt = body.get(h)
        if not isinstance(nxt, dict):
            nxt = body[h] = {}
        body = nxt
    body[last] = value


class Dialect:
    name = "openai"
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning")

    def __init__(self) -> None:
        self._heads: dict[tuple[Any, ...], tuple[ModelSpec, str]] = {}
        self._default: Profile | None = None

    def rules(self, spec: ModelSpec) -> Profile:
        """The spec's profile when the spec speaks this dialect, else this dialect's defaults."""
        if _DIALECTS.get(spec.dialect) is self:
            return spec.profile
        return self.rules_default()

    # ---- messages ---------------------------------------------------------------------------
    def keep_reasoning(self, request: ChatRequest, prof: Profile, index: int, msg: Message, last_user: int) -> bool | str:
        """Whether this assistant message's reasoning goes back: False, True (as the reasoning
        field; sent empty when a turn the profile requires has none) or "tags" (inside the
        content as <think>…</think>: think-tag models and profiles with reasoning_format tags)."""
        tags = request.reasoning_as_tags
        policy = "interleaved" if tags else prof.replay
        if policy == "interleaved" and request.preserve_reasoning and (prof.preserve or tags):
            policy = "preserved"
        has = msg.reasoning is not None
        keep = has and (policy == "preserved" or (policy == "interleaved" and index > last_user))
        if tags or prof.reasoning_format == "tags":
            return "tags" if keep else False
        if keep:
            return True
        req = prof.replay_required
        return request.thinking != "off" and (req == "all" or (req == "tool-calls" and bool(msg.tool_calls)))

    def tool_call_id(self, call_id: str, name: str, idx: int) -> str:
        return call_id

    def _plan(self, request: ChatRequest, prof: Profile) -> list[tuple[Message, bool | str, str | None]]:
        """Per message: (message, whether its reasoning goes back, its wire tool_call_id)."""
        msgs = request.messages
        return self._plan_range(request, prof, msgs, 0, len(msgs), {}, _last_user_index(msgs))

    def _plan_range(self, request: ChatRequest, prof: Profile, msgs: list[Message], start: int, end: int,
                    id_map: dict[str, str], last_user: int) -> list[tuple[Message, bool | str, str | None]]:
        out: list[tuple[Message, bool | str, str | None]] = []
        for i in range(start, end):
            m = msgs[i]
            role = m.role
            if role == "assistant":
                for idx, tc in enumerate(m.tool_calls):
                    id_map[tc.id] = self.tool_call_id(tc.id, tc.name, idx)
                out.append((m, self.keep_reasoning(request, prof, i, m, last_user), None))
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
        if m.images:
            parts = [img.part() for img in m.images]
            if m.content:
                parts.append({"type": "text", "text": m.content})
            return {"role": m.role, "content": parts}
        return {"role": m.role, "content": m.content or ""}

    def messages(self, request: ChatRequest, spec: ModelSpec | None = None) -> list[dict[str, Any]]:
        prof = self.rules(spec) if spec is not None else self.rules_default()
        return [self.message_dict(*x) for x in self._plan(request, prof)]

    def rules_default(self) -> Profile:
        """This dialect's default profile (shipped data)."""
        if self._default is None:
            self._default = Profile.model_validate(dialect_defaults(self.name))
        return self._default

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
    def thinking_params(self, prof: Profile, request: ChatRequest) -> dict[str, Any]:
        """Thinking on/off, the preserve switch and reasoning_effort, where the profile says
        they go (dotted paths into the body)."""
        body: dict[str, Any] = {}
        t = request.thinking or prof.thinking_default
        if t is not None and prof.thinking != "always" and prof.thinking_flag:
            value = prof.thinking_on if t == "on" else prof.thinking_off
            if value is not None:
                for path in prof.thinking_flag:
                    set_path(body, path, value)
        if prof.preserve_flag and prof.replay != "never":
            preserving = prof.replay == "preserved" or (request.preserve_reasoning and prof.preserve)
            value = prof.preserve_on if preserving else prof.preserve_off
            if value is not None:
                set_path(body, prof.preserve_flag, value)
        if request.reasoning_effort is not None and prof.effort_flag:
            set_path(body, prof.effort_flag, request.reasoning_effort)
        return body

    def sampling(self, prof: Profile, request: ChatRequest) -> dict[str, Any]:
        """The request's sampling values; where it gives none, the profile's recommended ones
        (never a value the provider fixes)."""
        rec = prof.recommended_sampling_instant if request.thinking == "off" else prof.recommended_sampling
        out: dict[str, Any] = {}
        for param in ("temperature", "top_p"):
            v = getattr(request, param)
            if v is None and param in rec and param not in prof.fixed_sampling:
                v = rec[param]
            if v is not None:
                out[param] = v
        return out

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": True}}

    def build_payload(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The request as a dict (what tests inspect). `build_body` gives the same JSON, faster."""
        return {"messages": self.messages(request, spec), **self._head(spec, request, stream)}

    def build_body(self, spec: ModelSpec, request: ChatRequest, stream: bool) -> bytes:
        """The same JSON as `build_payload`, assembled from cached pieces, so that a step costs
        what is new in it rather than the whole history: each message's JSON is encoded once
        (`message_json`), the history before the newest message is kept joined between steps
        (`_messages_json`), and the tool schemas and the request's other fields are encoded
        once per distinct value."""
        parts = ['{"messages": [', self._messages_json(request, self.rules(spec)), "]"]
        if request.tools:
            parts += [', "tools": ', _tools_json(request.tools)]
        head = self._head_json(spec, request, stream)
        parts.append(", " + head[1:] if head != "{}" else "}")
        return "".join(parts).encode()

    def _messages_json(self, request: ChatRequest, prof: Profile) -> str:
        """The messages' JSON, comma-joined. An agent's history only grows, so the rendering of
        all but the last message is kept on the first message (it lives as long as the
        history does) and the next step renders only what was appended. The last message is
        never kept: an engine may add a one-off note there. Any change to the prefix, a new
        user turn (which moves the "current chain" some dialects key on) or different
        thinking flags renders everything again."""
        msgs = request.messages
        n = len(msgs)
        if n < 3:
            return ",".join(self.message_json(*x) for x in self._plan(request, prof))
        key = ("prefix", self.name, request.thinking, request.preserve_reasoning, request.reasoning_as_tags,
               *prof.replay_key())
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
        new = [self.message_json(*x) for x in self._plan_range(request, prof, msgs, k, n - 1, st.id_map, last_user)]
        if new:
            st.joined = ",".join([st.joined, *new]) if st.joined else ",".join(new)
            st.src.extend(msgs[max(k, 1) : n - 1])
        cache[key] = st  # type: ignore[assignment]
        tail = self.message_json(*self._plan_range(request, prof, msgs, n - 1, n, dict(st.id_map), last_user)[0])
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
        prof = self.rules(spec)
        p.update(self.sampling(prof, request))
        p.update(self.thinking_params(prof, request))
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

    def tool_call_id(self, call_id, name, idx):
        return call_id if _KIMI_ID.match(call_id) else f"functions.{name}:{idx}"


class GLMDialect(Dialect):
    name = "glm"
    reasoning_fields = ("reasoning_content",)


class DeepSeekDialect(Dialect):
    name = "deepseek"
    reasoning_fields = ("reasoning_content",)


class SelfHostedDialect(Dialect):
    """vLLM and SGLang: the chat template decides; the profile steers it with chat_template_kwargs."""

    name = "vllm"

    def response_format(self, schema):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


class VLLMDialect(SelfHostedDialect):
    name = "vllm"


class SGLangDialect(SelfHostedDialect):
    name = "sglang"


class LlamaCppDialect(SelfHostedDialect):
    name = "llamacpp"

    def response_format(self, schema):
        # llama-cpp-python's server takes a schema on json_object; llama-server accepts both.
        return {"type": "json_object", "schema": schema}


_DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (OpenAIDialect(), KimiDialect(), GLMDialect(), DeepSeekDialect(), VLLMDialect(), SGLangDialect(), LlamaCppDialect())
}
_DIALECTS["scripted"] = _DIALECTS["openai"]
_DIALECTS["embedded"] = _DIALECTS["openai"]  # only names its reasoning rules; the backend renders
_DIALECTS["glm-raw"] = _DIALECTS["glm"]  # (legacy names) raw models render templates themselves
_DIALECTS["kimi-raw"] = _DIALECTS["kimi"]


def get_dialect(name: str) -> Dialect:
    try:
        return _DIALECTS[name]
    except KeyError:
        valid = sorted(d for d in _DIALECTS if d not in ("scripted", "embedded", "glm-raw", "kimi-raw"))
        raise ValueError(f"unknown dialect {name!r}; choose one of {', '.join(valid)}") from None


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
