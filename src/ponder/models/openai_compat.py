"""The HTTP backend for every OpenAI-compatible endpoint (Kimi, GLM, DeepSeek, vLLM, SGLang,
llama.cpp, OpenAI), speaking the wire itself over one pooled aiohttp session per endpoint.

Why not the `openai` SDK: measured here it spends several times the CPU of a bare post per
call (it validates the whole history against its types), and in a 100-agent swarm that
overhead is the engine's. We stay wire-compatible with it; the SDK is a test peer.

Why aiohttp and not httpx: with 100 concurrent streams on one pool, httpx spent 13–18 ms
of client CPU per call here (its pool does work proportional to the number of pooled
connections on every request) against 0.35–0.5 ms for aiohttp on the same fan-out
(`benchmarks/call_overhead.py`, `benchmarks/swarm_fanout.py`). On 2 cores that is the
difference between a swarm bound by the model's latency and one bound by its own client.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import weakref
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDict

from ..core import fastjson
from ..core.errors import MissingKeyError, ModelError, redact
from ..core.events import Event
from ..core.messages import ToolCall, Usage
from .base import CallAssembler, ChatModel, ChatRequest
from .catalog import ModelSpec
from .dialects import Dialect, get_dialect, parse_arguments
from .profiles import RequestRefused, check_request, translate_error

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)

# One pooled session per (event loop, endpoint): keep-alive, many concurrent streams.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aiohttp.ClientSession]] = weakref.WeakKeyDictionary()


def shared_client(base_url: str, *, max_connections: int = 512, read_timeout_s: float = 300.0) -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    per_loop = _CLIENTS.setdefault(loop, {})
    client = per_loop.get(base_url)
    if client is None or client.closed:
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=read_timeout_s),
            read_bufsize=2**20,  # an SSE line may carry a large tool-call argument
        )
        per_loop[base_url] = client
    return client


async def close_clients() -> None:
    """Close this event loop's pooled sessions (the CLI calls it before the loop ends)."""
    loop = asyncio.get_running_loop()
    for client in (_CLIENTS.pop(loop, None) or {}).values():
        await client.close()


def parse_usage(u: dict[str, Any] | None, reasoning_estimate: int = 0) -> Usage | None:
    """Usage across providers: OpenAI details objects, Kimi's top-level cached_tokens, DeepSeek's
    cache-hit count. When the provider does not count reasoning tokens, `reasoning_estimate`
    (the number of streamed reasoning deltas) stands in, capped at the completion tokens."""
    if not u:
        return None
    ptd = u.get("prompt_tokens_details") or {}
    ctd = u.get("completion_tokens_details") or {}
    cached = ptd.get("cached_tokens") or u.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0
    completion = int(u.get("completion_tokens") or 0)
    reasoning = int(ctd.get("reasoning_tokens") or 0)
    if not reasoning and reasoning_estimate:
        reasoning = min(reasoning_estimate, completion or reasoning_estimate)
    return Usage(
        prompt_tokens=int(u.get("prompt_tokens") or 0),
        cached_prompt_tokens=int(cached),
        completion_tokens=completion,
        reasoning_tokens=reasoning,
    )


def _provider_message(resp_text: str) -> str:
    try:
        data = json.loads(resp_text)
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("msg") or err)[:500]
        return str(err)[:500]
    except (ValueError, AttributeError):
        return resp_text[:500]


class _ToolCallBuffer:
    """Accumulates streamed tool-call fragments by index until the call is complete."""

    __slots__ = ("id", "name", "args")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.args: list[str] = []

    def to_call(self, dialect: Dialect, idx: int) -> ToolCall:
        raw = "".join(self.args)
        args, err = parse_arguments(raw)
        cid = self.id or dialect.tool_call_id(f"call_{idx}", self.name, idx)
        return ToolCall(id=cid, name=self.name, arguments=args, raw_arguments=raw, parse_error=err)


