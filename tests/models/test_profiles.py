"""Provider profiles: the shipped catalog of late 2026, TOML overrides and their errors,
refusals before sending, translated provider 400s, retired models, capabilities, headers."""

from __future__ import annotations

import pytest

from ponder.core.errors import ConfigError
from ponder.core.events import ErrorEvent, ModelCallFinished
from ponder.core.messages import Image, Message, ToolCall
from ponder.models.base import ChatRequest
from ponder.models.catalog import catalog, resolve
from ponder.models.dialects import get_dialect
from ponder.models.openai_compat import OpenAICompatModel
from ponder.models.profiles import RequestRefused, adapt, check_request, translate_error
from ponder.models.registry import model
from ponder.testing_http import MockOpenAIServer, MockReply, sse_text_reply

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
       "ErkJggg==")


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_MODELS", str(tmp_path / "absent.toml"))


def test_catalog_of_late_2026_with_unknowns_left_unknown():
    cat = catalog()
    for name in ("kimi-k2.6", "kimi-k2.7-code", "kimi-k3", "glm-4.7", "glm-5", "glm-5.1", "glm-5.2",
                 "deepseek-v4-flash", "deepseek-v4-pro", "qwen3.6", "minimax-m2", "kimi-k2.5", "smollm2"):
        assert name in cat, name
    assert cat["kimi-k3"].context_window == 1_048_576 and cat["kimi-k3"].price_input is None
    assert not cat["kimi-k3"].prices_known and cat["glm-4.7"].prices_known
    assert cat["glm-5"].context_window is None  # not published: unknown, never invented
    assert cat["glm-5.2"].profile.effort_levels == ["max", "high"]
    assert (cat["kimi-k2.6"].price_input, cat["kimi-k2.6"].price_cached_input, cat["kimi-k2.6"].price_output) == (0.95, 0.16, 4.0)
    for s in cat.values():
        assert s.description, s.name


def test_backend_is_separate_from_the_dialect_and_capabilities_are_what_engines_read():
    s = resolve("smollm2")
    assert (s.backend, s.dialect) == ("embedded", "embedded")  # dialect kept for engines that still read it
    assert s.capabilities.constrained_decoding and not s.capabilities.vision and not s.capabilities.native_thinking
    raw = resolve("glm-raw:http://127.0.0.1:1/v1#glm")
    assert (raw.backend, raw.dialect, raw.raw_format) == ("raw-completions", "glm", "glm47")
    assert raw.capabilities.native_thinking and not raw.capabilities.constrained_decoding
    assert resolve("kimi-raw:http://127.0.0.1:1/v1#k").raw_format == "kimi_k2"
    k = resolve("kimi-k2.6")
    assert (k.backend, k.dialect) == ("http", "kimi") and k.capabilities.native_thinking
    assert resolve("kimi-k2.5").capabilities.vision
    # raw completions render text prompts: no image parts whatever the profile says
    assert not resolve("kimi-k2.5", dialect="kimi-raw").capabilities.vision


