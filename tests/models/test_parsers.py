"""Streaming raw-output parsers: hand-checked reference strings plus chunking properties."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.models.parsers import (
    ContentText,
    GlmToolCallParser,
    KimiK2ToolCallParser,
    ParsedOutput,
    ParsedToolCall,
    ParseProblem,
    RawOutputParser,
    ReasoningText,
    ThinkParser,
    merge_pieces,
    parse_raw,
)

# sized so the whole file takes well under 30 s of CPU (CI has 2 cores)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STREAM_SETTINGS = settings(SETTINGS, max_examples=150)

ALL_TAGS = (
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    "<|tool_calls_section_begin|>",
    "<|tool_calls_section_end|>",
    "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>",
    "<|tool_call_end|>",
)


def feed_chunks(parser, text: str, cuts: list[int]) -> list:
    pieces = []
    prev = 0
    for c in sorted(set(cuts)):
        pieces += parser.feed(text[prev:c])
        prev = c
    pieces += parser.feed(text[prev:])
    pieces += parser.close()
    return pieces


# ---------------------------------------------------------------------------- reference strings


def test_glm47_reference_assistant_turn():
    # glm-4.7.md §4: the assistant segment after the generation prompt `<|assistant|><think>`
    raw = "R</think>content<tool_call>get_weather<arg_key>city</arg_key><arg_value>Beijing</arg_value></tool_call>"
    out = parse_raw(raw, "glm47", starts_in_reasoning=True)
    assert out.reasoning == "R"
    assert out.content == "content"
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls] == [
        ("call_0", "get_weather", {"city": "Beijing"})
    ]
    assert out.tool_calls[0].raw == raw[len("R</think>content") :]
    assert out.problems == []


def test_glm45_newline_variant():
    raw = "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Beijing</arg_value>\n</tool_call>"
    for fmt in ("glm45", "glm47"):
        out = parse_raw(raw, fmt)  # type: ignore[arg-type]
        assert [(c.name, c.arguments) for c in out.tool_calls] == [("get_weather", {"city": "Beijing"})]
        assert out.content == ""


def test_glm45_text_around_two_args():
    raw = (
        "Let me search for that.\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Beijing</arg_value>\n"
        "<arg_key>date</arg_key>\n<arg_value>2024-12-25</arg_value>\n</tool_call>\nThe weather will be..."
    )
    out = parse_raw(raw, "glm45")
    assert out.content == "Let me search for that.\n\nThe weather will be..."
    assert out.tool_calls[0].arguments == {"city": "Beijing", "date": "2024-12-25"}


def test_glm_call_without_arguments_and_multiple_ids():
    out = parse_raw("<tool_call>now</tool_call><tool_call>now</tool_call>", "glm47")
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls] == [
        ("call_0", "now", {}),
        ("call_1", "now", {}),
    ]


def test_glm_schema_decodes_non_string_values():
    schema = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "integer"},
                        "s": {"type": "string"},
                        "flags": {"type": "array"},
                        "opt": {"type": ["object", "null"]},
                        "bad": {"type": "integer"},
                    },
                },
            },
        }
    ]
    raw = (
        "<tool_call>f<arg_key>n</arg_key><arg_value>3</arg_value><arg_key>s</arg_key><arg_value>3</arg_value>"
        '<arg_key>flags</arg_key><arg_value>[1, "x"]</arg_value><arg_key>opt</arg_key><arg_value>{"a": null}</arg_value>'
        "<arg_key>bad</arg_key><arg_value>three</arg_value><arg_key>extra</arg_key><arg_value>7</arg_value></tool_call>"
    )
    args = parse_raw(raw, "glm47", tools_schema=schema).tool_calls[0].arguments
    assert args == {"n": 3, "s": "3", "flags": [1, "x"], "opt": {"a": None}, "bad": "three", "extra": 7}  # undeclared: decoded, as vLLM
    # without a schema, JSON other than a string (object, array, number, boolean) is decoded
    # and everything else stays the raw text, as vLLM's GLM parser does
    assert parse_raw(raw, "glm47").tool_calls[0].arguments == {
        "n": 3, "s": 3, "flags": [1, "x"], "opt": {"a": None}, "bad": "three", "extra": 7}
    raw2 = ("<tool_call>g<arg_key>b</arg_key><arg_value>true</arg_value><arg_key>q</arg_key><arg_value>\"x\"</arg_value>"
            "<arg_key>z</arg_key><arg_value>null</arg_value><arg_key>f</arg_key><arg_value> 1.5 </arg_value>"
            "<arg_key>nan</arg_key><arg_value>NaN</arg_value><arg_key>code</arg_key><arg_value>  x = 1\n</arg_value></tool_call>")
    assert parse_raw(raw2, "glm47").tool_calls[0].arguments == {
        "b": True, "q": '"x"', "z": "null", "f": 1.5, "nan": "NaN", "code": "  x = 1\n"}


@pytest.mark.parametrize("fmt", ["glm47", "kimi_k2"])
def test_whitespace_between_think_end_and_a_tool_call_is_not_content(fmt):
    call = ("<tool_call>f<arg_key>a</arg_key><arg_value>1</arg_value></tool_call>" if fmt == "glm47" else
            "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}"
            "<|tool_call_end|><|tool_calls_section_end|>")
    raw = f"plan it</think>\n\n{call}\n"
    for cuts in ([], list(range(len(raw)))):
        pieces = merge_pieces(feed_chunks(RawOutputParser(fmt, starts_in_reasoning=True), raw, cuts))
        assert [type(p).__name__ for p in pieces] == ["ReasoningText", "ParsedToolCall"], pieces
    # text after </think> is content, its leading whitespace included
    pieces = RawOutputParser(fmt, starts_in_reasoning=True).parse(f"r</think>\n\nAnswer: 4{call}")
    assert ContentText("\n\nAnswer: 4") in pieces


def test_glm_string_values_keep_whitespace_and_markup():
    raw = (
        "<tool_call>write<arg_key>code</arg_key><arg_value>\n  if a < b:\n    pass\n</arg_value></tool_call>"
    )
    assert parse_raw(raw, "glm47").tool_calls[0].arguments == {"code": "\n  if a < b:\n    pass\n"}


def test_kimi_reference_section():
    # kimi-k2.5.md §4, exactly as shown there
    raw = (
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
        '{"city": "Beijing"}<|tool_call_end|><|tool_calls_section_end|>'
    )
    out = parse_raw(raw, "kimi_k2")
    call = out.tool_calls[0]
    assert (call.id, call.name, call.arguments, call.raw_arguments) == (
        "functions.get_weather:0",
        "get_weather",
        {"city": "Beijing"},
        '{"city": "Beijing"}',
    )
    assert out.content == "" and out.problems == []
    tc = call.to_tool_call()
    assert tc.arguments_json() == '{"city": "Beijing"}' and tc.id == "functions.get_weather:0"


def test_kimi_multiple_calls_and_implicit_reasoning_end():
    raw = (
        "<think>I need two lookups<|tool_calls_section_begin|>"
        '<|tool_call_begin|>functions.search:0<|tool_call_argument_begin|>{"q": "a"}<|tool_call_end|>\n'
        '<|tool_call_begin|>functions.fetch:1<|tool_call_argument_begin|>{"url": "u"}<|tool_call_end|>'
        "<|tool_calls_section_end|>"
    )
    out = parse_raw(raw, "kimi_k2")
    assert out.reasoning == "I need two lookups"
    assert [(c.id, c.name) for c in out.tool_calls] == [
        ("functions.search:0", "search"),
        ("functions.fetch:1", "fetch"),
    ]
    assert out.content == ""


def test_kimi_bad_json_is_reported_not_raised():
    raw = (
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{not json}"
        '<|tool_call_end|><|tool_call_begin|>functions.g:1<|tool_call_argument_begin|>["list"]<|tool_call_end|>'
        '<|tool_call_begin|>functions.h:2<|tool_call_argument_begin|>{"ok": 1}<|tool_call_end|><|tool_calls_section_end|>'
    )
    out = parse_raw(raw, "kimi_k2")
    assert [c.name for c in out.tool_calls] == ["h"]
    assert len(out.problems) == 2
    assert "not valid JSON" in out.problems[0].message and "{not json}" in out.problems[0].raw
    assert "JSON object" in out.problems[1].message


def test_unterminated_constructs_at_close():
    out = parse_raw("hi<tool_call>f<arg_key>a</arg_key><arg_value>1", "glm47")
    assert out.content == "hi" and out.tool_calls == []
    assert (
        out.problems[0].raw == "<tool_call>f<arg_key>a</arg_key><arg_value>1"
        and "ended inside" in out.problems[0].message
    )
    out = parse_raw("<think>still thinking", "glm47")
    assert out.reasoning == "still thinking" and out.problems == []
    out = parse_raw(
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{", "kimi_k2"
    )
    assert out.tool_calls == [] and len(out.problems) == 1
    assert (
        parse_raw("text ends in a partial tag <tool_ca", "glm47").content
        == "text ends in a partial tag <tool_ca"
    )


def test_glm_malformed_arguments_reported():
    out = parse_raw("<tool_call>f<arg_key>a</arg_key>oops</tool_call>after", "glm47")
    assert out.tool_calls == [] and out.content == "after"
    assert "malformed arguments" in out.problems[0].message
    assert parse_raw("<tool_call><arg_key>a</arg_key><arg_value>1</arg_value></tool_call>", "glm47").problems


def test_streaming_holds_back_only_possible_tag_starts():
    p = RawOutputParser("glm47")
    assert p.feed("a<") == [ContentText("a")]
    assert p.feed("b") == [ContentText("<b")]
    assert p.feed("ab") == [ContentText("ab")]
    assert p.feed("x<thi") == [ContentText("x")]
    assert p.feed("nk>deep") == [ReasoningText("deep")]
    assert p.feed("</th") == []
    assert p.feed("ink><tool") == []
    assert p.close() == [ContentText("<tool")]


def test_starts_in_reasoning_and_repeated_open_tag():
    assert parse_raw("a</think>b", "think", starts_in_reasoning=True) == ParsedOutput("a", "b")
    assert parse_raw("<think>a</think>b", "think", starts_in_reasoning=True) == ParsedOutput("a", "b")
    p = RawOutputParser("think", starts_in_reasoning=True)
    assert p.in_reasoning
    assert feed_chunks(p, "<think>a</think>b", [1, 3, 6]) == [ReasoningText("a"), ContentText("b")]


def test_configurable_tags_and_single_purpose_parsers():
    p = ThinkParser("<reasoning>", "</reasoning>")
    assert p.parse("x<reasoning>y</reasoning>z<think>w") == [
        ContentText("x"),
        ReasoningText("y"),
        ContentText("z<think>w"),
    ]
    # tool-only parsers leave think tags as content
    assert merge_pieces(GlmToolCallParser().parse("<think>a</think>")) == [ContentText("<think>a</think>")]
    pieces = KimiK2ToolCallParser().parse(
        "<think>a</think><|tool_calls_section_begin|><|tool_call_begin|>f<|tool_call_argument_begin|><|tool_call_end|>"
    )
    assert pieces[0] == ContentText("<think>a</think>")
    assert isinstance(pieces[1], ParsedToolCall) and pieces[1].name == "f" and pieces[1].arguments == {}


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown raw output format"):
        RawOutputParser("qwen")  # type: ignore[arg-type]
    p = RawOutputParser("think")
    p.close()
    with pytest.raises(RuntimeError, match="new parser"):
        p.feed("x")


# ---------------------------------------------------------------------------- properties

FRAGMENTS = [
    "<",
    ">",
    "/",
    "|",
    "\n",
    " ",
    "<thi",
    "</thin",
    "<tool_",
    "<|tool_call",
    "<arg_",
    "é",
    "漢",
    "{",
    '"',
]
_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=6).map("".join)
plain_text = _text.filter(lambda s: not any(t in s for t in ALL_TAGS))
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
ident = st.builds(str.__add__, st.sampled_from(_ALNUM[:53]), st.text(alphabet=_ALNUM, max_size=10))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), plain_text)
json_value = st.one_of(
    json_scalar, st.lists(json_scalar, max_size=3), st.dictionaries(ident, json_scalar, max_size=2)
)


def _json_non_string(text: str) -> Any:
    """The oracle of the GLM argument rule: an object, array or number (booleans too) written
    as JSON is decoded, anything else (a JSON string, null, NaN, plain text) kept as written."""
    try:
        v = json.loads(text.strip(), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except ValueError:
        return text
    return v if isinstance(v, dict | list | int | float) else text


@dataclass
class Call:
    name: str
    args: dict[str, Any]


def glm_call_text(call: Call, newlines: bool) -> str:
    nl = "\n" if newlines else ""
    body = "".join(f"<arg_key>{k}</arg_key>{nl}<arg_value>{v}</arg_value>{nl}" for k, v in call.args.items())
    return f"<tool_call>{call.name}{nl}{body}</tool_call>"


@st.composite
def streams(draw, fmt: str):
    """A valid raw output and the merged pieces it must parse to."""
    starts_in_reasoning = draw(st.booleans())
    kinds = draw(st.lists(st.sampled_from(["r", "c", "t"] if fmt != "think" else ["r", "c"]), max_size=6))
    if starts_in_reasoning:
        kinds = ["r", *kinds]
    raw: list[str] = []
    expected: list = []
    n_calls = 0
    for i, kind in enumerate(kinds):
        if kind == "c":
            if i and kinds[i - 1] == "c":
                continue  # two adjacent texts could join into a tag
            text = draw(plain_text)
            raw.append(text)
            # whitespace alone between a boundary (start, </think>, a tool call) and a tool call
            # or the end is not content
            boundary = i == 0 or kinds[i - 1] in ("r", "t")
            after = next((k for k in kinds[i + 1 :] if k != "c"), None)
            if not (boundary and not text.strip() and after in ("t", None)):
                expected.append(ContentText(text))
        elif kind == "r":
            text = draw(plain_text)
            opener = "" if (i == 0 and starts_in_reasoning) else "<think>"
            implicit = fmt == "kimi_k2" and i + 1 < len(kinds) and kinds[i + 1] == "t" and draw(st.booleans())
            raw.append(opener + text + ("" if implicit else "</think>"))
            expected.append(ReasoningText(text))
        elif fmt in ("glm47", "glm45"):
            call = Call(draw(ident), draw(st.dictionaries(ident, plain_text, max_size=3)))
            raw.append(glm_call_text(call, newlines=fmt == "glm45"))
            # without a schema a value that is JSON other than a string is decoded (vLLM's rule)
            expected.append(("call", f"call_{n_calls}", call.name, {k: _json_non_string(v) for k, v in call.args.items()}))
            n_calls += 1
        else:  # kimi section with 1-3 calls
            calls = draw(
                st.lists(
                    st.tuples(ident, st.dictionaries(ident, json_value, max_size=3)), min_size=1, max_size=3
                )
            )
            parts = []
            for k, (name, args) in enumerate(calls):
                payload = json.dumps(args, ensure_ascii=draw(st.booleans()))
                if any(t in payload for t in ALL_TAGS):
                    continue
                cid = f"functions.{name}:{k}"
                parts.append(
                    f"<|tool_call_begin|>{cid}<|tool_call_argument_begin|>{payload}<|tool_call_end|>"
                )
                expected.append(("call", cid, name, args))
            raw.append("<|tool_calls_section_begin|>" + "".join(parts) + "<|tool_calls_section_end|>")
    return "".join(raw), expected, starts_in_reasoning


def summarize(pieces) -> list:
    out = []
    for p in merge_pieces(pieces):
        if isinstance(p, ParsedToolCall):
            out.append(("call", p.id, p.name, p.arguments))
        else:
            out.append(p)
    return out


def check_stream(fmt: str, data) -> None:
    raw, expected, sir = data.draw(streams(fmt))
    whole = summarize(RawOutputParser(fmt, starts_in_reasoning=sir).parse(raw))
    assert whole == merge_pieces(expected)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    chunked = feed_chunks(RawOutputParser(fmt, starts_in_reasoning=sir), raw, cuts)
    assert merge_pieces(chunked) == RawOutputParser(fmt, starts_in_reasoning=sir).parse(raw)
    one_char = feed_chunks(RawOutputParser(fmt, starts_in_reasoning=sir), raw, list(range(len(raw))))
    assert summarize(one_char) == whole


@pytest.mark.parametrize("fmt", ["glm47", "glm45", "kimi_k2", "think"])
@STREAM_SETTINGS
@given(data=st.data())
def test_valid_streams_parse_the_same_under_any_chunking(fmt, data):
    check_stream(fmt, data)


GARBAGE_PARTS = [*ALL_TAGS, *(t[: len(t) // 2] for t in ALL_TAGS), *(t[len(t) // 2 :] for t in ALL_TAGS)]
garbage = st.lists(st.one_of(st.sampled_from(GARBAGE_PARTS), st.text(max_size=5)), max_size=25).map("".join)


@pytest.mark.parametrize("fmt", ["glm47", "glm45", "kimi_k2", "think"])
@SETTINGS
@given(text=garbage, cuts=st.lists(st.integers(0, 300), max_size=15), sir=st.booleans())
def test_garbage_never_raises_and_is_chunking_invariant(fmt, text, cuts, sir):
    cuts = [c for c in cuts if c <= len(text)]
    chunked = feed_chunks(RawOutputParser(fmt, starts_in_reasoning=sir), text, cuts)
    assert all(isinstance(p, ReasoningText | ContentText | ParsedToolCall | ParseProblem) for p in chunked)
    assert merge_pieces(chunked) == RawOutputParser(fmt, starts_in_reasoning=sir).parse(text)
    # nothing is lost: every character lands in a text piece, a call's raw text, or a problem's raw text,
    # except the markup of the think tags and tool-call sections
    texts = "".join(p.text if isinstance(p, ReasoningText | ContentText) else p.raw for p in chunked)
    assert len(texts) <= len(text)
