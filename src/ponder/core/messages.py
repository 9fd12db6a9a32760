"""The conversation model.

Reasoning is a first-class part of an assistant message, kept verbatim together with
the model and dialect that produced it: providers (Kimi, GLM, DeepSeek) reject or
degrade a multi-turn conversation whose earlier reasoning was dropped or edited, and
the preserved-reasoning engine must be able to send it back exactly as received.

`Message` is a frozen pydantic model (it crosses every boundary: sessions, the store, the
wire caches). Its parts (`Reasoning`, `ToolCall`) and `Usage` are slotted dataclasses:
every model call makes them, and a dataclass is a fraction of the cost (and one object for
the garbage collector instead of three or four). Pydantic validates and serializes them
as fields of the models that hold them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError

Role = Literal["system", "user", "assistant", "tool"]

MAX_IMAGE_BYTES = 20 * 2**20
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(slots=True, frozen=True, kw_only=True)
class Image:
    """An image input on a message, as the URL the provider fetches or decodes: `https://…`
    or a `data:image/…;base64,…` URL (a local file becomes one, see `from_source`). Dialects
    send it as an OpenAI `image_url` content part; models whose profile has no vision
    refuse a request carrying one before it is sent."""

    url: str
    detail: str | None = None  # "low" | "high" | "auto" where the provider supports it

    @classmethod
    def from_source(cls, src: str | Path, *, detail: str | None = None) -> Image:
        """A file path, an http(s) URL or a data URL. A file is read and inlined as a data URL
        (its type is taken from its bytes, not its name); a bad one is a ConfigError saying why."""
        s = str(src)
        if s.startswith(("http://", "https://")):
            return cls(url=s, detail=detail)
        if s.startswith("data:"):
            head, sep, _ = s.partition(",")
            if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
                raise ConfigError(f"image data URL must look like data:image/png;base64,...; got {s[:40]!r}")
            return cls(url=s, detail=detail)
        path = Path(s).expanduser()
        if not path.is_file():
            raise ConfigError(f"image {s!r} is not a file (give a path to a PNG, JPEG, GIF or WebP image, or an "
                              "http(s)/data URL)")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ConfigError(f"image {s!r} is {size / 2**20:.1f} MiB; the limit is {MAX_IMAGE_BYTES // 2**20} MiB "
                              "(resize it, or pass an http(s) URL)")
        data = path.read_bytes()
        mime = _image_type(data)
        if mime is None:
            raise ConfigError(f"image {s!r} is not a PNG, JPEG, GIF or WebP image (by its contents)")
        return cls(url=f"data:{mime};base64,{base64.b64encode(data).decode()}", detail=detail)

    def part(self) -> dict[str, Any]:
        """The OpenAI `image_url` content part."""
        inner: dict[str, Any] = {"url": self.url}
        if self.detail:
            inner["detail"] = self.detail
        return {"type": "image_url", "image_url": inner}


def _image_type(data: bytes) -> str | None:
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(slots=True, kw_only=True)
class Reasoning:
    """The model's thinking for one assistant turn, byte-for-byte as it arrived."""

    text: str
    model: str | None = None
    dialect: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolCall:
    """One complete tool call. `arguments` is parsed; `raw_arguments` is what the model wrote."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    parse_error: str | None = None  # set when the model's arguments were not valid JSON

    def arguments_json(self) -> str:
        """The arguments as sent back on the wire: verbatim when the model wrote them."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments)


class Message(BaseModel):
    """One conversation turn. Frozen: a message sent to a model is history and never changes,
    which lets dialects cache each message's wire JSON across the many calls that re-send it."""

    # The wire cache lives in a plain slot, not a pydantic private attribute: private
    # attributes cost a per-instance dict and an init hook on every message built, and
    # pydantic neither validates, serializes, compares nor copies a slot.
    __slots__ = ("_wire_cache",)
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str | None = None
    reasoning: Reasoning | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None  # role == "tool": the call this result answers
    name: str | None = None  # role == "tool": the tool's name
    # role == "user": image inputs, sent before the text. None (not []) when there are none, so
    # messages without images serialize exactly as before (exclude_none: events, trajectories)
    images: list[Image] | None = None
    # The exact text the model generated for this turn, when the backend knows it (embedded,
    # raw completions): re-rendering it byte-for-byte keeps the KV prefix cache valid.
    raw: str | None = None

    def wire_cache(self) -> dict[tuple[object, ...], Any]:
        """This message's wire-JSON cache (per dialect and rendering), made on first use. A copy
        (`model_copy`) starts without one: it is a different message."""
        try:  # the slot itself: an unset slot must not fall through to pydantic's slow __getattr__
            return _WIRE_SLOT.__get__(self, Message)  # type: ignore[no-any-return]
        except AttributeError:
            cache: dict[tuple[object, ...], Any] = {}
            _WIRE_SLOT.__set__(self, cache)
            return cache

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role="system", content=text)

    @classmethod
    def user(cls, text: str, images: list[Image | str | Path] | None = None) -> Message:
        """A user turn; `images` may be `Image`s, file paths, http(s) URLs or data URLs."""
        if not images:
            return cls(role="user", content=text)
        return cls(role="user", content=text,
                   images=[i if isinstance(i, Image) else Image.from_source(i) for i in images])

    @classmethod
    def assistant(
        cls,
        content: str | None = None,
        *,
        reasoning: Reasoning | str | None = None,
        tool_calls: list[ToolCall] | None = None,
    ) -> Message:
        if isinstance(reasoning, str):
            reasoning = Reasoning(text=reasoning)
        return cls(role="assistant", content=content, reasoning=reasoning, tool_calls=tool_calls or [])

    @classmethod
    def tool(cls, call_id: str, content: str, name: str | None = None) -> Message:
        return cls(role="tool", content=content, tool_call_id=call_id, name=name)


_WIRE_SLOT = Message.__dict__["_wire_cache"]  # the slot's descriptor


@dataclass(slots=True, kw_only=True)
class Usage:
    """Token counts of one call or an aggregate. Reasoning tokens are part of completion tokens."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        """Add `other` in place (running totals: no new object per call)."""
        self.prompt_tokens += other.prompt_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens

    def __add__(self, other: Usage) -> Usage:
        total = Usage(prompt_tokens=self.prompt_tokens, cached_prompt_tokens=self.cached_prompt_tokens,
                      completion_tokens=self.completion_tokens, reasoning_tokens=self.reasoning_tokens)
        total.add(other)
        return total
