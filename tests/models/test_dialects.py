"""What goes on the wire, per dialect, for a multi-turn tool-calling conversation with reasoning."""

from __future__ import annotations

import pytest

from ponder.core.messages import Message, Reasoning, ToolCall
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.dialects import get_dialect, parse_arguments

TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


def conversation() -> list[Message]:
    """Two user turns; the first has a tool loop with reasoning on every assistant step."""
    return [
        Message.system("sys"),
        Message.user("who founded Acme?"),
        Message.assistant(None, reasoning=Reasoning(text="R1: look it up"), tool_calls=[ToolCall(id="call_a", name="lookup", arguments={"q": "Acme"})]),
        Message.tool("call_a", "Acme was founded by Ada.", name="lookup"),
        Message.assistant("Ada founded Acme.", reasoning=Reasoning(text="R2: the result says Ada")),
        Message.user("and when?"),
        Message.assistant(None, reasoning=Reasoning(text="R3: need the year"), tool_calls=[ToolCall(id="call_b", name="lookup", arguments={"q": "Acme year"})]),
        Message.tool("call_b", "1901", name="lookup"),
    ]


def payload(dialect: str, model: str = "kimi-k2.5", **kw):
    spec = resolve(model)
    return get_dialect(dialect).build_payload(spec, ChatRequest(messages=conversation(), tools=TOOLS, **kw), stream=True)


def assistants(p):
    return [m for m in p["messages"] if m["role"] == "assistant"]


