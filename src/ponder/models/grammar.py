"""Constrained-decoding schemas for the embedded model, and a streaming reader for them.

SmolLM2-135M cannot be trusted to write a tool call or a JSON answer on its own, so the
embedded backend generates under a GBNF grammar compiled from a JSON schema. This module
builds those schemas (one object whose *first* key is the elicited `thinking` when asked
for, then the `action`: exactly one tool call or an answer), bounds every string and
array so that generation terminates well inside `max_tokens`, and reads the growing JSON
text incrementally so reasoning and answers can be streamed before the object closes.

Only pure functions on dicts and strings live here; nothing imports llama.cpp.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

# Bounds used when a schema leaves a string or array unbounded. They are sized against the
# token budget (see `Bounds.for_budget`) so a weak model cannot talk past max_tokens.
_MIN_STR = 16
_MAX_STR = 600
_MIN_ITEM = 64  # characters one array item is given at least (an object of a few short strings)


@dataclass(frozen=True)
class Bounds:
    """Caps applied to unbounded strings and arrays (in characters / items)."""

    thinking: int = 400
    answer: int = 1200
    string: int = 160
    items: int = 8

    @classmethod
    def for_budget(cls, max_tokens: int) -> Bounds:
        """Caps that keep a whole constrained reply well within `max_tokens`.

        JSON text under these grammars averages about three characters a token for this
        tokenizer, but digits are one token each, and a weak model fills strings with
        numbers (dates, counts): the caps assume two characters a token, and spend a quarter
        of that on thinking and most of the rest on the answer or the arguments,
        leaving room for the structure itself.
        """
        chars = max(max_tokens, 8) * 2

        return cls(
            thinking=max(_MIN_STR, min(_MAX_STR, chars // 4)),
            answer=max(_MIN_STR, min(_MAX_STR * 3, chars // 2)),
            string=max(_MIN_STR, min(_MAX_STR, chars // 5)),
            items=8 if max_tokens >= 128 else 4,
        )


def bound_schema(schema: dict[str, Any], bounds: Bounds, budget: int | None = None) -> dict[str, Any]:
    """Return a copy of `schema` whose strings, arrays and objects are all bounded.

    Every value valid for the result is valid for the input: we only add or tighten
    `maxLength` and `maxItems` (never below a minimum), and add `additionalProperties:
    false` where the schema said nothing. Caps are
    shared out of one character `budget` (default: the answer's) as the schema nests —
    an array of N objects of P strings gives each string about budget / (N * P) — so a
    list of objects cannot outgrow max_tokens the way per-field caps alone let it.
    """
    out = copy.deepcopy(schema)
    _bound_in_place(out, bounds, bounds.answer if budget is None else budget)
    return out


def _bound_in_place(node: Any, bounds: Bounds, budget: int) -> None:
    if isinstance(node, list):
        for item in node:
            _bound_in_place(item, bounds, budget)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    type_set = set(types) if isinstance(types, list) else {types} if types else set()
    constrained = any(k in node for k in ("enum", "const", "pattern", "format"))
    # A cap the schema already has is only ever tightened (a plan tool may allow 100 items;
    # 192 tokens do not), never below its minimum: every value valid here stays valid there.
    if "string" in type_set and not constrained:
        cap = max(_MIN_STR, min(bounds.string, budget))
        node["maxLength"] = max(node.get("minLength", 0), min(node.get("maxLength", cap), cap))
    item_budget = budget
    if "array" in type_set:
        n = min(bounds.items, max(1, budget // _MIN_ITEM))
        n = max(node.get("minItems", 0), min(node.get("maxItems", n), n))
        node["maxItems"] = n
        item_budget = max(_MIN_STR, budget // max(n, 1))
    if ("object" in type_set or "properties" in node) and "additionalProperties" not in node and node.get("properties"):
        node["additionalProperties"] = False
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        sub = node.get(key)
        if isinstance(sub, dict):
            share = max(_MIN_STR, budget // max(1, len(sub))) if key == "properties" else budget
            for child in sub.values():
                _bound_in_place(child, bounds, share)
    for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
        if isinstance(node.get(key), dict):
            _bound_in_place(node[key], bounds, item_budget if key == "items" else budget)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(node.get(key), list):
            _bound_in_place(node[key], bounds, item_budget if key == "prefixItems" else budget)


def _tool_function(tool: dict[str, Any]) -> dict[str, Any]:
    """The `function` part of an OpenAI tool schema (accepts the bare function too)."""
    fn = tool.get("function", tool)
    if not isinstance(fn, dict) or not fn.get("name"):
        raise ValueError(f"tool schema without a function name: {json.dumps(tool)[:120]}")
    return fn


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [_tool_function(t)["name"] for t in tools]


def _params_schema(fn: dict[str, Any]) -> dict[str, Any]:
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    if not params.get("properties") and params.get("type", "object") == "object":
        # A tool without arguments: the only valid value is the empty object.
        return {"type": "object", "properties": {}, "additionalProperties": False}
    return params


def selected_tools(tools: list[dict[str, Any]], tool_choice: str | dict[str, Any] | None) -> list[dict[str, Any]]:
    """The tools the reply may call, honouring a `{"function": {"name": ...}}` choice."""
    if isinstance(tool_choice, dict):
        want = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        chosen = [t for t in tools if _tool_function(t)["name"] == want]
        if not chosen:
            raise ValueError(f"tool_choice names {want!r}, which is not among the tools {tool_names(tools)}")
        return chosen
    return tools


def action_schema(
    tools: list[dict[str, Any]],
    *,
    tool_choice: str | dict[str, Any] | None,
    thinking: bool,
    bounds: Bounds,
    answer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`{"thinking"?: str, "action": {"tool": NAME, "arguments": {...}} | {"answer": str}}`.

    The answer branch is dropped when a tool call is required (`"required"` or a named
    function); with a response schema (`answer`) the answer must match it instead of
    being free text. `thinking` comes first so the reasoning precedes the decision.
    """
    branches: list[dict[str, Any]] = []
    for tool in selected_tools(tools, tool_choice):
        fn = _tool_function(tool)
        branches.append({
            "type": "object",
            "properties": {
                "tool": {"const": fn["name"]},
                "arguments": bound_schema(_params_schema(fn), bounds),
            },
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        })
    forced = tool_choice == "required" or isinstance(tool_choice, dict)
    if not forced:
        branches.append({
            "type": "object",
            "properties": {"answer": bound_schema(answer, bounds) if answer else {"type": "string", "maxLength": bounds.answer}},
            "required": ["answer"],
            "additionalProperties": False,
        })
    action: dict[str, Any] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    return _wrap(action, "action", thinking, bounds)


def answer_schema(response_schema: dict[str, Any] | None, *, thinking: bool, bounds: Bounds) -> dict[str, Any]:
    """Schema for a reply without tools: the response schema itself, or thinking + answer."""
    if response_schema is not None:
        bounded = bound_schema(response_schema, bounds)
        return _wrap(bounded, "answer", True, bounds) if thinking else bounded
    return _wrap({"type": "string", "maxLength": bounds.answer}, "answer", thinking, bounds)


def _wrap(value: dict[str, Any], key: str, thinking: bool, bounds: Bounds) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if thinking:
        props["thinking"] = {"type": "string", "minLength": 1, "maxLength": bounds.thinking}
    props[key] = value
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def describe_tools(tools: list[dict[str, Any]], *, thinking: bool) -> str:
    """A short system-prompt block naming the tools and the reply format.

    It does not depend on `tool_choice` (the grammar enforces that): a system prompt that
    changed between steps would invalidate the whole KV prefix cache at every step."""
    lines = ["You can use these tools:"]
    for tool in tools:
        fn = _tool_function(tool)
        props = (fn.get("parameters") or {}).get("properties") or {}
        args = ", ".join(props) if props else ""
        desc = (fn.get("description") or "").strip().splitlines()[0] if fn.get("description") else ""
        lines.append(f"- {fn['name']}({args})" + (f": {desc}" if desc else ""))
    think = 'first "thinking" (your short step-by-step reasoning about the request), then ' if thinking else ""
    call = '"action": {"tool": <tool name>, "arguments": {<its arguments>}} to call a tool'
    answer = ', or "action": {"answer": <your reply>} to answer directly'
    lines.append(f"Reply with one JSON object holding {think}{call}{answer}.")
    return "\n".join(lines)


# ---- streaming reader -----------------------------------------------------------------------
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def read_json_string(text: str, start: int) -> tuple[str, int | None]:
    """Decode the JSON string body beginning at `text[start]` (just after the quote).

    Returns what can be decoded so far and the index just past the closing quote, or None
    while the string is still open. An escape cut off at the end of `text` is left for
    the next call, so deltas never contain half an escape.
    """
    out: list[str] = []
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = text[i + 1]
        if e == "u":
            if i + 6 > n:
                break
            code = int(text[i + 2 : i + 6], 16)
            if 0xD800 <= code < 0xDC00:  # surrogate pair: need the low half too
                if i + 12 > n:
                    break
                low = int(text[i + 8 : i + 12], 16)
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                i += 12
                continue
            out.append(chr(code))
            i += 6
            continue
        out.append(_ESCAPES.get(e, e))
        i += 2
    return "".join(out), None


@dataclass
class StringField:
    """One string field to stream out of growing JSON text, located by a regex."""

    pattern: re.Pattern[str]
    emitted: int = 0
    start: int | None = None
    end: int | None = None

    def delta(self, text: str, after: int = 0) -> str:
        """New characters of the field's value since the last call ('' when none)."""
        if self.end is not None:
            return ""
        if self.start is None:
            m = self.pattern.search(text, after)
            if m is None:
                return ""
            self.start = m.end()
        value, self.end = read_json_string(text, self.start)
        new = value[self.emitted :]
        self.emitted = len(value)
        return new


@dataclass
class ReplyStreamer:
    """Streams the thinking and the answer text of a constrained reply as they grow.

    Keys are produced in schema order (thinking first), so the first match of each
    pattern after the previous field's end is the right one.
    """

    thinking: bool
    answer_pattern: re.Pattern[str] | None
    think_field: StringField = field(init=False)
    answer_field: StringField | None = field(init=False)

    def __post_init__(self) -> None:
        self.think_field = StringField(re.compile(r'^\s*\{\s*"thinking"\s*:\s*"'))
        self.answer_field = StringField(self.answer_pattern) if self.answer_pattern is not None else None

    @property
    def thinking_done(self) -> bool:
        return not self.thinking or self.think_field.end is not None

    def feed(self, text: str) -> tuple[str, str]:
        """(new reasoning, new answer text) given the whole reply so far."""
        reasoning = self.think_field.delta(text) if self.thinking else ""
        answer = ""
        if self.answer_field is not None and self.thinking_done:
            answer = self.answer_field.delta(text, self.think_field.end or 0)
        return reasoning, answer


PLAIN_ANSWER = re.compile(r'"answer"\s*:\s*"')
ACTION_ANSWER = re.compile(r'"action"\s*:\s*\{\s*"answer"\s*:\s*"')
