"""Raw chat templates: hand-checked renderings and render → parse round trips."""

from __future__ import annotations

import dataclasses

import pytest

from ponder.core.messages import Message, ToolCall
from ponder.models.parsers import ParsedOutput
from ponder.models.templates import (
    RAW_CHAT_FORMATS,
    glm_tool_call,
    kimi_tool_call_id,
    render_glm47,
    render_kimi_k2,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}
# json.dumps(WEATHER, ensure_ascii=False), written out by hand
WEATHER_JSON = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}'
)
WEATHER_COMPACT = (
    '{"type":"function","function":{"name":"get_weather","description":"Weather for a city",'
    '"parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}}}'
)


def conversation() -> list[Message]:
    return [
        Message.system("You are helpful."),
        Message.user("Weather in Paris?"),
        Message.assistant(
            "",
            reasoning="Need the tool.",
            tool_calls=[ToolCall(id="call_0", name="get_weather", arguments={"city": "Paris", "days": 2})],
        ),
        Message.tool("call_0", '{"temp": 21}', name="get_weather"),
        Message.assistant("It is 21 C.", reasoning="Got it."),
        Message.user("And Rome and Oslo?"),
        Message.assistant(
            "Checking both.",
            reasoning="Two calls.",
            tool_calls=[
                ToolCall(id="call_1", name="get_weather", arguments={"city": "Rome"}),
                ToolCall(id="call_2", name="get_weather", arguments={"city": "Oslo"}),
            ],
        ),
        Message.tool("call_1", "18"),
        Message.tool("call_2", "9"),
    ]


GLM_TOOLS = (
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    + WEATHER_JSON
    + "\n</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n"
    "<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}</arg_value>"
    "<arg_key>{arg-key-2}</arg_key><arg_value>{arg-value-2}</arg_value>...</tool_call>"
)
PARIS = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value><arg_key>days</arg_key><arg_value>2</arg_value></tool_call>"
ROME = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value></tool_call>"
OSLO = "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value></tool_call>"


def glm_expected(first: str, second: str, gen: str) -> str:
    return (
        "[gMASK]<sop>" + GLM_TOOLS + "<|system|>You are helpful.<|user|>Weather in Paris?"
        "<|assistant|>" + first + PARIS + '<|observation|><tool_response>{"temp": 21}</tool_response>'
        "<|assistant|>" + second + "It is 21 C.<|user|>And Rome and Oslo?"
        "<|assistant|><think>Two calls.</think>Checking both."
        + ROME
        + OSLO
        + "<|observation|><tool_response>18</tool_response>"
        "<tool_response>9</tool_response>" + gen
    )


def test_glm47_default_drops_reasoning_before_last_user():
    assert render_glm47(conversation(), [WEATHER]) == glm_expected(
        "</think>", "</think>", "<|assistant|><think>"
    )


def test_glm47_preserved_thinking_keeps_every_turn():
    got = render_glm47(conversation(), [WEATHER], clear_thinking=False)
    assert got == glm_expected(
        "<think>Need the tool.</think>", "<think>Got it.</think>", "<|assistant|><think>"
    )


def test_glm47_thinking_off_generation_prompt():
    assert render_glm47(conversation(), [WEATHER], thinking=False) == glm_expected(
        "</think>", "</think>", "<|assistant|></think>"
    )
    assert render_glm47([Message.user("hi")], None, add_generation_prompt=False) == "[gMASK]<sop><|user|>hi"


def test_glm47_reasoning_from_think_markup_in_content_and_none_content():
    msgs = [Message.user("q"), Message.assistant("<think>\nr\n</think>\nanswer"), Message.assistant(None)]
    assert render_glm47(msgs, None, add_generation_prompt=False) == (
        "[gMASK]<sop><|user|>q<|assistant|><think>r</think>answer<|assistant|></think>"
    )


def test_glm_tool_call_value_encoding():
    tc = ToolCall(id="x", name="f", arguments={"s": "a<b", "n": 1.5, "l": [1, "é"], "b": True, "z": None})
    assert glm_tool_call(tc) == (
        "<tool_call>f<arg_key>s</arg_key><arg_value>a<b</arg_value><arg_key>n</arg_key><arg_value>1.5</arg_value>"
        '<arg_key>l</arg_key><arg_value>[1, "é"]</arg_value><arg_key>b</arg_key><arg_value>true</arg_value>'
        "<arg_key>z</arg_key><arg_value>null</arg_value></tool_call>"
    )
    raw_only = ToolCall(id="x", name="f", raw_arguments='{"k": 2}')
    assert glm_tool_call(raw_only) == "<tool_call>f<arg_key>k</arg_key><arg_value>2</arg_value></tool_call>"


KIMI_PARIS = (
    "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
    '{"city": "Paris", "days": 2}<|tool_call_end|><|tool_calls_section_end|>'
)
KIMI_ROME_OSLO = (
    "<|tool_calls_section_begin|>"
    '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Rome"}<|tool_call_end|>'
    '<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{"city": "Oslo"}<|tool_call_end|>'
    "<|tool_calls_section_end|>"
)