def test_kimi_sends_reasoning_content_on_every_tool_call_message_and_renames_ids():
    p = payload("kimi", thinking="on", preserve_reasoning=False)
    a = assistants(p)
    assert a[0]["reasoning_content"] == "R1: look it up"
    assert a[2]["reasoning_content"] == "R3: need the year"
    assert "reasoning_content" not in a[1]  # plain answer, preservation off
    assert a[0]["tool_calls"][0]["id"] == "functions.lookup:0"
    tool_msgs = [m for m in p["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["functions.lookup:0", "functions.lookup:0"]
    assert p["thinking"] == {"type": "enabled"}
    assert (p["temperature"], p["top_p"]) == (1.0, 0.95)
    assert p["stream_options"] == {"include_usage": True}


def test_kimi_preserved_and_instant_mode():
    p = payload("kimi", thinking="off", preserve_reasoning=True)
    assert p["thinking"] == {"type": "disabled"}
    assert p["temperature"] == 0.6
    assert [m.get("reasoning_content") for m in assistants(p)] == ["R1: look it up", "R2: the result says Ada", "R3: need the year"]


def test_kimi_tool_call_message_without_reasoning_still_carries_the_field():
    msgs = [Message.user("q"), Message.assistant(None, tool_calls=[ToolCall(id="x", name="lookup", arguments={})]), Message.tool("x", "r")]
    p = get_dialect("kimi").build_payload(resolve("kimi-k2.5"), ChatRequest(messages=msgs, thinking="on"), stream=False)
    assert p["messages"][1]["reasoning_content"] == ""


def test_glm_preserved_thinking_sends_all_reasoning_verbatim_in_order():
    p = payload("glm", model="glm-4.7", thinking="on", preserve_reasoning=True)
    assert p["thinking"] == {"type": "enabled", "clear_thinking": False}
    assert [m.get("reasoning_content") for m in assistants(p)] == ["R1: look it up", "R2: the result says Ada", "R3: need the year"]


def test_glm_interleaved_only_keeps_current_loop_and_turn_level_off():
    p = payload("glm", model="glm-4.7", thinking="off", preserve_reasoning=False)
    assert p["thinking"] == {"type": "disabled", "clear_thinking": True}
    assert [m.get("reasoning_content") for m in assistants(p)] == [None, None, "R3: need the year"]


def test_vllm_and_sglang_use_chat_template_kwargs():
    for d in ("vllm", "sglang"):
        p = payload(d, thinking="off", preserve_reasoning=True)
        assert p["chat_template_kwargs"] == {"enable_thinking": False, "thinking": False, "clear_thinking": False}
        assert assistants(p)[0]["reasoning_content"] == "R1: look it up"
    p = payload("vllm", thinking="on", preserve_reasoning=False)
    assert p["chat_template_kwargs"] == {"enable_thinking": True, "thinking": True}
    assert [m.get("reasoning_content") for m in assistants(p)] == [None, None, "R3: need the year"]


def test_deepseek_keeps_only_current_chain_and_openai_never_sends_reasoning():
    p = payload("deepseek", model="deepseek-reasoner", thinking="on")
    assert [m.get("reasoning_content") for m in assistants(p)] == [None, None, "R3: need the year"]
    assert p["thinking"] == {"type": "enabled"}
    p = payload("openai", thinking="on")
    assert all("reasoning_content" not in m for m in p["messages"])
    assert "thinking" not in p and "chat_template_kwargs" not in p


def test_tool_calls_and_results_are_linked_and_arguments_are_json_strings():
    p = payload("openai")
    a0 = assistants(p)[0]
    assert a0["tool_calls"][0] == {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "Acme"}'}}
    assert p["messages"][3] == {"role": "tool", "tool_call_id": "call_a", "content": "Acme was founded by Ada.", "name": "lookup"}
    assert p["tools"] == TOOLS


def test_structured_output_formats():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    req = ChatRequest(messages=[Message.user("x")], response_schema=schema)
    assert get_dialect("openai").build_payload(resolve("kimi-k2.5"), req, stream=False)["response_format"]["json_schema"]["schema"] == schema
    assert get_dialect("llamacpp").build_payload(resolve("kimi-k2.5"), req, stream=False)["response_format"] == {"type": "json_object", "schema": schema}


def test_unknown_dialect_and_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="choose one of"):
        get_dialect("nope")
    assert parse_arguments('{"a": 1}') == ({"a": 1}, None)
    args, err = parse_arguments('{"a": ')
    assert args == {} and "not valid JSON" in err
    assert "JSON object" in parse_arguments("[1]")[1]


def test_fast_body_is_the_same_json_as_the_payload_and_cache_is_per_rendering():
    import json

    spec = resolve("kimi-k2.5")
    for name in ("kimi", "glm", "vllm", "openai", "deepseek", "llamacpp"):
        for thinking, preserve in (("on", True), ("off", False)):
            req = ChatRequest(messages=conversation(), tools=TOOLS, thinking=thinking, preserve_reasoning=preserve, max_tokens=9)
            d = get_dialect(name)
            assert json.loads(d.build_body(spec, req, True)) == d.build_payload(spec, req, True)
    # the same message objects rendered under another rule are not served from a stale cache
    msgs = conversation()
    on = get_dialect("glm").build_body(spec, ChatRequest(messages=msgs, preserve_reasoning=True), False)
    off = get_dialect("glm").build_body(spec, ChatRequest(messages=msgs, preserve_reasoning=False), False)
    assert b"R1: look it up" in on and b"R1: look it up" not in off


def test_a_copied_message_does_not_reuse_the_originals_wire_json():
    spec = resolve("kimi-k2.5")
    orig = Message.assistant("X", reasoning="R")
    d = get_dialect("openai")
    first = d.build_body(spec, ChatRequest(messages=[Message.user("q"), orig]), False)
    copy = orig.model_copy(update={"content": "<think>R</think>X", "reasoning": None})
    second = d.build_body(spec, ChatRequest(messages=[Message.user("q"), copy]), False)
    assert b"<think>R</think>X" in second and b"<think>" not in first


# ---- the incremental body: any growth pattern gives exactly the payload's JSON ----------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = st.lists(st.sampled_from(["tool_step", "answer", "user", "note", "flip_thinking", "flip_preserve", "flip_tags",
                                 "edit", "dialect"]),
                min_size=1, max_size=30)