class OpenAICompatModel(ChatModel):
    path = "/chat/completions"

    def __init__(self, spec: ModelSpec, *, api_key: str | None = None, max_retries: int = 3,
                 backoff_s: float = 0.5, timeout_s: float = 300.0, stream: bool = True, client: aiohttp.ClientSession | None = None):
        if not spec.base_url:
            raise ModelError(f"model {spec.name!r} has no base_url: set one in the catalog or pass --base-url")
        self.spec = spec
        self.dialect = get_dialect(spec.dialect)
        key = api_key or (os.environ.get(spec.api_key_env) if spec.api_key_env else None)
        if spec.api_key_env and not key:
            raise MissingKeyError(spec.name, spec.api_key_env)
        self._key = key or ""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        headers.update(spec.request_headers())  # per-model headers (gateways, routers) may override
        self._secrets = [self._key, *spec.secret_header_values()]
        self._headers = CIMultiDict(headers)  # aiohttp's own type: not converted again on every post
        self.url = spec.base_url.rstrip("/") + self.path
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.streaming = stream
        self._client = client

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatModel(name={self.spec.name!r}, url={self.url!r}, dialect={self.dialect.name!r})"

    def build_payload(self, request: ChatRequest) -> dict[str, Any]:
        return self.dialect.build_payload(self.spec, request, stream=self.streaming)

    def build_body(self, request: ChatRequest) -> bytes:
        return self.dialect.build_body(self.spec, request, stream=self.streaming)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def client(self) -> aiohttp.ClientSession:
        return self._client or shared_client(self.spec.base_url or "", read_timeout_s=self.timeout_s)

    async def _sleep_backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * (2**attempt)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        await asyncio.sleep(min(delay, 30.0) * (0.5 + random.random()))

    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        asm = CallAssembler(self.spec, agent, self.dialect.name)
        try:
            check_request(self.spec, request)  # what the profile says the provider would reject
        except RequestRefused as e:
            yield asm.error(e)
            return
        body = self.build_body(request)
        attempt = 0
        while True:
            try:
                if self.streaming:
                    async for ev in self._stream_once(body, asm, request):
                        yield ev
                else:
                    async for ev in self._post_once(body, asm, request):
                        yield ev
                return
            except _Retry as r:
                if attempt >= self.max_retries:
                    yield asm.error(ModelError(self._clean(f"{self.spec.name}: {r.reason} (after {attempt + 1} attempts)"),
                                               status=r.status, retryable=True), retryable=True)
                    return
                await self._sleep_backoff(attempt, r.retry_after)
                attempt += 1
                asm = CallAssembler(self.spec, agent, self.dialect.name)
            except _Cut as e:
                yield asm.error(ModelError(str(e), retryable=True), retryable=True)
                return
            except ModelError as e:
                yield asm.error(e, retryable=e.retryable)
                return

    async def _send(self, body: bytes) -> aiohttp.ClientResponse:
        try:
            return await self.client().post(self.url, data=body, headers=self._headers)
        except _TRANSPORT_ERRORS as e:
            raise _Retry(f"{type(e).__name__} contacting {self.url}: {self._clean(str(e)) or 'no detail'}") from e

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        try:
            text = (await resp.read()).decode(errors="replace")
        except _TRANSPORT_ERRORS:
            text = ""
        finally:
            resp.release()
        msg = self._clean(_provider_message(text))
        if resp.status in RETRY_STATUS:
            raise _Retry(f"HTTP {resp.status}: {msg}", status=resp.status, retry_after=resp.headers.get("Retry-After"))
        hint = {401: " (check the API key)", 404: " (check base_url and model id)"}.get(resp.status, "")
        rule = translate_error(self.spec, resp.status, msg)  # a known provider rule, said plainly
        raise ModelError(rule or f"{self.spec.name}: HTTP {resp.status}{hint}: {msg}", status=resp.status, provider_message=msg)

    async def _post_once(self, body: bytes, asm: CallAssembler, request: ChatRequest) -> AsyncIterator[Event]:
        resp = await self._send(body)
        await self._check(resp)
        try:
            data = json.loads(await resp.read())
        except _TRANSPORT_ERRORS as e:
            raise _Retry(f"{type(e).__name__} reading the response") from e
        except ValueError as e:
            raise ModelError(self._clean(f"{self.spec.name}: malformed response body: {e}")) from e
        finally:
            resp.release()
        choice = (data.get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        if r := self.dialect.reasoning_of(msg):
            yield asm.reasoning_delta(r)  # type: ignore[misc]
        if c := msg.get("content"):
            yield asm.content_delta(c)  # type: ignore[misc]
        for idx, tc in enumerate(msg.get("tool_calls") or []):
            buf = _ToolCallBuffer()
            buf.id, buf.name = tc.get("id"), (tc.get("function") or {}).get("name", "")
            buf.args.append((tc.get("function") or {}).get("arguments") or "")
            yield asm.tool_call(buf.to_call(self.dialect, idx))
        for ev in asm.finish(self._usage(data.get("usage"), asm), choice.get("finish_reason")):
            yield ev

    def _usage(self, raw: dict[str, Any] | None, asm: CallAssembler) -> Usage:
        n_reasoning = len(asm.reasoning)  # one token per streamed reasoning delta, when uncounted
        u = parse_usage(raw, n_reasoning)
        if u is None:  # no usage at all: count deltas
            u = Usage(completion_tokens=len(asm.content) + n_reasoning, reasoning_tokens=n_reasoning)
        return u

    async def _sse(self, resp: aiohttp.ClientResponse, state: _SSEState) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the JSON chunks of an SSE response, a list per network read (one generator hop
        per read, not per chunk). Transport failures before the first chunk are retryable
        (`_Retry`); after it they are a cut stream (`_Cut`)."""
        try:
            # Split lines here rather than await aiohttp's readline per SSE line: that is a
            # coroutine and a buffer scan each, a visible cost at 100 concurrent streams.
            tail = b""
            line = self._sse_line
            async for block in resp.content.iter_any():
                if tail:
                    block = tail + block
                lines = block.split(b"\n")
                tail = lines.pop()
                chunks: list[dict[str, Any]] = []
                try:
                    for raw in lines:
                        if (c := line(raw, state)) is not None:
                            chunks.append(c)
                except ModelError:  # an error chunk: what came before it in this read still counts
                    if chunks:
                        yield chunks
                    raise
                if chunks:
                    yield chunks
            if tail and (chunk := line(tail, state)) is not None:  # a last line without its newline
                yield [chunk]
        except _TRANSPORT_ERRORS as e:
            if not state.received:
                raise _Retry(f"{type(e).__name__} before the first chunk") from e
            raise _Cut(f"{self.spec.name}: stream cut mid-way ({type(e).__name__}); partial output kept") from e
        finally:
            resp.release()

    def _sse_line(self, raw: bytes, state: _SSEState) -> dict[str, Any] | None:
        """One SSE line: its JSON chunk, or None (comments, keep-alives, [DONE], anything after it)."""
        if not raw.startswith(b"data:") or state.done:
            return None  # (after [DONE] the body is still read to its end so the connection is reused)
        data = raw[5:].strip()
        if data == b"[DONE]":
            state.done = True
            return None
        try:
            chunk = fastjson.loads(data)
        except ValueError:
            return None  # a keep-alive or a provider comment line
        if not isinstance(chunk, dict):
            return None
        state.received = True
        if chunk.get("error"):
            raise ModelError(self._clean(f"{self.spec.name}: error in stream: {_provider_message(data.decode(errors='replace'))}"))
        return chunk

    def _check_complete(self, state: _SSEState, finish: str | None) -> None:
        if not state.done and finish is None:
            if not state.received:
                raise _Retry("connection closed before any chunk")
            raise _Cut(f"{self.spec.name}: stream ended without [DONE] or finish_reason; partial output kept")

    async def _stream_once(self, body: bytes, asm: CallAssembler, request: ChatRequest) -> AsyncIterator[Event]:
        resp = await self._send(body)
        await self._check(resp)
        buffers: dict[int, _ToolCallBuffer] = {}
        usage_raw: dict[str, Any] | None = None
        finish: str | None = None
        state = _SSEState()
        dialect = self.dialect
        async for chunks in self._sse(resp, state):
            for chunk in chunks:
                if chunk.get("usage"):
                    usage_raw = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    r = dialect.reasoning_of(delta)
                    if r:
                        yield asm.reasoning_delta(r)  # type: ignore[misc]
                    c = delta.get("content")
                    if c:
                        yield asm.content_delta(c)  # type: ignore[misc]
                    for tc in delta.get("tool_calls") or ():
                        buf = buffers.setdefault(int(tc.get("index", len(buffers))), _ToolCallBuffer())
                        if tc.get("id"):
                            buf.id = tc["id"]
                        fn = tc.get("function") or {}
                        if fn.get("name"):
                            buf.name += fn["name"]
                        if fn.get("arguments"):
                            buf.args.append(fn["arguments"])
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        self._check_complete(state, finish)
        for idx in sorted(buffers):
            yield asm.tool_call(buffers[idx].to_call(dialect, idx))
        for ev in asm.finish(self._usage(usage_raw, asm), finish):
            yield ev


class _SSEState:
    __slots__ = ("done", "received")

    def __init__(self) -> None:
        self.done = False
        self.received = False


class _Cut(Exception):
    """The stream broke after output had arrived: not retried (it would duplicate output)."""


class _Retry(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: str | None = None):
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after