def test_user_toml_overrides_any_profile_field_and_keeps_the_rest(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    cfg.write_text('[models."kimi-k2.6".profile]\nvision = true\nfixed_sampling = ["n"]\n'
                   '[models.gw]\nbase_url = "http://127.0.0.1:9/v1"\ndialect = "glm"\nheaders = { X-Team = "r" }\n')
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    k = resolve("kimi-k2.6")
    assert k.capabilities.vision and k.profile.fixed_sampling == ["n"]
    assert k.profile.preserve_flag == "thinking.keep" and k.price_output == 4.0  # the rest kept
    gw = resolve("gw")
    assert gw.headers == {"X-Team": "r"} and gw.profile.preserve_flag == "thinking.clear_thinking"  # glm defaults


@pytest.mark.parametrize("text,match", [
    ('[models.x]\nbase_ulr = "http://h/v1"\n', "unknown key 'base_ulr'; did you mean 'base_url'"),
    ('[models.x.profile]\nvison = true\n', "unknown key 'vison'; did you mean 'vision'"),
    ("models = 5\n", "`models` must be a table"),
    ('[models]\nx = "http://h/v1"\n', r"models\.x must be a table"),
    ('[model.x]\nbase_url = "u"\n', "unknown table 'model'; did you mean 'models'"),
    ("[models.x\n", "not valid TOML"),
    ('[models.x]\ncontext_window = "big"\n', r"context_window.*integer.*'big'"),
    ('[models.x]\ndialect = "klingon"\n', "invalid"),
])
def test_bad_model_toml_is_one_line_naming_file_key_and_fix(tmp_path, monkeypatch, text, match):
    cfg = tmp_path / "models.toml"
    cfg.write_text(text)
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    with pytest.raises(ConfigError, match=match) as e:
        catalog()
    assert "\n" not in str(e.value) and (str(cfg) in str(e.value))


def test_model_toml_that_is_a_directory_or_not_utf8(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_MODELS", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory"):
        catalog()
    bad = tmp_path / "m.toml"
    bad.write_bytes(b'[models.x]\ndescription = "caf\xe9"\n')
    monkeypatch.setenv("PONDER_MODELS", str(bad))
    with pytest.raises(ConfigError, match="not UTF-8"):
        catalog()


def test_bogus_dialect_is_a_clean_list_not_pydantic_text():
    with pytest.raises(ConfigError) as e:
        resolve("whatever", base_url="http://127.0.0.1:1/v1", dialect="bogus")
    msg = str(e.value)
    assert "unknown dialect 'bogus'" in msg and "kimi" in msg and "vllm" in msg and "validation" not in msg
    with pytest.raises(ConfigError, match="did you mean 'vllm'"):
        resolve("glm-4.7", dialect="vlm")


def test_another_dialect_drops_the_vendor_wire_rules_but_keeps_the_model():
    s = resolve("kimi-k2.6", base_url="http://127.0.0.1:8000/v1", dialect="vllm")
    assert s.profile.fixed_sampling == [] and s.profile.tool_choice is None  # vLLM enforces neither
    assert s.profile.native_thinking and s.profile.preserve_flag == "chat_template_kwargs.clear_thinking"
    p = get_dialect("vllm").build_payload(s, ChatRequest(messages=[Message.user("q")], temperature=0.2), True)
    assert p["temperature"] == 0.2


# ---- refusals before sending ----------------------------------------------------------------------


def _req(**kw) -> ChatRequest:
    return ChatRequest(messages=[Message.user("q")], **kw)


@pytest.mark.parametrize("name,kw,rule,words", [
    ("kimi-k3", {"temperature": 0.3}, "fixed_sampling", "kimi-k3 fixes temperature; drop --temperature"),
    ("kimi-k2.6", {"top_p": 0.5}, "fixed_sampling", "kimi-k2.6 fixes top_p; drop --top-p"),
    ("kimi-k2.6", {"extra_body": {"presence_penalty": 0.1}}, "fixed_sampling", "fixes presence_penalty"),
    ("kimi-k2.6", {"tools": TOOLS, "tool_choice": "required"}, "tool_choice", "rejects tool_choice='required'"),
    ("kimi-k3", {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "lookup"}}}, "tool_choice",
     "rejects tool_choice='function'"),
    ("kimi-k2.7-code", {"thinking": "off"}, "thinking", "always thinks"),
    ("glm-5.2", {"reasoning_effort": "low"}, "effort_levels", "accepts reasoning_effort max, high"),
    ("deepseek-v4-pro", {"messages": [Message.user("what is this", images=[PNG])]}, "vision", "does not accept image"),
])
def test_requests_the_provider_would_reject_are_refused_naming_rule_and_fix(name, kw, rule, words):
    req = ChatRequest(**{"messages": [Message.user("q")], **kw})
    with pytest.raises(RequestRefused, match=words) as e:
        check_request(resolve(name), req)
    assert e.value.rule == rule


def test_allowed_requests_pass_and_adapt_drops_what_an_engine_set():
    check_request(resolve("kimi-k2.6"), _req(tools=TOOLS, tool_choice="auto", thinking="off"))
    check_request(resolve("glm-5.2"), _req(reasoning_effort="high", temperature=0.1))
    check_request(resolve("kimi-k2.5"), ChatRequest(messages=[Message.user("x", images=[PNG])]))
    spec = resolve("kimi-k3")
    fitted = adapt(spec, _req(temperature=0.0, thinking="off"))
    assert fitted.temperature is None and fitted.thinking is None
    check_request(spec, fitted)
    assert spec.profile.allows_tool_choice("auto") and not spec.profile.allows_tool_choice("required")


async def test_a_refused_request_never_reaches_the_server():
    async with MockOpenAIServer(lambda p, n: sse_text_reply(content="x")) as srv:
        m = OpenAICompatModel(resolve("kimi-k3", base_url=srv.base_url), api_key="sk-test-1234")
        evs = [ev async for ev in m.stream(_req(temperature=0.7))]
    assert isinstance(evs[-1], ErrorEvent) and "kimi-k3 fixes temperature" in evs[-1].message
    assert srv.requests == []


