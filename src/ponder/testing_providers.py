"""Test doubles, named as such: scripted HTTP servers that emulate providers' documented
contracts (Kimi K2.6, Kimi K3, GLM-5.2, DeepSeek V4), built on `MockOpenAIServer`.

They exist so `ponder probe` and the refusal rules can be tested end to end over real HTTP
without an API key. Each emulator enforces its contract the way the provider's docs say
(shared/reference/providers-2026.md): a fixed sampling parameter sent with any value is a
400, a rejected `tool_choice` is a 400, `thinking: disabled` on an always-thinking model is a
400, a missing `reasoning_content` on a required turn is a 400 when the contract is strict.
Its prompt-token count renders earlier reasoning only as the contract's replay policy
says, so "accepted and rendered" can be told from "accepted and ignored". Never a product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .testing_http import MockOpenAIServer, MockReply, sse_text_reply

SAMPLING = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty")


@dataclass
class Contract:
    """What one provider's docs say, as an emulator enforces it."""

    name: str
    fixed_sampling: tuple[str, ...] = ()
    rejected_tool_choice: tuple[str, ...] = ()  # kinds: required, function, ...
    thinking: Literal["toggle", "always"] = "toggle"
    # how preserved replay is asked for: (dotted path, value), or None
    preserve_flag: tuple[str, Any] | None = None
    always_preserve: bool = False
    required_reasoning: Literal["none", "tool-calls", "all"] = "none"  # 400 when the field is absent
    effort_levels: tuple[str, ...] | None = None  # None: any value accepted
    vision: bool = False
    cached_field: Literal["details", "top", "deepseek"] = "details"
    parallel_tool_calls: bool = True
    reasoning_field: str = "reasoning_content"


def kimi_k26(strict: bool = True) -> Contract:
    """K2.6: thinking.keep "all" preserves; fixed sampling; tool_choice "required" rejected (and,
    with thinking on, anything but auto/none); `strict`: the docs' 400 on a missing
    reasoning_content in tool-call turns (Sep 2026 reports: no longer enforced)."""
    return Contract("kimi-k2.6", fixed_sampling=SAMPLING, rejected_tool_choice=("required", "function"),
                    preserve_flag=("thinking.keep", "all"), required_reasoning="tool-calls" if strict else "none",
                    cached_field="top")


def kimi_k3(strict: bool = True) -> Contract:
    """K3: always thinks; reasoning must be replayed in every multi-turn and tool loop; fixed sampling."""
    return Contract("kimi-k3", fixed_sampling=SAMPLING, rejected_tool_choice=("required", "function"),
                    thinking="always", always_preserve=True, required_reasoning="all" if strict else "none",
                    cached_field="top")


def glm_52() -> Contract:
    """GLM-5.2 on Z.ai: thinking.type on/off, clear_thinking false preserves, reasoning_effort max|high,
    a missing reasoning_content is not rejected."""
    return Contract("glm-5.2", preserve_flag=("thinking.clear_thinking", False), effort_levels=("max", "high"))


def deepseek_v4(strict: bool = True) -> Contract:
    """DeepSeek V4: thinking on by default, reasoning_effort high|max; the docs' 400 when a tool-call
    turn's reasoning_content is not passed back (`strict`); no preservation across user turns."""
    return Contract("deepseek-v4-flash", effort_levels=("high", "max"),
                    required_reasoning="tool-calls" if strict else "none", cached_field="deepseek")


def _get(payload: dict[str, Any], path: str) -> Any:
    cur: Any = payload
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _error(message: str, status: int = 400) -> MockReply:
    return MockReply(status=status, json_body={"error": {"message": message, "type": "invalid_request_error"}})


