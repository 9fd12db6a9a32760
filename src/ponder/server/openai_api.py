"""`POST /v1/chat/completions` and `GET /v1/models`: ponder for every OpenAI-compatible client.

The model name picks what runs:

* `glm-4.7` (a catalog name): one call of that model (the `proxy` engine), in its wire
  dialect, the reasoning of earlier turns put back (`conversation.py`);
* `interleaved/glm-4.7`: the Interleaved engine with the server's tools (`--tools`); with the
  client's own `tools` in the request it is a reasoning-preserving proxy instead: one call,
  thinking on, the tool calls handed back to the client (`finish_reason: tool_calls`);
* `swarm/kimi-k2.6` or `swarm/kimi-k2.6+glm-4.7` (orchestrator + sub-agents' model);
* any of them with `:think-tags` appended: reasoning inside `content` as `<think>…</think>`
  for clients that show only content (also `"ponder": {"reasoning_format": "think_tags"}`).

Every engine run, and every proxy call unless `record_passthrough` is off, goes through
`ponder.runs` in a task of its own (`live.py`): it is journaled whatever the client does,
and a client that disconnects cancels it (stored as `cancelled`). Only catalog models run:
an endpoint URL as the model name is refused unless the operator allowed that URL
(`--allow-endpoint`), and GGUF paths never are. Errors are OpenAI's shape and status codes:
400 bad request, 401 auth (`auth.py`), 403 endpoint not allowed, 404 unknown model, 413 too
large, 422 invalid (a blank question included), 500 ponder/engine, 502 upstream model.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from .. import runs as runs_api
from ..core import fastjson
from ..core.errors import ConfigError, MissingKeyError, UnknownModelError
from ..core.events import ContentDelta, ErrorEvent, ModelCallFinished, RunFinished
from ..core.messages import Message
from ..core.metrics import RunMetrics
from ..core.store import RunStore
from ..engines.build import ENGINES, EngineConfig, build_engine, build_tools
from ..models.base import ChatModel, ChatRequest
from ..models.catalog import catalog
from ..models.profiles import adapt
from ..tools.base import Tool
from . import proxy as _proxy  # noqa: F401 - registers the `proxy` engine
from .conversation import DEFAULT_CACHE_BYTES, Conversation, ReasoningCache, convert
from .live import LiveRun, watch_disconnect
from .openai_schema import APIError, ChatCompletionRequest, validation_message
from .openai_stream import SSE, Translator

THINK_SUFFIX = ":think-tags"
DEFAULT_MAX_REQUEST_BYTES = 8 * 2**20
MAX_CACHED_MODELS = 256


@dataclass
class OpenAIOptions:
    """What the operator decides (`ponder serve` flags)."""

    allow_endpoints: tuple[str, ...] = ()  # endpoint URLs a client may name (DIALECT:URL#ID)
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    tools: tuple[str, ...] = ("calculator", "search")  # the server-side tools of engine runs
    record_passthrough: bool = True  # journal proxy calls like engine runs
    cache_bytes: int = DEFAULT_CACHE_BYTES  # the reasoning kept for clients' histories


@dataclass(slots=True)
class Target:
    engine: str | None  # None: a direct (proxy) call
    model: str
    sub_model: str | None = None
    think_tags: bool = False


def parse_model(name: str) -> Target:
    """`[ENGINE/]MODEL[+SUB_MODEL][:think-tags]` (a sub-model only for a swarm)."""
    think = name.endswith(THINK_SUFFIX)
    if think:
        name = name[: -len(THINK_SUFFIX)]
    engine = None
    head, sep, rest = name.partition("/")
    if sep and head in ENGINES and head != _proxy.MODE:
        engine, name = head, rest
    sub = None
    if engine == "swarm" and "+" in name:
        name, sub = name.split("+", 1)
    return Target(engine, name.strip(), sub.strip() if sub else None, think)


@dataclass(slots=True)
class _Plan:
    """One request, ready to run."""

    target: Target
    conv: Conversation
    live: LiveRun
    translator: Translator
    engine: Any = None  # an engine run's engine (to read its conversation afterwards)
    base: int = 0  # the engine's history length before the run (where the turn starts)
    proxy: bool = False
    gate: asyncio.Event | None = None  # the proxy waits on it until the first chunk is out


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(e: APIError) -> Response:
    return Response(content=e.json_bytes(), status_code=e.status, media_type="application/json")


def run_error(fin: RunFinished | None) -> APIError:
    """The HTTP error for a run that failed before anything reached the client."""
    if fin is None:
        return APIError(500, "the run ended without a result", type="server_error", code="internal_error")
    reason = fin.reason or "the run failed"
    where = f" (run {fin.run_id})" if fin.run_id else ""
    if "(RequestRefused)" in reason:
        return APIError(400, reason + where, code="request_refused")
    if reason.startswith("model error"):
        return APIError(502, reason + where, type="server_error", code="upstream_error")
    return APIError(500, reason + where, type="server_error", code="engine_error")


def _transcript(conv: Conversation) -> str:
    """An earlier conversation, as text in front of the question (engines without a
    conversation of their own, e.g. the swarm)."""
    earlier = conv.messages[: conv.last_user]
    if not earlier:
        return conv.question
    lines = []
    for m in earlier:
        if m.role == "system":
            lines.append(f"Instructions: {m.content or ''}")
        elif m.role == "user":
            lines.append(f"User: {m.content or ''}")
        elif m.role == "assistant" and m.content:
            lines.append(f"Assistant: {m.content}")
    return "Conversation so far:\n" + "\n\n".join(lines) + "\n\nAnswer the user's latest message:\n" + conv.question


async def _direct(model: ChatModel, request: ChatRequest, sink: Callable[[Any], Any],
                  limit_s: float | None = None) -> None:
    """One unrecorded call (`record_passthrough` off), closed by a `RunFinished` without a run
    id; `limit_s` (`ponder.timeout_s`) is its wall clock, as a recorded call's budget is."""
    final: ModelCallFinished | None = None
    err: ErrorEvent | None = None
    content: list[str] = []
    try:
        async with asyncio.timeout(limit_s):
            async for ev in model.stream(request):
                sink(ev)
                tp = type(ev)
                if tp is ModelCallFinished:
                    final = ev  # type: ignore[assignment]
                elif tp is ErrorEvent:
                    err = ev  # type: ignore[assignment]
                elif tp is ContentDelta:
                    content.append(ev.text)  # type: ignore[attr-defined]
    except TimeoutError:
        sink(RunFinished(status="budget", answer="".join(content),
                         reason=f"wall-clock budget reached (wall_timeout_s = {limit_s:g}s)",
                         metrics=RunMetrics(model_calls=1, steps=1)))
        return
    if final is not None:
        sink(RunFinished(status="ok", answer=final.message.content or "",
                         metrics=RunMetrics(usage=final.usage, cost_usd=final.cost_usd, model_calls=1, steps=1)))
    else:
        reason = f"model error ({err.error_type}): {err.message}" if err else "the model ended without a result"
        sink(RunFinished(status="error", reason=reason, metrics=RunMetrics(model_calls=1, model_errors=1)))