def test_retired_model_fails_before_any_request_naming_the_successor(monkeypatch):
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-test-1234")
    with pytest.raises(ConfigError, match=r"kimi-k2.5 was retired on api.moonshot.ai on 2026-08-31.*use kimi-k2.6"):
        model("kimi-k2.5")
    # the same weights self-hosted are fine
    m = model("kimi-k2.5", base_url="http://127.0.0.1:8000/v1", dialect="vllm")
    assert m.spec.model_id == "kimi-k2.5" and m.spec.capabilities.vision


# ---- provider 400s translated --------------------------------------------------------------------


@pytest.mark.parametrize("status,provider,words", [
    (400, "thinking is enabled but reasoning_content is missing in assistant tool call message at index 2",
     "requires earlier reasoning back"),
    (400, "invalid temperature: only 1 is allowed for this model", "fixes temperature; drop --temperature"),
    (400, "tool_choice 'required' is incompatible with thinking enabled", "tool_choice='auto'"),
    (400, "thinking cannot be disabled for this model", "always thinks"),
    (400, "This model does not support image input", "does not accept image inputs"),
])
def test_provider_400s_that_match_a_rule_are_translated(status, provider, words):
    msg = translate_error(resolve("kimi-k2.6"), status, provider)
    assert msg is not None and words in msg and provider in msg and "ponder probe kimi-k2.6" in msg
    assert translate_error(resolve("kimi-k2.6"), 400, "context length exceeded") is None
    assert translate_error(resolve("kimi-k2.6"), 503, provider) is None


async def test_translated_400_reaches_the_caller_as_one_error_event():
    body = {"error": {"message": "thinking is enabled but reasoning_content is missing in assistant tool call message at index 1"}}
    async with MockOpenAIServer(lambda p, n: MockReply(status=400, json_body=body)) as srv:
        m = OpenAICompatModel(resolve("deepseek-v4-flash", base_url=srv.base_url), api_key="sk-test-1234")
        evs = [ev async for ev in m.stream(_req())]
    assert isinstance(evs[-1], ErrorEvent) and "deepseek-v4-flash requires earlier reasoning back" in evs[-1].message


# ---- headers per model ---------------------------------------------------------------------------


async def test_headers_from_catalog_and_call_reach_the_server_and_env_values_are_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("GW_KEY", "gw-secret-98765")
    cfg = tmp_path / "models.toml"
    async with MockOpenAIServer(lambda p, n: MockReply(status=400, json_body={"error": {"message": "bad key gw-secret-98765"}})
                                if n else sse_text_reply(content="ok")) as srv:
        cfg.write_text(f'[models.gw]\nbase_url = "{srv.base_url}"\nheaders = {{ X-Gateway-Key = "${{GW_KEY}}", X-Team = "r" }}\n')
        monkeypatch.setenv("PONDER_MODELS", str(cfg))
        m = model("gw", headers={"X-Route": "fast"})
        fin = await m.complete(_req())
        evs = [ev async for ev in m.stream(_req())]
    assert isinstance(fin, ModelCallFinished)
    h = srv.headers[0]
    assert (h["x-gateway-key"], h["x-team"], h["x-route"]) == ("gw-secret-98765", "r", "fast")
    assert "gw-secret" not in evs[-1].message and "***" in evs[-1].message
    assert "gw-secret" not in repr(m)


