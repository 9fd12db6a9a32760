"""Streaming parsers for raw model output (reasoning, content and tool calls in one text).

A raw-completions backend (a `/v1/completions` endpoint, an in-process engine) gets
the model's text with its markup still in it: `<think>…</think>` around reasoning and a
model-specific syntax for tool calls. These parsers split that text as it streams.

Design constraints, and why:
- A tag may arrive split across chunks at any position, so every parser is a small
  state machine over a buffer. Plain text is emitted as soon as it cannot be the start
  of a tag: only the longest suffix that is still a prefix of a tag is held back, so
  "a<" holds "<" but "ab" goes out at once (TTFT and live display depend on it).
- The result must not depend on how the text was chunked: merging adjacent text
  pieces of a chunked parse gives exactly the single-feed parse (property-tested).
- Model output is untrusted. Nothing here raises on bad text: a malformed or
  unterminated tool call becomes a `ParseProblem` piece carrying the raw text, so the
  caller can report it to the model instead of crashing the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.messages import ToolCall

__all__ = [
    "ContentText",
    "GlmToolCallParser",
    "KimiK2ToolCallParser",
    "ParseProblem",
    "ParsedError",
    "ParsedOutput",
    "ParsedPiece",
    "ParsedToolCall",
    "RawFormat",
    "RawOutputParser",
    "ReasoningText",
    "StreamParser",
    "ThinkParser",
    "merge_pieces",
    "parse_raw",
]

# ---------------------------------------------------------------------------- pieces


@dataclass(frozen=True, slots=True)
class ReasoningText:
    text: str


@dataclass(frozen=True, slots=True)
class ContentText:
    text: str


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    """One complete tool call.

    `raw` is the call's full markup as the model wrote it (for logs and bug reports);
    `raw_arguments` is the argument JSON verbatim where the format has one (Kimi), so it
    can be echoed back byte-for-byte; GLM's XML-ish arguments have no JSON form.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw: str
    raw_arguments: str | None = None

    def to_tool_call(self) -> ToolCall:
        return ToolCall(
            id=self.id, name=self.name, arguments=dict(self.arguments), raw_arguments=self.raw_arguments
        )


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A construct the parser could not turn into a call (bad JSON, missing end tag…)."""

    message: str
    raw: str


ParsedError = ParseProblem  # the name some callers know it by
ParsedPiece = ReasoningText | ContentText | ParsedToolCall | ParseProblem
RawFormat = Literal["glm47", "glm45", "kimi_k2", "think"]


def merge_pieces(pieces: Iterable[ParsedPiece]) -> list[ParsedPiece]:
    """Join adjacent text pieces of the same kind and drop empty ones (chunking-neutral view)."""
    out: list[ParsedPiece] = []
    for p in pieces:
        if isinstance(p, ReasoningText | ContentText):
            if not p.text:
                continue
            last = out[-1] if out else None
            if type(last) is type(p):
                out[-1] = type(p)(last.text + p.text)  # type: ignore[union-attr]
                continue
        out.append(p)
    return out


@dataclass
class ParsedOutput:
    """A whole output, summarised: what a non-streaming caller wants."""

    reasoning: str = ""
    content: str = ""
    tool_calls: list[ParsedToolCall] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)

    @classmethod
    def from_pieces(cls, pieces: Iterable[ParsedPiece]) -> ParsedOutput:
        r: list[str] = []
        c: list[str] = []
        out = cls()
        for p in pieces:
            if isinstance(p, ReasoningText):
                r.append(p.text)
            elif isinstance(p, ContentText):
                c.append(p.text)
            elif isinstance(p, ParsedToolCall):
                out.tool_calls.append(p)
            else:
                out.problems.append(p)
        out.reasoning = "".join(r)
        out.content = "".join(c)
        return out


# ---------------------------------------------------------------------------- tags

THINK_START = "<think>"
THINK_END = "</think>"
GLM_CALL_START = "<tool_call>"
GLM_CALL_END = "</tool_call>"
KIMI_SECTION_BEGIN = "<|tool_calls_section_begin|>"
KIMI_SECTION_END = "<|tool_calls_section_end|>"
KIMI_CALL_BEGIN = "<|tool_call_begin|>"
KIMI_ARG_BEGIN = "<|tool_call_argument_begin|>"
KIMI_CALL_END = "<|tool_call_end|>"

_GLM_ARG = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)

# modes of the state machine
_CONTENT = "content"
_REASONING = "reasoning"
_GLM_CALL = "glm_call"  # buffering one <tool_call> body
_KIMI_SECTION = "kimi_section"  # between calls inside a tool-calls section
_KIMI_CALL = "kimi_call"  # buffering one <|tool_call_begin|> body
_TEXT_MODES = (_CONTENT, _REASONING)
_CALL_STARTS = (GLM_CALL_START, KIMI_SECTION_BEGIN)


def _schema_types(tools_schema: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """tool name -> {arg name: declared JSON-schema type}, from OpenAI function-tool schemas."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools_schema or ():
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function", tool)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters") or {}
        props = params.get("properties") if isinstance(params, dict) else None
        types: dict[str, Any] = {}
        if isinstance(props, dict):
            for key, spec in props.items():
                if isinstance(spec, dict) and "type" in spec:
                    types[key] = spec["type"]
        out[fn["name"]] = types
    return out