@settings(max_examples=120, deadline=None)
@given(ops=_OPS, names=st.lists(st.sampled_from(["kimi", "glm", "vllm", "openai", "deepseek", "llamacpp"]), min_size=1, max_size=3))
def test_incremental_body_matches_the_payload_for_any_history_growth(ops, names):
    """The body keeps the rendered history prefix between steps (on the first message); every
    step must still be byte-for-byte the JSON of the plain payload: appended steps, one-off
    trailing notes, new user turns, flipped thinking/preservation, an edited middle, another
    dialect over the same message objects."""
    import json

    spec = resolve("kimi-k2.5")
    msgs = [Message.system("sys"), Message.user("task")]
    thinking, preserve, tags, d_i, n = "on", True, False, 0, 0
    for op in ops:
        n += 1
        extra: list[Message] = []
        if op == "tool_step":
            tc = ToolCall(id=f"c{n}", name="lookup", arguments={"q": n})
            msgs += [Message.assistant(None, reasoning=Reasoning(text=f"R{n}"), tool_calls=[tc]), Message.tool(f"c{n}", f"r{n}", "lookup")]
        elif op == "answer":
            msgs.append(Message.assistant(f"A{n}", reasoning=Reasoning(text=f"R{n}") if n % 2 else None))
        elif op == "user":
            msgs.append(Message.user(f"U{n}"))
        elif op == "note":
            extra = [Message.system("one-off note")] + ([Message.user("re-ask")] if n % 2 else [])
        elif op == "flip_thinking":
            thinking = "off" if thinking == "on" else "on"
        elif op == "flip_preserve":
            preserve = not preserve
        elif op == "flip_tags":
            tags = not tags
        elif op == "edit" and len(msgs) > 3:
            msgs[len(msgs) // 2] = Message.user(f"edited {n}")
        elif op == "dialect":
            d_i += 1
        d = get_dialect(names[d_i % len(names)])
        req = ChatRequest(messages=list(msgs) + extra, tools=TOOLS, thinking=thinking, preserve_reasoning=preserve,
                          reasoning_as_tags=tags)
        assert json.loads(d.build_body(spec, req, True)) == d.build_payload(spec, req, True), (op, d.name)


def test_request_keeps_the_tool_list_object_so_its_json_is_encoded_once():
    """Backends cache the tools' JSON by the list's identity: ChatRequest must not copy it
    (pydantic's list validation would), and must still reject a malformed value clearly."""
    from ponder.models import dialects

    req = ChatRequest(messages=[Message.user("q")], tools=TOOLS)
    assert req.tools is TOOLS
    dialects._TOOLS_JSON.clear()
    spec = resolve("kimi-k2.5")
    for _ in range(3):
        get_dialect("kimi").build_body(spec, ChatRequest(messages=[Message.user("q")], tools=TOOLS), True)
    assert len(dialects._TOOLS_JSON) == 1
    with pytest.raises(ValueError, match="list of OpenAI function-tool schemas"):
        ChatRequest(messages=[], tools="lookup")


@pytest.mark.parametrize("name", ["openai", "vllm", "kimi", "glm"])
def test_reasoning_as_tags_puts_think_blocks_in_the_content(name):
    """Think-tag models (plain chat APIs): earlier reasoning goes back inside the assistant
    content, all of it when preserving, else only the current chain's; never as a field."""
    spec = resolve("kimi-k2.5")
    d = get_dialect(name)
    keep = d.build_payload(spec, ChatRequest(messages=conversation(), reasoning_as_tags=True), False)["messages"]
    asst = [m for m in keep if m["role"] == "assistant"]
    assert [m["content"][:10] for m in asst] == ["<think>R1:", "<think>R2:", "<think>R3:"]
    assert all("reasoning_content" not in m for m in asst)
    chain = d.build_payload(spec, ChatRequest(messages=conversation(), reasoning_as_tags=True, preserve_reasoning=False),
                            False)["messages"]
    asst = [m for m in chain if m["role"] == "assistant"]
    assert asst[0]["content"] == "" and asst[1]["content"] == "Ada founded Acme." and asst[2]["content"].startswith("<think>R3")