def test_header_with_unset_variable_names_it(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    cfg.write_text('[models.gw]\nbase_url = "http://127.0.0.1:1/v1"\nheaders = { K = "${NOPE_UNSET_VAR}" }\n')
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    monkeypatch.delenv("NOPE_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError, match="set the environment variable NOPE_UNSET_VAR"):
        model("gw")


# ---- images on messages --------------------------------------------------------------------------


def test_image_sources_file_url_and_data_url(tmp_path):
    png = tmp_path / "dot.png"
    import base64

    png.write_bytes(base64.b64decode(PNG.split(",", 1)[1]))
    assert Image.from_source(png).url == PNG
    assert Image.from_source("https://example.org/a.jpg").url == "https://example.org/a.jpg"
    assert Image.from_source(PNG).url == PNG
    with pytest.raises(ConfigError, match="is not a file"):
        Image.from_source(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ConfigError, match="not a PNG, JPEG, GIF or WebP"):
        Image.from_source(tmp_path / "notes.png")
    with pytest.raises(ConfigError, match="data:image/png;base64"):
        Image.from_source("data:text/plain,hi")


@pytest.mark.parametrize("dialect", ["kimi", "glm", "vllm", "sglang", "llamacpp", "openai"])
def test_image_parts_in_every_http_dialect(dialect):
    spec = resolve("v", base_url="http://127.0.0.1:1/v1", dialect=dialect)
    msgs = [Message.system("s"), Message.user("what is in it?", images=[PNG, Image(url="https://e.org/b.png", detail="low")])]
    d = get_dialect(dialect)
    req = ChatRequest(messages=msgs)
    p = d.build_payload(spec, req, True)
    assert p["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "image_url", "image_url": {"url": "https://e.org/b.png", "detail": "low"}},
        {"type": "text", "text": "what is in it?"},
    ]
    assert p["messages"][0] == {"role": "system", "content": "s"}
    import json

    assert json.loads(d.build_body(spec, req, True)) == p


async def test_embedded_model_refuses_images_before_generating():
    m = model("smollm2")
    evs = [ev async for ev in m.stream(ChatRequest(messages=[Message.user("x", images=[PNG])], max_tokens=4))]
    assert len(evs) == 1 and isinstance(evs[0], ErrorEvent) and "smollm2 does not accept image inputs" in evs[0].message


# ---- replay policies from the profile ------------------------------------------------------------


def _history() -> list[Message]:
    return [Message.user("u1"), Message.assistant(None, reasoning="R1", tool_calls=[ToolCall(id="a", name="lookup")]),
            Message.tool("a", "r"), Message.assistant("done", reasoning="R2"), Message.user("u2"),
            Message.assistant(None, tool_calls=[ToolCall(id="b", name="lookup")]), Message.tool("b", "r")]


def _replayed(name: str, **kw) -> list:
    spec = resolve(name)
    p = get_dialect(spec.dialect).build_payload(spec, ChatRequest(messages=_history(), **kw), True)
    return [m.get("reasoning_content") for m in p["messages"] if m["role"] == "assistant"], p


def test_replay_policies_and_flags_per_profile():
    # K2.6: interleaved by default, tool-call turns always carry the field; thinking.keep="all" preserves
    got, p = _replayed("kimi-k2.6", preserve_reasoning=False)
    assert got == ["R1", None, ""] and "thinking" not in p
    got, p = _replayed("kimi-k2.6", preserve_reasoning=True, thinking="on")
    assert got == ["R1", "R2", ""] and p["thinking"] == {"type": "enabled", "keep": "all"}
    assert "temperature" not in p and "top_p" not in p  # fixed: never sent
    # K3: always preserved and every turn required, thinking flag never sent (it cannot be toggled)
    got, p = _replayed("kimi-k3", preserve_reasoning=False, thinking="on", reasoning_effort="high")
    assert got == ["R1", "R2", ""] and "thinking" not in p and p["reasoning_effort"] == "high"
    # DeepSeek V4: current loop, plus every tool-call turn; no preservation across user turns
    got, _ = _replayed("deepseek-v4-flash", preserve_reasoning=True)
    assert got == ["R1", None, ""]
    # GLM-5.2: interleaved / preserved with clear_thinking, effort where the profile says
    got, p = _replayed("glm-5.2", preserve_reasoning=True, reasoning_effort="max")
    assert got == ["R1", "R2", None] and p["thinking"] == {"type": "enabled", "clear_thinking": False}
    assert p["reasoning_effort"] == "max"
    # Qwen3.6 self-hosted: preserve_thinking template kwarg
    _, p = _replayed("qwen3.6", preserve_reasoning=True, thinking="off")
    assert p["chat_template_kwargs"] == {"enable_thinking": False, "preserve_thinking": True}


def test_minimax_keeps_reasoning_inline_as_think_tags():
    spec = resolve("minimax-m2")
    p = get_dialect("vllm").build_payload(spec, ChatRequest(messages=_history(), preserve_reasoning=True), True)
    asst = [m for m in p["messages"] if m["role"] == "assistant"]
    assert [m["content"] for m in asst] == ["<think>R1</think>", "<think>R2</think>done", ""]
    assert all("reasoning_content" not in m for m in asst) and "clear_thinking" not in str(p)


def test_legacy_top_level_native_thinking_and_dialect_names_still_work(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    cfg.write_text('[models."deepseek-chat"]\nnative_thinking = true\n'
                   '[models.rawglm]\nbase_url = "http://127.0.0.1:1/v1"\ndialect = "glm-raw"\n')
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    assert resolve("deepseek-chat").capabilities.native_thinking
    r = resolve("rawglm")
    assert (r.backend, r.dialect) == ("raw-completions", "glm")
    assert type(model("rawglm")).__name__ == "RawCompletionModel"
