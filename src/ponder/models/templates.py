"""Raw chat templates, so a raw-completions backend can render a conversation itself.

A `/v1/completions` endpoint or an in-process engine takes one prompt string; the
server-side Jinja template is bypassed, so ponder must reproduce it. These are pure
functions that follow the published templates rule for rule (sources in
/work/shared/reference/glm-4.7.md §3–4 and kimi-k2.5.md §4):

- which earlier reasoning is re-sent matters: both model families were trained with a
  specific keep/drop rule, and prefix caching only hits when the rendering of the
  history is stable between calls;
- whitespace matters: GLM-4.7 has no newlines between segments, and a stray one
  changes tokenisation.

Each `RawChatFormat` also says how to read the model's answer (which parser format,
whether the output starts inside reasoning, which stop strings end a turn).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.messages import Message, ToolCall
from .parsers import RawFormat, RawOutputParser

__all__ = [
    "KIMI_DEFAULT_SYSTEM",
    "RAW_CHAT_FORMATS",
    "RawChatFormat",
    "glm_tool_call",
    "kimi_tool_call_id",
    "render_glm47",
    "render_kimi_k2",
]

# ---------------------------------------------------------------------------- GLM-4.7

_GLM_TOOLS_HEAD = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_GLM_TOOLS_TAIL = (
    "</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n"
    "<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value>"
    "<arg_key>{arg-key-2}</arg_key><arg_value>{arg-value-2}</arg_value>...</tool_call>"
)


def _call_arguments(tc: ToolCall) -> dict[str, Any]:
    if tc.arguments or not tc.raw_arguments:
        return tc.arguments
    try:
        parsed = json.loads(tc.raw_arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def glm_tool_call(tc: ToolCall) -> str:
    """One call in GLM-4.7 syntax: strings raw, every other value as JSON (the template's `tojson`)."""
    parts = ["<tool_call>", tc.name]
    for key, value in _call_arguments(tc).items():
        v = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"<arg_key>{key}</arg_key><arg_value>{v}</arg_value>")
    parts.append("</tool_call>")
    return "".join(parts)


def _glm_split_reasoning(m: Message) -> tuple[str, str]:
    """(reasoning, content); like the template, fall back to `<think>` markup inside content."""
    content = m.content or ""
    if m.reasoning is not None:
        return m.reasoning.text, content
    if "</think>" in content:
        before, after = content.split("</think>")[0], content.split("</think>")[-1]
        return before.rstrip("\n").split("<think>")[-1].lstrip("\n"), after.lstrip("\n")
    return "", content


def render_glm47(
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    thinking: bool = True,
    clear_thinking: bool = True,
    add_generation_prompt: bool = True,
) -> str:
    """The GLM-4.7 prompt (HF `zai-org/GLM-4.7` chat_template.jinja, rendered with trim_blocks).

    Reasoning of an assistant turn is kept iff `clear_thinking` is False (preserved
    thinking) or the turn comes after the last user message (the current tool loop);
    otherwise only `</think>` is written. `thinking=False` ends the prompt with
    `<|assistant|></think>` (turn-level thinking off).
    """
    out = ["[gMASK]<sop>"]
    if tools:
        out.append(_GLM_TOOLS_HEAD)
        out.extend(json.dumps(t, ensure_ascii=False) + "\n" for t in tools)
        out.append(_GLM_TOOLS_TAIL)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    for i, m in enumerate(messages):
        if m.role == "user":
            out.append("<|user|>" + (m.content or ""))
        elif m.role == "system":
            out.append("<|system|>" + (m.content or ""))
        elif m.role == "assistant":
            reasoning, content = _glm_split_reasoning(m)
            out.append("<|assistant|>")
            if ((not clear_thinking) or i > last_user) and reasoning:
                out.append("<think>" + reasoning.strip() + "</think>")
            else:
                out.append("</think>")
            out.append(content.strip())
            out.extend(glm_tool_call(tc) for tc in m.tool_calls)
        else:  # tool: consecutive results share one <|observation|>
            if i == 0 or messages[i - 1].role != "tool":
                out.append("<|observation|>")
            out.append("<tool_response>" + (m.content or "") + "</tool_response>")
    if add_generation_prompt:
        out.append("<|assistant|>" + ("<think>" if thinking else "</think>"))
    return "".join(out)


# ---------------------------------------------------------------------------- Kimi K2 / K2.5

