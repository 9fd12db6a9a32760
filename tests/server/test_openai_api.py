"""POST /v1/chat/completions and GET /v1/models through the official `openai` SDK (sync, async,
streaming, client tools), against a real uvicorn server on 127.0.0.1 whose models are
scripted test doubles (or a real HTTP upstream: the MockOpenAIServer test double)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from tests.server.helpers import catalog_file, serve_app, upstream_reply

from ponder.core.errors import UnknownModelError
from ponder.core.messages import ToolCall, Usage
from ponder.core.store import RunStore
from ponder.server import create_app
from ponder.server.openai_api import OpenAIOptions, parse_model
from ponder.testing import Reply, ScriptedModel
from ponder.testing_http import MockOpenAIServer

pytestmark = pytest.mark.timeout(120)


def factory_of(models: dict[str, ScriptedModel]):
    def make(name: str):
        if name not in models:
            raise UnknownModelError(name, list(models))
        return models[name]

    return make


@pytest.fixture
def serve(tmp_path):
    """serve(models, **options) -> base URL of a live server with those scripted models."""
    stack = []

    def start(models: dict[str, ScriptedModel], token: str | None = None, **options):
        cm = serve_app(create_app(db=tmp_path / "runs.db", model_factory=factory_of(models), token=token,
                                  openai=OpenAIOptions(**options)))
        stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def runs(tmp_path) -> list[dict]:
    with RunStore(tmp_path / "runs.db") as st:
        return st.runs()


# ---- model names ---------------------------------------------------------------------------------
def test_model_names_select_engine_and_models():
    assert parse_model("glm-4.7") == parse_model("glm-4.7")
    t = parse_model("swarm/kimi-k2.6+glm-4.7:think-tags")
    assert (t.engine, t.model, t.sub_model, t.think_tags) == ("swarm", "kimi-k2.6", "glm-4.7", True)
    t = parse_model("interleaved/glm-4.7")
    assert (t.engine, t.model, t.sub_model, t.think_tags) == ("interleaved", "glm-4.7", None, False)
    t = parse_model("vllm:http://h:8000/v1#qwen/qwen3")  # an endpoint, not an engine prefix
    assert t.engine is None and t.model == "vllm:http://h:8000/v1#qwen/qwen3"


# ---- plain model: one call, journaled --------------------------------------------------------------
def test_sync_plain_call_returns_reasoning_usage_cost_and_is_journaled(serve, tmp_path):
    m = ScriptedModel([Reply(reasoning="think hard", content="hello there",
                             usage=Usage(prompt_tokens=40, completion_tokens=12, reasoning_tokens=5, cached_prompt_tokens=8))],
                      name_="m", price_output=2.0)
    url = serve({"m": m})
    r = client(url).chat.completions.create(model="m", messages=[{"role": "system", "content": "be brief"},
                                                                 {"role": "user", "content": "hi"}])
    msg = r.choices[0].message
    assert msg.content == "hello there" and msg.model_extra["reasoning_content"] == "think hard"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (40, 12, 52)
    assert r.usage.completion_tokens_details.reasoning_tokens == 5 and r.usage.prompt_tokens_details.cached_tokens == 8
    assert r.usage.model_extra["cost_usd"] == pytest.approx(12 * 2.0 / 1e6)
    ext = r.model_extra["ponder"]
    assert ext["status"] == "ok" and r.id == f"chatcmpl-{ext['run_id']}"
    [row] = runs(tmp_path)
    assert row["id"] == ext["run_id"] and row["mode"] == "proxy" and row["status"] == "ok" and row["task"] == "hi"
    # what went to the model: the client's messages, as ponder messages
    assert [(x.role, x.content) for x in m.requests[0].messages] == [("system", "be brief"), ("user", "hi")]


async def test_async_stream_reasoning_then_answer_then_real_usage(serve):
    m = ScriptedModel([Reply(reasoning="step one. step two.", content="the answer",
                             usage=Usage(prompt_tokens=30, completion_tokens=9, reasoning_tokens=4))],
                      name_="m", price_output=1.0)
    url = serve({"m": m})
    c = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    stream = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}], stream=True,
                                             stream_options={"include_usage": True})
    kinds, reasoning, content, usage, finish = [], "", "", None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk
            continue
        d = chunk.choices[0].delta
        if (rc := (d.model_extra or {}).get("reasoning_content")):
            kinds.append("r")
            reasoning += rc
        if d.content:
            kinds.append("c")
            content += d.content
        finish = chunk.choices[0].finish_reason or finish
    await c.close()
    assert reasoning == "step one. step two." and content == "the answer" and finish == "stop"
    assert kinds.index("c") > kinds.index("r")  # reasoning streams before the answer
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == (30, 9)
    assert usage.usage.model_extra["cost_usd"] == pytest.approx(9 / 1e6)
    assert usage.model_extra["ponder"]["status"] == "ok" and usage.choices == []


def test_think_tags_put_reasoning_inside_content_streamed_and_not(serve):
    m = ScriptedModel(lambda req, n: Reply(reasoning="hmm", content="yes"), name_="m")
    url = serve({"m": m})
    c = client(url)
    r = c.chat.completions.create(model="m:think-tags", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "<think>hmm</think>yes"
    assert "reasoning_content" not in (r.choices[0].message.model_extra or {})
    parts = [ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True,
        extra_body={"ponder": {"reasoning_format": "think_tags"}}) if ch.choices]
    assert "".join(parts) == "<think>hmm</think>yes"


# ---- engine runs -----------------------------------------------------------------------------------
def test_interleaved_run_streams_tool_progress_as_reasoning_and_answers(serve, tmp_path):
    m = ScriptedModel([Reply(reasoning="add them", tool_calls=[("calculator", {"expression": "2+3"})]),
                       Reply(reasoning="the tool said 5", content="5")], name_="m")
    url = serve({"m": m}, tools=("calculator",))
    reasoning, content = "", ""
    with client(url).chat.completions.create(model="interleaved/m", messages=[{"role": "user", "content": "2+3?"}],
                                             stream=True) as s:
        for ch in s:
            if ch.choices:
                reasoning += (ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                content += ch.choices[0].delta.content or ""
    assert content == "5"
    assert '→ calculator {"expression":"2+3"}' in reasoning and "← calculator: 5" in reasoning
    assert reasoning.index("add them") < reasoning.index("→ calculator") < reasoning.index("the tool said 5")
    [row] = runs(tmp_path)
    assert row["mode"] == "interleaved" and row["status"] == "ok" and row["answer"] == "5"
    # the engine's own system prompt leads, with the server's tools offered
    assert m.requests[0].messages[0].role == "system" and [t["function"]["name"] for t in m.requests[0].tools] == ["calculator"]


def test_swarm_run_answers_with_finish_and_shows_agents(serve, tmp_path):
    from tests.engines.test_swarm import fan_out, subtask, swarm_script

    orch = ScriptedModel(swarm_script(fan_out([subtask("a"), subtask("b")], "A [a] and B [b]")), name_="orch")
    sub = ScriptedModel(lambda req, n: Reply(reasoning="sub thinks", content="sub result"), name_="sub")
    url = serve({"orch": orch, "sub": sub})
    r = client(url).chat.completions.create(model="swarm/orch+sub", messages=[{"role": "user", "content": "do two things"}])
    msg = r.choices[0].message
    assert msg.content == "A [a] and B [b]"
    rc = msg.model_extra["reasoning_content"]
    assert "+ agent" in rc and "✓ agent" in rc and "plan it" in rc
    assert "sub thinks" not in rc  # sub-agents' own reasoning stays out of the main stream
    assert sub.requests and all(not any(t["function"]["name"] == "plan" for t in q.tools) for q in sub.requests)
    assert r.model_extra["ponder"]["model_calls"] == 5  # plan, wait, finish + two sub-agents
    assert runs(tmp_path)[0]["mode"] == "swarm"
    # a follow-up: a swarm keeps no conversation, so the earlier turns come as a transcript
    client(url).chat.completions.create(model="swarm/orch+sub", messages=[
        {"role": "user", "content": "do two things"}, {"role": "assistant", "content": "A [a] and B [b]"},
        {"role": "user", "content": "now compare them"}])
    task = [m for m in orch.requests[-1].messages if m.role == "user"][0].content
    assert "Conversation so far" in task and "Assistant: A [a] and B [b]" in task and task.endswith("now compare them")


def test_engine_options_and_budget_end_as_length(serve, tmp_path):
    m = ScriptedModel(lambda req, n: Reply(reasoning="again", tool_calls=[("calculator", {"expression": f"{n}+1"})]),
                      name_="loop")
    url = serve({"loop": m}, tools=("calculator",))
    r = client(url).chat.completions.create(model="interleaved/loop", messages=[{"role": "user", "content": "q"}],
                                            extra_body={"ponder": {"max_steps": 2}})
    assert r.choices[0].finish_reason == "length" and r.model_extra["ponder"]["status"] == "budget"
    assert len(m.requests) == 2 and "step budget" in r.model_extra["ponder"]["reason"]
    with pytest.raises(openai.UnprocessableEntityError, match="ponder.max_steps"):
        client(url).chat.completions.create(model="interleaved/loop", messages=[{"role": "user", "content": "q"}],
                                            extra_body={"ponder": {"max_steps": 0}})


def test_multi_turn_interleaved_continues_the_engines_hidden_steps(serve):
    m = ScriptedModel([Reply(reasoning="use the tool", tool_calls=[ToolCall(id="t1", name="calculator",
                                                                              arguments={"expression": "6*7"})]),
                       Reply(reasoning="it is 42", content="42"),
                       Reply(reasoning="double it", content="84")], name_="m")
    url = serve({"m": m}, tools=("calculator",))
    c = client(url)
    first = c.chat.completions.create(model="interleaved/m", messages=[{"role": "user", "content": "6*7?"}])
    assert first.choices[0].message.content == "42"
    second = c.chat.completions.create(model="interleaved/m", messages=[
        {"role": "user", "content": "6*7?"}, {"role": "assistant", "content": "42"},
        {"role": "user", "content": "and doubled?"}])
    assert second.choices[0].message.content == "84" and second.model_extra["ponder"]["restored_reasoning"] == 1
    sent = m.requests[2].messages
    roles = [x.role for x in sent]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[2].tool_calls[0].id == "t1" and sent[2].reasoning.text == "use the tool"
    assert sent[3].content.strip() == "42" and sent[4].reasoning.text == "it is 42"


# ---- client tools: the reasoning-preserving proxy -----------------------------------------------------
WEATHER = [{"type": "function", "function": {"name": "weather", "description": "weather in a city",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@pytest.mark.parametrize("engine", ["", "interleaved/"])
def test_client_tool_round_trip_restores_dropped_reasoning_byte_exact(serve, engine):
    reasoning = "Paris? Let me check\nthe weather  — exactly. "
    m = ScriptedModel([Reply(reasoning=reasoning, tool_calls=[ToolCall(id="functions.weather:0", name="weather",
                                                                        arguments={"city": "Paris"},
                                                                        raw_arguments='{"city":  "Paris"}')]),
                       Reply(reasoning="sunny it is", content="It is sunny in Paris.")],
                      name_="k", wire_dialect="kimi")
    url = serve({"k": m})
    c = client(url)
    history = [{"role": "user", "content": "weather in Paris?"}]
    r1 = c.chat.completions.create(model=engine + "k", messages=history, tools=WEATHER)
    assert r1.choices[0].finish_reason == "tool_calls"
    call = r1.choices[0].message.tool_calls[0]
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_") and call.id != "functions.weather:0"  # ponder's own, unique id
    # the client keeps the tool call but drops the reasoning, as OpenAI clients do
    history += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
                {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"}]
    r2 = c.chat.completions.create(model=engine + "k", messages=history, tools=WEATHER)
    assert r2.choices[0].message.content == "It is sunny in Paris."
    assert r2.model_extra["ponder"]["restored_reasoning"] == 1
    wire = m.payloads[1]["messages"]
    asst = next(x for x in wire if x["role"] == "assistant")
    assert asst["reasoning_content"] == reasoning  # what Kimi requires, byte for byte
    assert asst["tool_calls"][0]["id"] == "functions.weather:0"
    assert asst["tool_calls"][0]["function"]["arguments"] == '{"city":  "Paris"}'  # as generated
    assert next(x for x in wire if x["role"] == "tool")["tool_call_id"] == "functions.weather:0"
    # interleaved/ asks for thinking on every call; a plain name leaves the provider's default
    assert m.requests[0].thinking == ("on" if engine else None)


def test_client_tools_over_real_http_upstream_streamed(tmp_path, monkeypatch):
    """A real HTTP upstream in GLM's dialect: the second request carries the first reply's
    reasoning although the client (streaming through the SDK) never saw it come back."""
    with MockOpenAIServer(lambda p, n: upstream_reply(p, n) if n != 0 else _tool_reply()).in_thread() as mock:
        monkeypatch.setenv("PONDER_MODELS", str(catalog_file(tmp_path, mock.base_url)))
        with serve_app(create_app(db=tmp_path / "runs.db")) as url:
            c = client(url)
            history = [{"role": "user", "content": "weather in Oslo?"}]
            calls: dict[int, dict] = {}
            with c.chat.completions.create(model="mock-glm", messages=history, tools=WEATHER, stream=True) as s:
                for ch in s:
                    for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
                        d = calls.setdefault(tc.index, {"id": tc.id, "type": "function",
                                                        "function": {"name": "", "arguments": ""}})
                        d["function"]["name"] += tc.function.name or ""
                        d["function"]["arguments"] += tc.function.arguments or ""
            [call] = calls.values()
            history += [{"role": "assistant", "content": "", "tool_calls": [call]},
                        {"role": "tool", "tool_call_id": call["id"], "content": "snow"}]
            r2 = c.chat.completions.create(model="mock-glm", messages=history, tools=WEATHER)
            assert r2.choices[0].message.content == "plain answer"
            # a third turn: the answer's reasoning comes back too (GLM's preserved thinking)
            history += [{"role": "assistant", "content": "plain answer"}, {"role": "user", "content": "thanks"}]
            c.chat.completions.create(model="mock-glm", messages=history)
    second, third = mock.requests[1]["messages"], mock.requests[2]["messages"]
    a1 = next(x for x in second if x["role"] == "assistant")
    assert a1["reasoning_content"] == "Oslo: check the forecast" and a1["tool_calls"][0]["id"] == "upstream_id_7"
    assert next(x for x in second if x["role"] == "tool")["tool_call_id"] == "upstream_id_7"
    assert [x.get("reasoning_content") for x in third if x["role"] == "assistant"] == [
        "Oslo: check the forecast", "a plain thought"]


def _tool_reply():
    from ponder.testing_http import sse_text_reply

    return sse_text_reply(reasoning="Oslo: check the forecast", usage={"prompt_tokens": 5, "completion_tokens": 3},
                          tool_calls=[{"id": "upstream_id_7", "name": "weather", "arguments": {"city": "Oslo"}}])


# ---- errors, limits, auth --------------------------------------------------------------------------
def test_errors_come_in_openai_shape_with_the_right_status(serve):
    m = ScriptedModel(lambda req, n: Reply(error="upstream exploded"), name_="bad")
    url = serve({"bad": m, "ok": ScriptedModel([Reply(content="x")], name_="ok")}, max_request_bytes=4096)
    c = client(url)
    user = [{"role": "user", "content": "q"}]
    with pytest.raises(openai.NotFoundError, match="unknown model 'nope'"):
        c.chat.completions.create(model="nope", messages=user)
    with pytest.raises(openai.UnprocessableEntityError, match="blank"):
        c.chat.completions.create(model="ok", messages=[{"role": "user", "content": "   "}])
    with pytest.raises(openai.InternalServerError) as e:
        c.chat.completions.create(model="bad", messages=user)
    assert e.value.status_code == 502 and "upstream exploded" in e.value.message
    with pytest.raises(openai.InternalServerError):  # streamed: the status too, nothing was sent yet
        c.chat.completions.create(model="bad", messages=user, stream=True)
    with pytest.raises(openai.BadRequestError, match="runs its own tools"):
        c.chat.completions.create(model="swarm/ok", messages=user, tools=WEATHER)
    with pytest.raises(openai.PermissionDeniedError, match="allow-endpoint"):
        c.chat.completions.create(model="vllm:http://10.1.2.3:8000/v1#x", messages=user)
    with httpx.Client(base_url=url, timeout=30) as h:
        for body, status, words in [
            (b"{not json", 400, "not valid JSON"),
            (b'{"model": "ok"}', 422, "messages"),
            (b'{"model": "ok", "messages": [{"role": "user", "content": "q"}], "n": 3}', 422, "one choice"),
            (b'{"model": "ok", "messages": [{"role": "wizard", "content": "q"}]}', 422, "role"),
            (b'{"model": "ok", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}', 413, "4096"),
        ]:
            r = h.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            err = r.json()["error"]
            assert r.status_code == status and words in err["message"], (status, r.text)
            assert set(err) == {"message", "type", "param", "code"}


def test_token_is_required_when_set(serve):
    url = serve({"ok": ScriptedModel(lambda req, n: Reply(content="fine"), name_="ok")}, token="s3cret")
    with pytest.raises(openai.AuthenticationError):
        client(url, "wrong").chat.completions.create(model="ok", messages=[{"role": "user", "content": "q"}])
    with pytest.raises(openai.AuthenticationError):
        client(url, "wrong").models.list()
    r = client(url, "s3cret").chat.completions.create(model="ok", messages=[{"role": "user", "content": "q"}])
    assert r.choices[0].message.content == "fine"
    assert httpx.get(url + "/healthz").status_code == 200  # health checks need no token
    r = httpx.get(url + "/v1/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def _final_status(tmp_path, run_id=None) -> dict:
    deadline = time.time() + 20
    while True:
        rows = runs(tmp_path)
        row = next((x for x in rows if run_id in (None, x["id"])), None)
        if (row and row["status"] != "running") or time.time() > deadline:
            return row
        time.sleep(0.1)


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_cancels_the_run_and_it_is_recorded(serve, tmp_path, stream):
    m = ScriptedModel([Reply(reasoning="let me use the tool", tool_calls=[("calculator", {"expression": "1+1"})]),
                       Reply(content="never seen", delay_s=60)], name_="slow")
    url = serve({"slow": m}, tools=("calculator",))
    body = {"model": "interleaved/slow", "stream": stream, "messages": [{"role": "user", "content": "q"}]}
    run_id = None
    if stream:
        with httpx.Client(timeout=30) as h, h.stream("POST", url + "/v1/chat/completions", json=body) as r:
            run_id = r.headers["x-ponder-run-id"]
            for line in r.iter_lines():
                if "calculator" in line:
                    break  # the client goes away while the second model call is pending
    else:
        with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=httpx.Timeout(30, read=1.5)) as h:
            h.post(url + "/v1/chat/completions", json=body)  # gives up waiting and closes the connection
    row = _final_status(tmp_path, run_id)
    assert row["status"] == "cancelled" and row["reason"] == "cancelled by the caller", row


def test_allowed_endpoint_and_unrecorded_passthrough(tmp_path):
    with MockOpenAIServer(upstream_reply).in_thread() as mock:
        opts = OpenAIOptions(allow_endpoints=(mock.base_url,), record_passthrough=False)
        with serve_app(create_app(db=tmp_path / "runs.db", openai=opts)) as url:
            c = client(url)
            r = c.chat.completions.create(model=f"glm:{mock.base_url}#glm-4.7", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "plain answer"
            assert r.model_extra["ponder"]["run_id"] is None and r.usage.prompt_tokens == 11
            with pytest.raises(openai.PermissionDeniedError):
                c.chat.completions.create(model="glm:http://127.0.0.1:9/v1#glm-4.7", messages=[{"role": "user", "content": "hi"}])
    assert mock.requests[0]["model"] == "glm-4.7" and runs(tmp_path) == []


def test_models_list_is_openai_shaped_with_ponder_fields(serve):
    url = serve({})
    ids = {m.id: m for m in client(url).models.list().data}
    for name in ("glm-4.7", "interleaved/glm-4.7", "swarm/kimi-k2.6", "smollm2"):
        assert name in ids and ids[name].object == "model" and ids[name].owned_by == "ponder"
    g = ids["swarm/glm-4.7"].model_extra
    assert g["engine"] == "swarm" and g["name"] == "glm-4.7" and g["dialect"] == "glm" and "price_output" in g
    raw = httpx.get(url + "/v1/models").json()
    assert raw["object"] == "list" and isinstance(raw["data"], list)


def test_provider_rules_refuse_before_sending_with_400(tmp_path, monkeypatch):
    """An image to a model whose profile has no vision: refused by ponder (400), never sent."""
    with MockOpenAIServer(upstream_reply).in_thread() as mock:
        monkeypatch.setenv("PONDER_MODELS", str(catalog_file(tmp_path, mock.base_url)))
        with serve_app(create_app(db=tmp_path / "runs.db")) as url:
            with pytest.raises(openai.BadRequestError, match="image") as e:
                client(url).chat.completions.create(model="mock-glm", messages=[{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": "what is this?"}]}])
    assert e.value.body["code"] == "request_refused" and mock.requests == []


def test_disconnect_during_a_proxied_stream_cancels_the_call_and_records_it(tmp_path, monkeypatch):
    from ponder.testing_http import MockReply, Pause

    stalled = MockReply(sse=[{"choices": [{"index": 0, "delta": {"reasoning_content": "first thought"}}]}, Pause(60),
                             {"choices": [{"index": 0, "delta": {"content": "never"}}]}])
    with MockOpenAIServer(lambda p, n: stalled).in_thread() as mock:
        monkeypatch.setenv("PONDER_MODELS", str(catalog_file(tmp_path, mock.base_url)))
        with serve_app(create_app(db=tmp_path / "runs.db")) as url:
            body = {"model": "mock-glm", "stream": True, "messages": [{"role": "user", "content": "q"}]}
            with httpx.Client(timeout=30) as h, h.stream("POST", url + "/v1/chat/completions", json=body) as r:
                run_id = r.headers["x-ponder-run-id"]
                assert any("first thought" in line for line in r.iter_lines())
            row = _final_status(tmp_path, run_id)
    assert row["status"] == "cancelled" and row["mode"] == "proxy"