def _is_non_string_type(t: Any) -> bool:
    if isinstance(t, str):
        return t != "string"
    if isinstance(t, list):
        return bool(t) and "string" not in t
    return False


# ---------------------------------------------------------------------------- engine


class StreamParser:
    """The shared state machine; subclasses only choose which syntaxes are active.

    `feed()` and `close()` return the pieces completed so far. Text pieces may be split
    arbitrarily (use `merge_pieces` for a canonical view); tool calls and problems are
    emitted whole, once their end tag has arrived.
    """

    def __init__(
        self,
        *,
        think_tags: tuple[str, str] | None = None,
        starts_in_reasoning: bool = False,
        tool_format: Literal["glm", "kimi"] | None = None,
        tools_schema: Sequence[dict[str, Any]] | None = None,
        id_prefix: str = "call_",
    ) -> None:
        if think_tags is not None and (not think_tags[0] or not think_tags[1]):
            raise ValueError("think_tags must be two non-empty strings, e.g. ('<think>', '</think>')")
        if starts_in_reasoning and think_tags is None:
            raise ValueError("starts_in_reasoning=True needs think_tags (the end tag closes the reasoning)")
        self._think = think_tags
        self._tool_format = tool_format
        self._types = _schema_types(tools_schema)
        self._id_prefix = id_prefix
        self._mode = _REASONING if starts_in_reasoning else _CONTENT
        # A template that pre-fills the start tag may still see the model repeat it;
        # tolerate one leading copy rather than leaking "<think>" into the reasoning.
        self._skip_leading_start = starts_in_reasoning
        self._buf = ""
        self._scan_from = 0  # buffered modes: where the next end-tag search may start
        self._calls = 0
        self._closed = False
        self._boundary = True  # content here is leading whitespace so far (see _step)

    # -- public API -------------------------------------------------------------

    def feed(self, chunk: str) -> list[ParsedPiece]:
        if self._closed:
            raise RuntimeError("feed() after close(): create a new parser for each model call")
        self._buf += chunk
        out: list[ParsedPiece] = []
        self._drain(out, final=False)
        return out

    def close(self) -> list[ParsedPiece]:
        """Flush: held-back text goes out as text; an unterminated tool call becomes a ParseProblem."""
        if self._closed:
            return []
        out: list[ParsedPiece] = []
        self._drain(out, final=True)
        self._closed = True
        return out

    def parse(self, text: str) -> list[ParsedPiece]:
        """Feed a whole text and close; returns merged pieces."""
        return merge_pieces([*self.feed(text), *self.close()])

    @property
    def in_reasoning(self) -> bool:
        return self._mode == _REASONING

    # -- machinery --------------------------------------------------------------

    def _markers(self) -> tuple[str, ...]:
        m = self._mode
        if m == _CONTENT:
            tags: list[str] = []
            if self._think:
                tags.append(self._think[0])
            if self._tool_format == "glm":
                tags.append(GLM_CALL_START)
            elif self._tool_format == "kimi":
                tags.append(KIMI_SECTION_BEGIN)
            return tuple(tags)
        if m == _REASONING:
            assert self._think is not None
            if self._tool_format == "kimi":  # Kimi may leave reasoning straight into a tool section
                return (self._think[1], KIMI_SECTION_BEGIN)
            return (self._think[1],)
        if m == _GLM_CALL:
            return (GLM_CALL_END, GLM_CALL_START)
        if m == _KIMI_SECTION:
            return (KIMI_CALL_BEGIN, KIMI_SECTION_END)
        return (KIMI_CALL_END, KIMI_SECTION_END, KIMI_CALL_BEGIN)  # _KIMI_CALL

    def _drain(self, out: list[ParsedPiece], *, final: bool) -> None:
        while self._step(out, final):
            pass

    def _step(self, out: list[ParsedPiece], final: bool) -> bool:
        """Make one transition if the buffer allows it; False when more input is needed."""
        if self._mode == _REASONING and self._skip_leading_start:
            start = self._think[0]  # type: ignore[index]
            if not final and len(self._buf) < len(start) and start.startswith(self._buf):
                return False
            if self._buf.startswith(start):
                self._buf = self._buf[len(start) :]
            self._skip_leading_start = False

        markers = self._markers()
        buf = self._buf
        pos, tag = -1, ""
        start_at = 0 if self._mode in _TEXT_MODES else self._scan_from
        for m in markers:
            i = buf.find(m, start_at)
            if i != -1 and (pos == -1 or i < pos):
                pos, tag = i, m

        if self._mode in _TEXT_MODES:
            # At a boundary (output start, after </think> or a tool call) whitespace alone is not
            # content when a tool call or the end follows: it is held until that is known.
            held_ws = self._boundary and self._mode == _CONTENT
            if pos == -1:
                keep = 0 if final else _held_suffix(buf, markers)
                text = buf[: len(buf) - keep]
                if held_ws and not text.strip():
                    if final:
                        self._buf = ""
                    return False
                self._emit_text(out, text)
                self._boundary = self._boundary and not text
                self._buf = buf[len(buf) - keep :]
                return False
            text = buf[:pos]
            if not (held_ws and not text.strip() and tag in _CALL_STARTS):
                self._emit_text(out, text)
                if text:
                    self._boundary = False
            self._buf = buf[pos + len(tag) :]
            self._skip_leading_start = False
            self._enter_from_text(tag)
            return True

        # buffered modes: wait for the closing tag
        if pos == -1:
            if final:
                self._unterminated(out, buf)
                self._buf = ""
                return False
            longest = max(len(m) for m in markers)
            self._scan_from = max(0, len(buf) - longest + 1)
            return False
        body = buf[:pos]
        self._buf = buf[pos + len(tag) :]
        self._scan_from = 0
        self._finish_buffered(out, body, tag)
        return True

    def _emit_text(self, out: list[ParsedPiece], text: str) -> None:
        if text:
            out.append(ReasoningText(text) if self._mode == _REASONING else ContentText(text))

    def _enter_from_text(self, tag: str) -> None:
        if self._think and self._mode == _CONTENT and tag == self._think[0]:
            self._mode = _REASONING
        elif self._think and self._mode == _REASONING and tag == self._think[1]:
            self._mode = _CONTENT
            self._boundary = True
        elif tag == GLM_CALL_START:
            self._mode = _GLM_CALL
        elif tag == KIMI_SECTION_BEGIN:
            self._mode = _KIMI_SECTION

    def _finish_buffered(self, out: list[ParsedPiece], body: str, tag: str) -> None:
        mode = self._mode
        if mode == _GLM_CALL:
            if tag == GLM_CALL_END:
                out.append(self._glm_call(body))
                self._mode = _CONTENT
                self._boundary = True
            else:  # a new <tool_call> before this one ended
                out.append(
                    ParseProblem(
                        "tool call not closed with </tool_call> before the next <tool_call>",
                        GLM_CALL_START + body,
                    )
                )
        elif mode == _KIMI_SECTION:
            if body.strip():
                out.append(ParseProblem("text inside the tool-calls section, outside any tool call", body))
            self._mode = _KIMI_CALL if tag == KIMI_CALL_BEGIN else _CONTENT
            self._boundary = True
        else:  # _KIMI_CALL
            if tag == KIMI_CALL_END:
                out.append(self._kimi_call(body))
                self._mode = _KIMI_SECTION
            elif tag == KIMI_SECTION_END:
                out.append(
                    ParseProblem(
                        "tool call not closed with <|tool_call_end|> before the section ended",
                        KIMI_CALL_BEGIN + body,
                    )
                )
                self._mode = _CONTENT
                self._boundary = True
            else:
                out.append(
                    ParseProblem(
                        "tool call not closed with <|tool_call_end|> before the next call began",
                        KIMI_CALL_BEGIN + body,
                    )
                )

    def _unterminated(self, out: list[ParsedPiece], body: str) -> None:
        if self._mode == _GLM_CALL:
            out.append(
                ParseProblem("output ended inside a tool call (no </tool_call>)", GLM_CALL_START + body)
            )
        elif self._mode == _KIMI_CALL:
            out.append(
                ParseProblem("output ended inside a tool call (no <|tool_call_end|>)", KIMI_CALL_BEGIN + body)
            )
        elif body.strip():  # _KIMI_SECTION: a missing section end alone is harmless
            out.append(ParseProblem("text inside the tool-calls section, outside any tool call", body))

    def _next_id(self) -> str:
        n = self._calls
        self._calls += 1
        return f"{self._id_prefix}{n}"

    def _glm_call(self, body: str) -> ParsedPiece:
        raw = GLM_CALL_START + body + GLM_CALL_END
        cut = body.find("<arg_key>")
        name = (body if cut == -1 else body[:cut]).strip()
        if not name or "<" in name or ">" in name:
            return ParseProblem(f"tool call has no valid function name: {name!r}", raw)
        args: dict[str, Any] = {}
        leftover_at = 0
        rest = "" if cut == -1 else body[cut:]
        leftovers: list[str] = []
        types = self._types.get(name, {})
        for m in _GLM_ARG.finditer(rest):
            leftovers.append(rest[leftover_at : m.start()])
            leftover_at = m.end()
            key, value = m.group(1).strip(), m.group(2)
            declared = types.get(key)
            if declared is None:  # no schema for it: JSON other than a string is decoded (as vLLM's parser)
                args[key] = _decode_non_string(value)
            else:
                args[key] = _decode_value(value) if _is_non_string_type(declared) else value
        leftovers.append(rest[leftover_at:])
        stray = "".join(leftovers).strip()
        if stray:
            return ParseProblem(f"tool call {name!r} has malformed arguments near {stray[:60]!r}", raw)
        return ParsedToolCall(id=self._next_id(), name=name, arguments=args, raw=raw)

    def _kimi_call(self, body: str) -> ParsedPiece:
        raw = KIMI_CALL_BEGIN + body + KIMI_CALL_END
        if KIMI_ARG_BEGIN not in body:
            return ParseProblem("tool call has no <|tool_call_argument_begin|>", raw)
        call_id, args_text = body.split(KIMI_ARG_BEGIN, 1)
        call_id = call_id.strip()
        name = call_id.split(":")[0].split(".")[-1].strip()
        if not name:
            return ParseProblem(
                f"tool call id {call_id!r} names no function (expected functions.NAME:IDX)", raw
            )
        args_text = args_text.strip()
        try:
            args = json.loads(args_text) if args_text else {}
        except ValueError as e:
            return ParseProblem(f"tool call {name!r} arguments are not valid JSON: {e}", raw)
        if not isinstance(args, dict):
            return ParseProblem(
                f"tool call {name!r} arguments must be a JSON object, got {type(args).__name__}", raw
            )
        return ParsedToolCall(id=call_id, name=name, arguments=args, raw=raw, raw_arguments=args_text or "{}")