class OpenAIService:
    """The state behind the endpoints: the store, models, tools, and the reasoning cache."""

    def __init__(self, store: RunStore, model_factory: Callable[[str], ChatModel] | None, options: OpenAIOptions):
        self.store = store
        self.options = options
        self.cache = ReasoningCache(options.cache_bytes)
        self._factory = model_factory
        self._models: dict[str, ChatModel] = {}  # built once per name (catalog backends only)
        self._tools: list[Tool] | None = None
        self._allowed = {u.rstrip("/") for u in options.allow_endpoints}

    # ---- models -----------------------------------------------------------------------------------
    def check_served(self, name: str) -> None:
        """Only catalog models run: an endpoint URL must be one the operator allowed, and a
        model file never is (the server would read any path a client names). `POST /v1/runs`
        uses this check too."""
        if not name:
            raise APIError(404, "no model named: use a catalog name (GET /v1/models lists them)",
                           param="model", code="model_not_found")
        head, sep, rest = name.partition(":")
        if sep and rest.startswith(("http://", "https://")):
            url = rest.partition("#")[0].rstrip("/")
            if url not in self._allowed:
                raise APIError(403, f"this server runs catalog models only; endpoint {url} is not allowed (the operator "
                                    "can allow it with `ponder serve --allow-endpoint URL`)",
                               type="permission_error", param="model", code="endpoint_not_allowed")
        elif name.endswith(".gguf"):
            raise APIError(403, "this server runs catalog models only, not model files; add the GGUF to the catalog "
                                "(models.toml) on the server", type="permission_error", param="model",
                           code="model_not_allowed")

    def model(self, name: str) -> ChatModel:
        self.check_served(name)
        if self._factory is None:
            hit = self._models.get(name)
            if hit is not None:
                return hit
        try:
            if self._factory is not None:
                return self._factory(name)
            from ..models.registry import model as make

            m = make(name)
            if len(self._models) >= MAX_CACHED_MODELS:  # allowed endpoints can name any model id
                self._models.clear()
            self._models[name] = m
            return m
        except UnknownModelError:
            raise APIError(404, f"unknown model {name!r}: GET /v1/models lists the models this server runs",
                           param="model", code="model_not_found") from None
        except MissingKeyError as e:
            raise APIError(500, f"model {name!r} is not configured on this server: {e}", type="server_error",
                           code="model_not_configured") from None
        except (ConfigError, ValueError) as e:
            raise APIError(400, str(e), param="model") from None

    def tools(self) -> list[Tool]:
        if self._tools is None:
            self._tools = build_tools(EngineConfig(tools=list(self.options.tools)))
        return self._tools

    def models_list(self) -> dict[str, Any]:
        try:
            specs = catalog()
        except ConfigError as e:
            raise APIError(500, str(e), type="server_error", code="catalog_error") from None
        engines = [e for e in ENGINES if e != _proxy.MODE]
        data: list[dict[str, Any]] = []
        for s in specs.values():
            info = {"name": s.name, "dialect": s.dialect, "model_id": s.model_id, "key_set": s.key_is_set(),
                    "price_input": s.price_input, "price_cached_input": s.price_cached_input,
                    "price_output": s.price_output, "context_window": s.context_window,
                    "native_thinking": s.native_thinking, "description": s.description}
            for eng in (None, *engines):
                data.append({"id": f"{eng}/{s.name}" if eng else s.name, "object": "model", "created": 0,
                             "owned_by": "ponder", "engine": eng, **info})
        return {"object": "list", "data": data}

    # ---- a request --------------------------------------------------------------------------------
    async def read_body(self, request: Request) -> bytes:
        cap = self.options.max_request_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise APIError(413, f"request body is {int(declared)} bytes; this server takes at most {cap} "
                                "(`ponder serve --max-request-mb`)", code="request_too_large")
        parts: list[bytes] = []
        n = 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > cap:
                raise APIError(413, f"request body exceeds {cap} bytes (`ponder serve --max-request-mb`)",
                               code="request_too_large")
            parts.append(chunk)
        return b"".join(parts)

    @staticmethod
    def parse(body: bytes) -> ChatCompletionRequest:
        try:
            obj = fastjson.loads(body)
        except ValueError as e:
            raise APIError(400, f"the request body is not valid JSON ({e}); send a chat-completions JSON object") from None
        if not isinstance(obj, dict):
            raise APIError(400, "the request body must be a JSON object with model and messages")
        try:
            return ChatCompletionRequest.model_validate(obj)
        except ValidationError as e:
            msg, loc = validation_message(e.errors())
            raise APIError(422, msg, param=loc, code="validation_error") from None

    def _chat_request(self, req: ChatCompletionRequest, conv: Conversation, model: ChatModel,
                      thinking: str | None) -> ChatRequest:
        rf = req.response_format or {}
        schema = None
        extra: dict[str, Any] = {}
        if rf.get("type") == "json_schema":
            js = rf.get("json_schema") or {}
            schema = js.get("schema") if isinstance(js, dict) else None
        elif rf.get("type") == "json_object":
            extra["response_format"] = {"type": "json_object"}
        stop = [req.stop] if isinstance(req.stop, str) else req.stop
        chat = ChatRequest(messages=conv.messages, tools=req.tools or [],
                           tool_choice=req.tool_choice if req.tools else None,
                           thinking=None if thinking in (None, "auto") else thinking,  # type: ignore[arg-type]
                           reasoning_effort=req.reasoning_effort, max_tokens=req.max_completion_tokens or req.max_tokens,
                           temperature=req.temperature, top_p=req.top_p, stop=stop, seed=req.seed,
                           response_schema=schema, extra_body=extra)
        # a provider's fixed values (Kimi's sampling) are dropped, not refused: clients send
        # temperature by default, and the point of a proxy is that the call goes through
        return adapt(model.spec, chat)

    def plan(self, req: ChatCompletionRequest) -> _Plan:
        t = parse_model(req.model)
        think_tags = t.think_tags or req.think_tags()
        conv = convert(req.messages, self.cache)
        if conv.last_user < 0:
            raise APIError(422, "messages need a user message: the question to answer", param="messages",
                           code="validation_error")
        task = conv.question
        if not task.strip():
            if conv.messages[conv.last_user].images:
                task = "[image]"
            else:
                raise APIError(422, "the last user message is blank: send the question as text", param="messages",
                               code="validation_error")
        thinking = req.thinking_mode()
        if t.engine is None or (req.tools and t.engine == "interleaved"):
            return self._plan_proxy(req, t, conv, task, thinking or ("on" if t.engine else "auto"), think_tags)
        if req.tools:
            raise APIError(400, f"the {t.engine} engine runs its own tools; to use your tools, call an "
                                "interleaved/MODEL or a plain MODEL", param="tools")
        return self._plan_engine(req, t, conv, thinking or "auto", think_tags)

    def _plan_proxy(self, req: ChatCompletionRequest, t: Target, conv: Conversation, task: str, thinking: str,
                    think_tags: bool) -> _Plan:
        model = self.model(t.model)
        chat = self._chat_request(req, conv, model, thinking)
        tr = Translator(think_tags=think_tags, proxy=True)
        limit = req.ponder.timeout_s if req.ponder is not None else None  # the call's wall clock
        if not self.options.record_passthrough:
            live = LiveRun(lambda sink, cancel: _direct(model, chat, sink, limit), hard=True)
            return _Plan(t, conv, live, tr, proxy=True)
        try:
            engine = build_engine(EngineConfig(mode=_proxy.MODE, model=t.model, thinking=thinking, tools=[],  # type: ignore[arg-type]
                                               timeout_s=limit), model_factory=lambda _n, _c: model, tools=[])
        except (ConfigError, ValueError) as e:
            raise APIError(400, str(e)) from None
        engine.request = chat  # type: ignore[attr-defined]
        gate = engine.gate = asyncio.Event() if req.stream else None  # type: ignore[attr-defined]
        store = self.store
        live = LiveRun(lambda sink, cancel: runs_api.execute(engine, task, sink, store=store, cancel=cancel))
        return _Plan(t, conv, live, tr, engine=engine, proxy=True, gate=gate)

    def _plan_engine(self, req: ChatCompletionRequest, t: Target, conv: Conversation, thinking: str,
                     think_tags: bool) -> _Plan:
        if conv.last_user != len(conv.messages) - 1:
            raise APIError(400, f"a {t.engine} run answers the last message, which must be the user's; to send tool "
                                "results, include your tools in the request", param="messages")
        if conv.messages[-1].images:
            raise APIError(400, f"image inputs go to a plain model (one call), not a {t.engine} run; name the model "
                                "without the engine prefix", param="messages")
        p = req.ponder
        opts: dict[str, Any] = {}
        if p is not None:
            opts = {k: v for k, v in p.model_dump(exclude={"reasoning_format"}).items() if v is not None}
        try:
            cfg = EngineConfig(mode=t.engine, model=t.model, sub_model=t.sub_model, thinking=thinking,  # type: ignore[arg-type]
                               tools=list(self.options.tools), **opts)
            engine = build_engine(cfg, model_factory=lambda name, _c: self.model(name), tools=self.tools())
        except (ConfigError, ValueError) as e:
            raise APIError(400, str(e)) from None
        task = conv.question
        base = 0
        if hasattr(engine, "messages") and hasattr(engine, "system_prompt"):  # an engine that keeps a conversation
            history = conv.messages[:-1]
            system = [engine.system_prompt] if engine.system_prompt else []
            if history and history[0].role == "system":
                system.append(history[0].content or "")
                history = history[1:]
            engine.messages = ([Message.system("\n\n".join(system))] if system else []) + history
            base = len(engine.messages)
        else:
            task = _transcript(conv)
        tr = Translator(main_agent=engine.main_agent, think_tags=think_tags,
                        answer_at_end=engine.mode != "interleaved")
        store = self.store
        live = LiveRun(lambda sink, cancel: runs_api.execute(engine, task, sink, store=store, cancel=cancel))
        return _Plan(t, conv, live, tr, engine=engine, base=base)

    def remember(self, plan: _Plan, client_content: str) -> None:
        """After a completed reply: keep what the client will not send back (see conversation.py)."""
        tr, cache, question = plan.translator, self.cache, plan.conv.question
        if plan.proxy:
            reply = tr.reply
            if reply is None:
                return
            if reply.tool_calls and tr.handed:
                cache.remember_calls(reply, tr.handed)
            elif reply.reasoning is not None and client_content:
                cache.remember_answer(question, client_content, (reply,))
            return
        messages = getattr(plan.engine, "messages", None)
        if not isinstance(messages, list) or not client_content or len(messages) <= plan.base + 1:
            return
        steps = messages[plan.base + 1:]
        last = steps[-1]
        if last.role != "assistant" or last.tool_calls:  # the run was cut before an answer: close the turn
            steps = [*steps, Message.assistant(client_content)]
        cache.remember_answer(question, client_content, tuple(steps))
        if tr.fin is not None and tr.fin.answer and tr.fin.answer != client_content:
            cache.remember_answer(question, tr.fin.answer, tuple(steps))

    # ---- responses --------------------------------------------------------------------------------
    async def complete(self, request: Request, req: ChatCompletionRequest, plan: _Plan) -> Response:
        live, tr = plan.live, plan.translator
        watcher = asyncio.get_running_loop().create_task(watch_disconnect(request.receive, live.stop))
        try:
            while (ev := await live.next()) is not None:
                tr.feed(ev)
        except Exception as e:  # noqa: BLE001 - a bug in a run must still answer in OpenAI's shape
            return error_response(APIError(500, f"the run failed: {type(e).__name__}: {e}", type="server_error",
                                           code="internal_error"))
        finally:
            watcher.cancel()
        fin = tr.fin
        if fin is None or fin.status == "error" or (fin.status == "cancelled" and not tr.emitted):
            return error_response(run_error(fin))
        msg = tr.message()
        if not plan.proxy and fin.answer is not None and not tr.think_tags:
            msg["content"] = fin.answer  # the answer, without the steps' interim text
        content = msg.get("content") or ""
        self.remember(plan, tr.answer_text if tr.think_tags else content)
        body = {"id": f"chatcmpl-{tr.run_id or uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": req.model, "system_fingerprint": None,
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": tr.finish_reason()}],
                "usage": tr.usage(), "ponder": tr.extension(plan.conv.restored)}
        return _json(body, headers=_run_headers(tr, plan))

    async def stream(self, req: ChatCompletionRequest, plan: _Plan) -> Response:
        live, tr = plan.live, plan.translator
        deltas: list[dict[str, Any]] = []
        try:
            while not deltas:  # hold the headers until there is something to say, so that a
                ev = await live.next()  # failure before any output gets its real status code
                if ev is None:
                    break
                deltas = tr.feed(ev)
        except Exception as e:  # noqa: BLE001 - a bug in a run must still answer in OpenAI's shape
            live.stop()
            return error_response(APIError(500, f"the run failed: {type(e).__name__}: {e}", type="server_error",
                                           code="internal_error"))
        except BaseException:
            live.stop()
            raise
        if not deltas and (tr.fin is None or tr.fin.status in ("error", "cancelled")):
            return error_response(run_error(tr.fin))
        sse = SSE(f"chatcmpl-{tr.run_id or uuid.uuid4().hex}", req.model)
        first = sse.delta({"role": "assistant", "content": ""}) + b"".join(map(sse.delta, deltas))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(self._sse_body(plan, sse, first, include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                          **_run_headers(tr, plan)})

    async def _sse_body(self, plan: _Plan, sse: SSE, first: bytes, include_usage: bool) -> AsyncIterator[bytes]:
        live, tr = plan.live, plan.translator
        queue = live.queue
        complete = False
        try:
            yield first
            if plan.gate is not None:
                plan.gate.set()  # the first chunk is out: the run may go on to its bookkeeping
            try:
                while (ev := await live.next()) is not None:
                    out = tr.feed(ev)
                    while not queue.empty() and not live.ended:  # a burst goes out as one write
                        nxt = await live.next()
                        if nxt is None:
                            break
                        out += tr.feed(nxt)
                    if out:
                        yield b"".join(map(sse.delta, out))
            except Exception as e:  # noqa: BLE001 - told to the client in the stream
                yield SSE.error(APIError(500, f"the run failed: {type(e).__name__}: {e}", type="server_error",
                                         code="internal_error").body()) + SSE.DONE
                complete = True
                return
            fin = tr.fin
            tail = []
            if fin is None or fin.status == "error":
                tail.append(SSE.error(run_error(fin).body()))
            else:
                tail.append(sse.finish(tr.finish_reason()))
                if include_usage:
                    tail.append(sse.usage(tr.usage(), tr.extension(plan.conv.restored)))
            tail.append(SSE.DONE)
            complete = True
            if fin is not None and fin.status in ("ok", "budget"):
                self.remember(plan, tr.answer_text)
            yield b"".join(tail)
        finally:
            if plan.gate is not None:
                plan.gate.set()
            if not complete:
                live.stop()  # the client went away: the run ends as cancelled, and is recorded


def _run_headers(tr: Translator, plan: _Plan) -> dict[str, str]:
    h = {"X-Ponder-Restored-Reasoning": str(plan.conv.restored)}
    if tr.run_id:
        h["X-Ponder-Run-Id"] = tr.run_id
    return h


def router(service: OpenAIService) -> APIRouter:
    r = APIRouter()

    @r.get("/v1/models")
    async def list_models() -> Response:
        try:
            return _json(service.models_list())
        except APIError as e:
            return error_response(e)

    @r.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            req = service.parse(await service.read_body(request))
            plan = service.plan(req)
        except APIError as e:
            return error_response(e)
        if req.stream:
            return await service.stream(req, plan)
        return await service.complete(request, req, plan)

    return r