def kimi_expected(first: str, second: str, gen: str) -> str:
    return (
        "<|im_system|>tool_declare<|im_middle|>[" + WEATHER_COMPACT + "]<|im_end|>"
        "<|im_system|>system<|im_middle|>You are helpful.<|im_end|>"
        "<|im_user|>user<|im_middle|>Weather in Paris?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>" + first + KIMI_PARIS + "<|im_end|>"
        '<|im_system|>get_weather<|im_middle|>## Return of functions.get_weather:0\n{"temp": 21}<|im_end|>'
        "<|im_assistant|>assistant<|im_middle|>" + second + "It is 21 C.<|im_end|>"
        "<|im_user|>user<|im_middle|>And Rome and Oslo?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|><think>Two calls.</think>Checking both."
        + KIMI_ROME_OSLO
        + "<|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of functions.get_weather:0\n18<|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of functions.get_weather:1\n9<|im_end|>" + gen
    )


def test_kimi_default_blanks_reasoning_before_current_chain():
    got = render_kimi_k2(conversation(), [WEATHER])
    assert got == kimi_expected(
        "<think></think>", "<think></think>", "<|im_assistant|>assistant<|im_middle|>"
    )


def test_kimi_preserve_thinking_keeps_every_turn():
    got = render_kimi_k2(conversation(), [WEATHER], preserve_thinking=True)
    assert got == kimi_expected(
        "<think>Need the tool.</think>", "<think>Got it.</think>", "<|im_assistant|>assistant<|im_middle|>"
    )


def test_kimi_thinking_off_prefills_empty_think():
    got = render_kimi_k2(conversation(), [WEATHER], thinking=False)
    assert got == kimi_expected(
        "<think></think>", "<think></think>", "<|im_assistant|>assistant<|im_middle|><think></think>"
    )


def test_kimi_default_system_and_verbatim_ids():
    msgs = [
        Message.user("hi"),
        Message.assistant(
            None, tool_calls=[ToolCall(id="functions.search:3", name="search", raw_arguments='{"q":"x"}')]
        ),
        Message.tool("functions.search:3", "found"),
    ]
    assert render_kimi_k2(msgs, None, add_generation_prompt=False) == (
        "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
        "<|im_user|>user<|im_middle|>hi<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|><think></think><|tool_calls_section_begin|><|tool_call_begin|>"
        'functions.search:3<|tool_call_argument_begin|>{"q":"x"}<|tool_call_end|><|tool_calls_section_end|><|im_end|>'
        "<|im_system|>tool<|im_middle|>## Return of functions.search:3\nfound<|im_end|>"
    )
    assert kimi_tool_call_id("call_9", "search", 2) == "functions.search:2"


# ---------------------------------------------------------------------------- round trips

TURN = Message.assistant(
    "Let me check <both> cities.",
    reasoning="The user wants\ntwo cities; call the tool twice.",
    tool_calls=[
        ToolCall(id="functions.get_weather:0", name="get_weather", arguments={"city": "Rome", "days": 3}),
        ToolCall(id="functions.get_weather:1", name="get_weather", arguments={"city": "Oslo\nNorway"}),
    ],
)


def assistant_output(render, history: list[Message], turn: Message, **kw) -> str:
    """What the model would have generated: the full rendering minus the prompt rendering."""
    prompt = render(history, [WEATHER], **kw)
    full = render([*history, turn], [WEATHER], add_generation_prompt=False, **kw)
    assert full.startswith(prompt), "the history must render identically with and without the new turn"
    return full[len(prompt) :]


@pytest.mark.parametrize("clear_thinking", [True, False])
def test_glm47_round_trip(clear_thinking):
    history = [Message.user("Weather in Rome and Oslo?")]
    raw = assistant_output(render_glm47, history, TURN, clear_thinking=clear_thinking)
    assert raw.startswith("The user wants")  # the prompt pre-filled <think>
    fmt = RAW_CHAT_FORMATS["glm47"]
    out = ParsedOutput.from_pieces(fmt.parser([WEATHER], thinking=True).parse(raw))
    assert out.reasoning == TURN.reasoning.text
    assert out.content == TURN.content
    assert [(c.name, c.arguments) for c in out.tool_calls] == [(t.name, t.arguments) for t in TURN.tool_calls]
    assert out.problems == []


def test_kimi_round_trip_chunked():
    history = [Message.user("Weather in Rome and Oslo?")]
    raw = assistant_output(render_kimi_k2, history, TURN)
    assert raw.endswith("<|im_end|>")
    raw = raw[: -len("<|im_end|>")]  # the stop string ends generation
    parser = RAW_CHAT_FORMATS["kimi_k2"].parser([WEATHER], thinking=True)
    pieces = []
    for i in range(0, len(raw), 7):
        pieces += parser.feed(raw[i : i + 7])
    out = ParsedOutput.from_pieces([*pieces, *parser.close()])
    assert out.reasoning == TURN.reasoning.text
    assert out.content == TURN.content
    def plain(t):
        return {k: v for k, v in dataclasses.asdict(t).items() if k != "raw_arguments"}

    assert [plain(c.to_tool_call()) for c in out.tool_calls] == [plain(t) for t in TURN.tool_calls]


def test_thinking_off_outputs_parse_as_content():
    glm = RAW_CHAT_FORMATS["glm47"]
    assert not glm.starts_in_reasoning(False) and glm.starts_in_reasoning(True)
    out = ParsedOutput.from_pieces(glm.parser(thinking=False).parse("plain answer"))
    assert (out.reasoning, out.content) == ("", "plain answer")
    kimi = RAW_CHAT_FORMATS["kimi_k2"]
    assert not kimi.starts_in_reasoning(True)  # K2.5 writes its own <think>
    assert ParsedOutput.from_pieces(kimi.parser(thinking=False).parse("<think>a</think>b")) == ParsedOutput(
        "a", "b"
    )
    assert kimi.stop == ("<|im_end|>",) and "<|observation|>" in glm.stop