def _decode_value(value: str) -> Any:
    try:
        return json.loads(value.strip())
    except ValueError:
        return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_non_string(value: str) -> Any:
    """An object, array, number or boolean written as JSON, decoded; anything else (a JSON
    string, null, plain text) stays the raw text, whitespace and all."""
    try:
        v = json.loads(value.strip(), parse_constant=_no_constant)
    except ValueError:
        return value
    return v if isinstance(v, dict | list | int | float) else value  # (bool is an int)


def _held_suffix(buf: str, markers: Sequence[str]) -> int:
    """Length of the longest suffix of `buf` that is a proper prefix of some marker."""
    if not markers or not buf:
        return 0
    longest = max(len(m) for m in markers)
    firsts = {m[0] for m in markers}
    for i in range(max(0, len(buf) - longest + 1), len(buf)):
        if buf[i] in firsts:
            tail = buf[i:]
            if any(len(tail) < len(m) and m.startswith(tail) for m in markers):
                return len(buf) - i
    return 0


# ---------------------------------------------------------------------------- public parsers


class ThinkParser(StreamParser):
    """Reasoning extraction only: `<think>…</think>` (tags configurable)."""

    def __init__(
        self, start_tag: str = THINK_START, end_tag: str = THINK_END, *, starts_in_reasoning: bool = False
    ):
        super().__init__(think_tags=(start_tag, end_tag), starts_in_reasoning=starts_in_reasoning)