@dataclass
class ProviderEmulator:
    """A `MockOpenAIServer` handler enforcing a `Contract`. `async with emulated(contract) as srv`."""

    contract: Contract
    seen: set[str] = field(default_factory=set)

    def __call__(self, p: dict[str, Any], n: int) -> MockReply:
        c = self.contract
        for k in c.fixed_sampling:
            if k in p:
                return _error(f"invalid {k}: {c.name} uses a fixed value for {k}; do not set it")
        choice = p.get("tool_choice")
        if p.get("tools") and choice is not None:
            kind = "function" if isinstance(choice, dict) else str(choice)
            if kind in c.rejected_tool_choice:
                return _error(f"tool_choice '{kind}' is incompatible with thinking enabled")
        thinking_on = _get(p, "thinking.type") != "disabled"
        if c.thinking == "always" and not thinking_on:
            return _error(f"thinking cannot be disabled for {c.name}")
        effort = p.get("reasoning_effort")
        if effort is not None and c.effort_levels is not None and effort not in c.effort_levels:
            return _error(f"invalid reasoning_effort '{effort}': expected one of {', '.join(c.effort_levels)}")
        msgs = p.get("messages") or []
        for i, m in enumerate(msgs):
            if isinstance(m.get("content"), list) and any(part.get("type") == "image_url" for part in m["content"]):
                if not c.vision:
                    return _error(f"{c.name} does not support image input")
            if m.get("role") == "assistant" and thinking_on and "reasoning_content" not in m:
                if c.required_reasoning == "all" or (c.required_reasoning == "tool-calls" and m.get("tool_calls")):
                    return _error(f"thinking is enabled but reasoning_content is missing in assistant tool call message "
                                  f"at index {i}")
        prompt = self._prompt_tokens(p, msgs)
        key = json.dumps(msgs, sort_keys=True)
        cached = prompt if key in self.seen else 0
        self.seen.add(key)
        reasoning = "Let me think about what is asked here." if thinking_on else ""
        calls = self._tool_calls(p, msgs)
        content = "" if calls else "ok"
        completion = len(reasoning.split()) + max(1, len(content.split())) + 6 * len(calls)
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "completion_tokens_details": {"reasoning_tokens": len(reasoning.split())}}
        if c.cached_field == "top":
            usage["cached_tokens"] = cached
        elif c.cached_field == "deepseek":
            usage["prompt_cache_hit_tokens"] = cached
        else:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        if p.get("stream"):
            include = bool((p.get("stream_options") or {}).get("include_usage"))
            return sse_text_reply(content=content, reasoning=reasoning, tool_calls=calls or None,
                                  usage=usage if include else None, reasoning_field=c.reasoning_field)
        msg: dict[str, Any] = {"role": "assistant", "content": content or None}
        if reasoning:
            msg[c.reasoning_field] = reasoning
        if calls:
            msg["tool_calls"] = [{"id": f"functions.{tc['name']}:{i}", "type": "function",
                                  "function": {"name": tc["name"], "arguments": json.dumps(tc["arguments"])}}
                                 for i, tc in enumerate(calls)]
        return MockReply(json_body={"id": f"emu-{n}", "object": "chat.completion", "model": p.get("model"),
                                    "choices": [{"index": 0, "message": msg,
                                                 "finish_reason": "tool_calls" if calls else "stop"}],
                                    "usage": usage})

    def _prompt_tokens(self, p: dict[str, Any], msgs: list[dict[str, Any]]) -> int:
        """Words of what the template would render: earlier reasoning only per the replay policy."""
        c = self.contract
        preserved = c.always_preserve or (c.preserve_flag is not None and _get(p, c.preserve_flag[0]) == c.preserve_flag[1])
        last_user = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=-1)
        words = 0
        for i, m in enumerate(msgs):
            content = m.get("content")
            if isinstance(content, list):
                words += sum(len(str(part.get("text", "")).split()) + (85 if part.get("type") == "image_url" else 0)
                             for part in content)
            else:
                words += len(str(content or "").split())
            if m.get("role") == "assistant" and (preserved or i > last_user):
                words += len(str(m.get("reasoning_content") or "").split())
            words += 4
        return words

    def _tool_calls(self, p: dict[str, Any], msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tools = p.get("tools") or []
        if not tools or p.get("tool_choice") == "none" or not msgs or msgs[-1].get("role") != "user":
            return []
        choice = p.get("tool_choice")
        name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        name = name or tools[0]["function"]["name"]
        text = str(msgs[-1].get("content") or "")
        cities = [w.strip(".,?:;!") for w in text.split() if w.strip(".,?:;!") in ("Paris", "Tokyo", "Lima")]
        cities = cities or ["Paris"]
        if not self.contract.parallel_tool_calls or isinstance(choice, dict):
            cities = cities[:1]
        return [{"name": name, "arguments": {"city": city}, "id": f"functions.{name}:{i}"} for i, city in enumerate(cities)]


def emulated(contract: Contract) -> MockOpenAIServer:
    """A real HTTP server on 127.0.0.1 answering as `contract` says (use with `async with`)."""
    return MockOpenAIServer(ProviderEmulator(contract))