KIMI_DEFAULT_SYSTEM = "You are Kimi, an AI assistant created by Moonshot AI."
_KIMI_ID = re.compile(r"functions\.[^:\s]+:\d+")


def kimi_tool_call_id(call_id: str, name: str, index: int) -> str:
    """Kimi ids are `functions.NAME:IDX` (idx 0-based within the turn); others are rewritten to that."""
    return call_id if _KIMI_ID.fullmatch(call_id) else f"functions.{name}:{index}"


def _kimi_header(m: Message) -> str:
    role_name = m.name or m.role
    tag = {"user": "<|im_user|>", "assistant": "<|im_assistant|>"}.get(m.role, "<|im_system|>")
    return f"{tag}{role_name}<|im_middle|>"


def render_kimi_k2(
    messages: Sequence[Message],
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    thinking: bool = True,
    preserve_thinking: bool = False,
    add_generation_prompt: bool = True,
) -> str:
    """The Kimi K2-Thinking / K2.5 prompt.

    History is split after the last assistant message without tool calls: turns up to
    and including it are rendered with blank `<think></think>`; later turns (the current
    tool-call chain) keep `<think>{reasoning}</think>`. `preserve_thinking=True` (K2.6's
    kwarg) keeps every turn's reasoning. `thinking=False` pre-fills `<think></think>`
    after the generation prompt (K2.5 instant mode).
    """
    out: list[str] = []
    if tools:
        out.append(
            "<|im_system|>tool_declare<|im_middle|>"
            + json.dumps(list(tools), separators=(",", ":"), ensure_ascii=False)
            + "<|im_end|>"
        )
    if not messages or messages[0].role != "system":
        out.append(f"<|im_system|>system<|im_middle|>{KIMI_DEFAULT_SYSTEM}<|im_end|>")
    split = -1
    if not preserve_thinking:
        for idx in range(len(messages) - 1, -1, -1):
            if messages[idx].role == "assistant" and not messages[idx].tool_calls:
                split = idx
                break
    ids: dict[str, str] = {}  # original call id -> rendered Kimi id, for the tool results
    for i, m in enumerate(messages):
        out.append(_kimi_header(m))
        if m.role == "assistant":
            reasoning = m.reasoning.text if (m.reasoning is not None and i > split) else ""
            out.append(f"<think>{reasoning}</think>{m.content or ''}")
            if m.tool_calls:
                out.append("<|tool_calls_section_begin|>")
                for k, tc in enumerate(m.tool_calls):
                    kid = kimi_tool_call_id(tc.id, tc.name, k)
                    ids[tc.id] = kid
                    args = (
                        tc.raw_arguments
                        if tc.raw_arguments is not None
                        else json.dumps(tc.arguments, ensure_ascii=False)
                    )
                    out.append(f"<|tool_call_begin|>{kid}<|tool_call_argument_begin|>{args}<|tool_call_end|>")
                out.append("<|tool_calls_section_end|>")
        elif m.role == "tool":
            call_id = m.tool_call_id or ""
            out.append(f"## Return of {ids.get(call_id, call_id)}\n{m.content or ''}")
        elif m.content is not None:
            out.append(m.content)
        out.append("<|im_end|>")
    if add_generation_prompt:
        out.append("<|im_assistant|>assistant<|im_middle|>")
        if not thinking:
            out.append("<think></think>")
    return "".join(out)


# ---------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RawChatFormat:
    """Everything a raw-completions backend needs for one model family."""

    name: str
    parser_format: RawFormat
    render: Callable[..., str]
    stop: tuple[str, ...]
    prefills_reasoning: bool  # with thinking on, the prompt ends inside <think>

    def starts_in_reasoning(self, thinking: bool) -> bool:
        return thinking and self.prefills_reasoning

    def parser(
        self, tools_schema: Sequence[dict[str, Any]] | None = None, *, thinking: bool = True
    ) -> RawOutputParser:
        return RawOutputParser(self.parser_format, tools_schema, self.starts_in_reasoning(thinking))


RAW_CHAT_FORMATS: dict[str, RawChatFormat] = {
    "glm47": RawChatFormat(
        "glm47", "glm47", render_glm47, ("<|user|>", "<|observation|>", "<|system|>", "<|endoftext|>"), True
    ),
    "kimi_k2": RawChatFormat("kimi_k2", "kimi_k2", render_kimi_k2, ("<|im_end|>",), False),
}