class GlmToolCallParser(StreamParser):
    """GLM tool calls only: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`.

    One tolerant grammar serves both GLM-4.7 (no newlines) and GLM-4.5/4.6 (newlines
    after the name and around each argument). Values stay raw strings, except that an
    argument whose schema type is not "string" is JSON-decoded (kept as the string when
    that fails), and an argument with no schema type is decoded when it is a JSON object,
    array, number or boolean, as vLLM's glm45/glm47 parsers do. Unlike vLLM, string values
    are not stripped: a code argument's whitespace is data.
    """

    def __init__(self, tools_schema: Sequence[dict[str, Any]] | None = None, *, id_prefix: str = "call_"):
        super().__init__(tool_format="glm", tools_schema=tools_schema, id_prefix=id_prefix)


class KimiK2ToolCallParser(StreamParser):
    """Kimi K2 tool-call sections only; ids are kept verbatim (`functions.NAME:IDX`)."""

    def __init__(self) -> None:
        super().__init__(tool_format="kimi")


_FORMATS: dict[str, Literal["glm", "kimi"] | None] = {
    "glm47": "glm",
    "glm45": "glm",
    "kimi_k2": "kimi",
    "think": None,
}


class RawOutputParser(StreamParser):
    """Reasoning + tool calls for one model family: what raw-completions backends use.

    `starts_in_reasoning=True` when the prompt ended inside `<think>` (GLM-4.7's
    generation prompt `<|assistant|><think>`, DeepSeek-R1): the output then starts as
    reasoning and the first end tag closes it.
    """

    def __init__(
        self,
        format: RawFormat = "think",
        tools_schema: Sequence[dict[str, Any]] | None = None,
        starts_in_reasoning: bool = False,
        *,
        think_tags: tuple[str, str] = (THINK_START, THINK_END),
        id_prefix: str = "call_",
    ) -> None:
        if format not in _FORMATS:
            raise ValueError(f"unknown raw output format {format!r}; use one of {sorted(_FORMATS)}")
        self.format = format
        super().__init__(
            think_tags=think_tags,
            starts_in_reasoning=starts_in_reasoning,
            tool_format=_FORMATS[format],
            tools_schema=tools_schema,
            id_prefix=id_prefix,
        )


def parse_raw(
    text: str,
    format: RawFormat = "think",
    tools_schema: Sequence[dict[str, Any]] | None = None,
    starts_in_reasoning: bool = False,
) -> ParsedOutput:
    """Parse a complete raw output in one go."""
    parser = RawOutputParser(format, tools_schema, starts_in_reasoning)
    return ParsedOutput.from_pieces(parser.parse(text))
