"""The OpenAI chat-completions request as ponder accepts it, and OpenAI's error shape.

Only what ponder acts on is modelled; every other field a client sends (`user`, `metadata`,
`parallel_tool_calls`, penalties, ...) is accepted and ignored rather than forwarded, so a
client can never smuggle provider parameters past the catalog's rules. ponder's own options
sit in one extension object, `ponder`, which the `openai` SDK sends through `extra_body`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core import fastjson

Role = Literal["system", "developer", "user", "assistant", "tool"]


class APIError(Exception):
    """An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json_bytes(self) -> bytes:
        return fastjson.dumps(self.body()).encode()


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionCall(_Loose):
    name: str
    arguments: str | dict[str, Any] = ""


class ToolCallIn(_Loose):
    id: str
    type: str = "function"
    function: FunctionCall


class MessageIn(_Loose):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    # clients that keep the reasoning send it back under one of these
    reasoning_content: str | None = None
    reasoning: str | None = None


class StreamOptions(_Loose):
    include_usage: bool = False


class PonderOptions(BaseModel):
    """ponder's extension fields (`extra_body={"ponder": {...}}` with the openai SDK)."""

    model_config = ConfigDict(extra="forbid")

    reasoning_format: Literal["reasoning_content", "think_tags"] | None = None
    max_steps: int | None = Field(default=None, ge=1, le=200)
    max_cost_usd: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    max_parallel: int | None = Field(default=None, ge=1, le=100)
    max_agents: int | None = Field(default=None, ge=1, le=100)


class ChatCompletionRequest(_Loose):
    model: str = Field(min_length=1, max_length=1000)
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    # thinking on/off: "on" | "off" | "auto", or Z.ai's {"type": "enabled" | "disabled"}
    thinking: str | dict[str, Any] | None = None
    # llama.cpp's server field; ponder reads "think_tags" (or "none": thoughts left in content)
    reasoning_format: str | None = None
    ponder: PonderOptions | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int | None) -> int | None:
        if v is not None and v != 1:
            raise ValueError("ponder answers with one choice: drop n or set n=1")
        return v

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, t in enumerate(v or ()):
            fn = t.get("function") if isinstance(t, dict) else None
            if t.get("type", "function") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise ValueError(f"tools[{i}] is not a function tool: send "
                                 '{"type": "function", "function": {"name": ..., "parameters": {...}}}')
        return v

    def thinking_mode(self) -> Literal["on", "off", "auto"] | None:
        t = self.thinking
        if t is None:
            return None
        if isinstance(t, dict):
            kind = t.get("type")
            if kind in ("enabled", "disabled"):
                return "on" if kind == "enabled" else "off"
        elif t in ("on", "off", "auto"):
            return t  # type: ignore[return-value]
        raise APIError(400, f"thinking must be 'on', 'off' or 'auto' (or {{'type': 'enabled'|'disabled'}}), not {t!r}",
                       param="thinking")

    def think_tags(self) -> bool:
        """Whether reasoning goes inside `content` as <think>…</think> (for clients that show
        only content): `ponder.reasoning_format = "think_tags"` or llama.cpp's `reasoning_format`."""
        if self.ponder is not None and self.ponder.reasoning_format is not None:
            return self.ponder.reasoning_format == "think_tags"
        return self.reasoning_format in ("think_tags", "none")


def validation_message(errors: list[Any]) -> tuple[str, str | None]:
    """One line from pydantic's errors: where and what (the first error; how many more)."""
    e = errors[0]
    loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return (f"{loc}: {msg}{more}" if loc else f"{msg}{more}"), (loc or None)
