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

Faults, and what each becomes (the contract engines rely on; see docs/architecture.md):

* no connection, a timeout before the first chunk, 408/409/425/429/5xx: retried
  (`max_retries`), never earlier than `Retry-After`, all attempts within `timeout_s`;
* a stream cut, or silent for `idle_timeout_s`, after output arrived: `StreamInterrupted`
  (not retried: it would repeat output), what arrived kept in the error's `partial`;
* a chunk that is not JSON, or has invalid UTF-8 (repaired with U+FFFD): the stream is read
  to its end, then the call ends in `StreamDamaged` with everything that arrived in `partial`;
* an error object inside the stream, other 4xx: `ModelError` with the provider's message;
* an HTML page where JSON was due (a proxy's error page): says so, with the fix.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from multidict import CIMultiDict

from ..core import fastjson
from ..core.errors import ConfigError, MissingKeyError, ModelError, StreamDamaged, StreamInterrupted, redact
from ..core.events import Event
from ..core.messages import Usage
from . import pool
from .base import CallAssembler, ChatModel, ChatRequest
from .catalog import ModelSpec
from .dialects import get_dialect
from .pool import close_clients, shared_client  # noqa: F401 - public here since the first version
from .profiles import RequestRefused, check_request, translate_error
from .retry import RETRY_STATUS, backoff_delay, html_error, looks_html, provider_message, retry_after_s
from .sse import ErrorChunk, SSEState, Stalled, Watchdog, sse_line
from .tool_deltas import ToolCallAssembly

_TRANSPORT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())


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


def _text(value: Any) -> Any:
    """A delta's text must be a string; anything else is a misshapen chunk."""
    if value and type(value) is not str:
        raise TypeError(f"text field holds {type(value).__name__}, not a string")
    return value


def _positive(name: str, value: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class OpenAICompatModel(ChatModel):
    """Options (all per model, passed to `model(name, ...)` or the constructor):

    - `idle_timeout_s` (30): longest silence between two reads of a streamed reply once its
      first chunk has arrived; a stall ends the call with its partial output.
    - `first_byte_timeout_s` (60): longest wait for a streamed reply's first chunk (headers,
      queueing and prefill); a timeout is retried like a 503 and counts toward `max_retries`.
    - `connect_timeout_s` (10): longest TCP connect; retried likewise.
    - `timeout_s` (300): all attempts of one call together, backoff included, until its reply
      starts (streamed) or has arrived (not streamed).
    - `max_retries` (3), `backoff_s` (0.5): retries of failures before any output.
    """

    path = "/chat/completions"

    def __init__(self, spec: ModelSpec, *, api_key: str | None = None, max_retries: int = 3,
                 backoff_s: float = 0.5, timeout_s: float = 300.0, idle_timeout_s: float = 30.0,
                 first_byte_timeout_s: float = 60.0, connect_timeout_s: float = 10.0, stream: bool = True,
                 client: aiohttp.ClientSession | None = None, max_connections: int = pool.DEFAULT_MAX_CONNECTIONS):
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
        self.timeout_s = _positive("timeout_s", timeout_s)
        self.idle_timeout_s = _positive("idle_timeout_s", idle_timeout_s)
        self.first_byte_timeout_s = _positive("first_byte_timeout_s", first_byte_timeout_s)
        self.connect_timeout_s = _positive("connect_timeout_s", connect_timeout_s)
        self.streaming = stream
        self._client = client  # given by the caller: used, never closed here
        self._pool_key = pool.PoolKey(spec.base_url, max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        # Per-request timeouts (not the shared session's): the wait for the response headers.
        # A stream's later silences are the watchdog's (first chunk, then idle).
        self._first_wait = self.first_byte_timeout_s if stream else self.timeout_s
        self._request_timeout = self._timeout(self._first_wait)

    def _timeout(self, wait_s: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=min(self.connect_timeout_s, wait_s), sock_read=wait_s)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatModel(name={self.spec.name!r}, url={self.url!r}, dialect={self.dialect.name!r})"

    def build_payload(self, request: ChatRequest) -> dict[str, Any]:
        return self.dialect.build_payload(self.spec, request, stream=self.streaming)

    def build_body(self, request: ChatRequest) -> bytes:
        return self.dialect.build_body(self.spec, request, stream=self.streaming)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    async def aclose(self) -> None:
        """Release this model's hold on the pooled session (closed when no model holds it)."""
        session, self._session = self._session, None
        if session is not None and self._client is None:
            await pool.release(self._pool_key, self)

    async def _acquire(self) -> aiohttp.ClientSession:
        if self._client is not None:
            return self._client
        self._session = await pool.acquire(self._pool_key, self)
        self._session_loop = asyncio.get_running_loop()
        return self._session

    # ---- one call, with retries ---------------------------------------------------------------
    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        asm = CallAssembler(self.spec, agent, self.dialect.name)
        try:
            check_request(self.spec, request)  # what the profile says the provider would reject
        except RequestRefused as e:
            yield asm.error(e)
            return
        body = self.build_body(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        attempt = 0
        while True:
            try:
                if self.streaming:
                    async for ev in self._stream_once(body, asm, request, deadline):
                        yield ev
                else:
                    async for ev in self._post_once(body, asm, request, deadline):
                        yield ev
                return
            except _Retry as r:
                delay = backoff_delay(attempt, self.backoff_s, r.retry_after)
                left = deadline - loop.time()
                if attempt >= self.max_retries or delay >= left:
                    yield asm.error(ModelError(self._clean(self._give_up(r, attempt, delay, left)),
                                               status=r.status, retryable=True), retryable=True)
                    return
                await asyncio.sleep(delay)
                attempt += 1
                asm = CallAssembler(self.spec, agent, self.dialect.name)
            except ModelError as e:
                yield asm.error(e, retryable=e.retryable)
                return

    def _give_up(self, r: _Retry, attempt: int, delay: float, left: float) -> str:
        tried = f"{attempt + 1} attempt{'s' if attempt else ''}"
        if attempt >= self.max_retries:
            return f"{self.spec.name}: {r.reason} (after {tried})"
        wait = f"the server asks to wait {r.retry_after:g} s" if r.retry_after is not None else f"the next retry is due in {delay:.1f} s"
        return (f"{self.spec.name}: {r.reason} (after {tried}; {wait}, beyond this call's timeout_s={self.timeout_s:g} "
                f"with {max(left, 0.0):.1f} s left: retry later or raise timeout_s)")

    def _wait_for(self, deadline: float) -> tuple[aiohttp.ClientTimeout, float]:
        """This attempt's limit on the first wait: the configured one, or less near the deadline."""
        left = deadline - asyncio.get_running_loop().time()
        if left >= self._first_wait:
            return self._request_timeout, self._first_wait
        if left <= 0:
            raise _Retry(f"no time left within timeout_s={self.timeout_s:g}")
        return self._timeout(left), left

    async def _send(self, body: bytes, limits: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        session = self._session
        if session is None or session.closed or self._session_loop is not asyncio.get_running_loop():
            session = await self._acquire()
        try:
            return await session.post(self.url, data=body, headers=self._headers, timeout=limits)
        except _CONNECT_TIMEOUT as e:
            raise _Retry(f"could not connect to {self.url} within {self.connect_timeout_s:g} s (connect_timeout_s)") from e
        except TimeoutError as e:
            which = "first_byte_timeout_s" if self.streaming else "timeout_s"
            raise _Retry(f"no response from {self.url} within {limits.sock_read:g} s ({which})") from e
        except _TRANSPORT_ERRORS as e:
            raise _Retry(f"{type(e).__name__} contacting {self.url}: {self._clean(str(e)) or 'no detail'}") from e

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status < 400:
            return
        try:
            raw = await resp.read()
        except _TRANSPORT_ERRORS:
            raw = b""
        finally:
            resp.release()
        status = resp.status
        said: str | None = None  # the provider's own message, when it sent one
        if looks_html(resp.headers.get("Content-Type"), raw):
            detail = self._clean(html_error(status, raw, self.url))
        else:
            said = self._clean(provider_message(raw.decode(errors="replace")))
            hint = {401: " (check the API key)", 404: " (check base_url and model id)"}.get(status, "")
            detail = f"HTTP {status}{hint}: {said}"
        if status in RETRY_STATUS:
            raise _Retry(detail, status=status, retry_after=retry_after_s(resp.headers))
        rule = translate_error(self.spec, status, said) if said else None  # a known provider rule, said plainly
        raise ModelError(rule or f"{self.spec.name}: {detail}", status=status, provider_message=said)

    # ---- not streamed -------------------------------------------------------------------------
    async def _post_once(self, body: bytes, asm: CallAssembler, request: ChatRequest, deadline: float) -> AsyncIterator[Event]:
        timeout, _ = self._wait_for(deadline)
        resp = await self._send(body, timeout)
        await self._check(resp)
        try:
            raw = await resp.read()
        except _TRANSPORT_ERRORS as e:
            raise _Retry(f"{type(e).__name__} reading the response") from e
        finally:
            resp.release()
        for ev in self._reply_events(self._json_body(resp, raw), asm):
            yield ev

    def _json_body(self, resp: aiohttp.ClientResponse, raw: bytes) -> tuple[dict[str, Any], str | None]:
        """A whole JSON reply and, if its bytes had to be repaired, what was repaired."""
        ctype = resp.headers.get("Content-Type") or ""
        if "json" not in ctype and looks_html(ctype, raw):
            raise ModelError(self._clean(f"{self.spec.name}: {html_error(resp.status, raw, self.url)}"), status=resp.status)
        damage = None
        try:
            data = json.loads(raw)
        except UnicodeDecodeError:
            damage = "the response body had invalid UTF-8, repaired (bad bytes replaced by U+FFFD)"
            try:
                data = json.loads(raw.decode("utf-8", "replace"))
            except ValueError as e:
                raise ModelError(self._clean(f"{self.spec.name}: malformed response body: {e}")) from e
        except ValueError as e:
            raise ModelError(self._clean(f"{self.spec.name}: malformed response body ({e}): {raw[:200]!r}")) from e
        if not isinstance(data, dict):
            raise ModelError(self._clean(f"{self.spec.name}: malformed response body (not a JSON object): {raw[:200]!r}"))
        if data.get("error"):
            raise ModelError(self._clean(f"{self.spec.name}: error in response: {provider_message(json.dumps(data))}"))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelError(self._clean(f"{self.spec.name}: the response has no choices: {raw[:200]!r}"))
        return data, damage

    def _reply_events(self, body: tuple[dict[str, Any], str | None], asm: CallAssembler) -> Iterator[Event]:
        data, damage = body
        choice = data["choices"][0]
        msg = choice.get("message") or {}
        try:
            r = _text(self.dialect.reasoning_of(msg))
            c = _text(msg.get("content"))
            calls = ToolCallAssembly()
            if tcs := msg.get("tool_calls"):
                for idx, tc in enumerate(tcs):
                    calls.add({**tc, "index": idx})
        except (AttributeError, TypeError, ValueError) as e:
            raise ModelError(self._clean(f"{self.spec.name}: malformed response body ({e}): "
                                         f"{fastjson.dumps(msg)[:200]}")) from None
        if r:
            yield asm.reasoning_delta(r)  # type: ignore[misc]
        if c:
            yield asm.content_delta(c)  # type: ignore[misc]
        if damage:  # the calls stay in the error's partial message, not run
            asm.tool_calls.extend(calls.calls(self.dialect))
            raise StreamDamaged(self._clean(f"{self.spec.name}: reply damaged: {damage}; partial output kept"))
        if calls.buffers:
            for call in calls.calls(self.dialect):
                yield asm.tool_call(call)
        yield from asm.finish(self._usage(data.get("usage"), asm), choice.get("finish_reason"))

    def _usage(self, raw: dict[str, Any] | None, asm: CallAssembler) -> Usage:
        n_reasoning = len(asm.reasoning)  # one token per streamed reasoning delta, when uncounted
        u = parse_usage(raw, n_reasoning)
        if u is None:  # no usage at all: count deltas
            u = Usage(completion_tokens=len(asm.content) + n_reasoning, reasoning_tokens=n_reasoning)
        return u

    # ---- streamed -----------------------------------------------------------------------------
    async def _open_stream(self, body: bytes, deadline: float) -> tuple[aiohttp.ClientResponse, float, Any]:
        """Send, check the status; (response, first-chunk limit, None) for an event stream, or
        (response, limit, parsed body) when the server answered a stream request with JSON."""
        timeout, first_wait = self._wait_for(deadline)
        resp = await self._send(body, timeout)
        await self._check(resp)
        ctype = resp.headers.get("Content-Type") or ""
        if "event-stream" in ctype:
            return resp, first_wait, None
        if "html" in ctype or "json" in ctype:  # a page, or a whole reply: read it all
            try:
                raw = await resp.read()
            except _TRANSPORT_ERRORS as e:
                raise _Retry(f"{type(e).__name__} reading the response") from e
            finally:
                resp.release()
            return resp, first_wait, self._json_body(resp, raw)
        return resp, first_wait, None  # no (or an odd) content type: read it as SSE

    async def _sse(self, resp: aiohttp.ClientResponse, state: SSEState, first_wait: float) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the JSON chunks of an SSE response, a list per network read (one generator hop
        per read, not per chunk). Failures before the first chunk are retryable (`_Retry`);
        after it they are a cut stream (`StreamInterrupted`), or `StreamDamaged` when chunks
        were also lost or repaired."""
        idle = self.idle_timeout_s
        wd = Watchdog(resp, first_wait, step=idle)
        clock = wd.clock
        waiting_first = True
        try:
            # Split lines here rather than await aiohttp's readline per SSE line: that is a
            # coroutine and a buffer scan each, a visible cost at 100 concurrent streams.
            tail = b""
            line = sse_line
            async for block in resp.content.iter_any():
                wd.last = clock()
                if tail:
                    block = tail + block
                lines = block.split(b"\n")
                tail = lines.pop()
                chunks: list[dict[str, Any]] = []
                try:
                    for raw in lines:
                        if (c := line(raw, state)) is not None:
                            chunks.append(c)
                except ErrorChunk as e:  # what came before it in this read still counts
                    if chunks:
                        yield chunks
                    raise ModelError(self._clean(f"{self.spec.name}: error in stream: {provider_message(e.data)}")) from None
                if waiting_first and state.received:
                    waiting_first = False
                    wd.limit = idle
                if chunks:
                    yield chunks
            if tail and (chunk := line(tail, state)) is not None:  # a last line without its newline
                yield [chunk]
        except (Stalled, *_TRANSPORT_ERRORS) as e:
            if not state.received:
                if wd.fired:
                    raise _Retry(f"no response within {first_wait:g} s (first_byte_timeout_s)") from None
                raise _Retry(f"{type(e).__name__} before the first chunk") from e
            if wd.fired:
                raise self._interrupted(f"stream stalled: no data for {idle:g} s (idle_timeout_s)", state) from None
            raise self._interrupted(f"stream cut mid-way ({type(e).__name__})", state) from e
        finally:
            wd.cancel()
            resp.release()

    def _interrupted(self, what: str, state: SSEState) -> ModelError:
        damage = state.damage()
        if damage:
            return StreamDamaged(self._clean(f"{self.spec.name}: {what}; also {damage}; partial output kept"))
        return StreamInterrupted(f"{self.spec.name}: {what}; partial output kept")

    def _check_complete(self, state: SSEState, finish: str | None) -> None:
        """After the last chunk: a stream that never finished, or lost data on the way, fails."""
        if not state.done and finish is None:
            if not state.received:
                raise _Retry("connection closed before any chunk")
            raise self._interrupted("stream ended without [DONE] or finish_reason", state)
        if (damage := state.damage()) is not None:
            raise StreamDamaged(self._clean(f"{self.spec.name}: stream damaged: {damage}; partial output kept"))

    async def _stream_once(self, body: bytes, asm: CallAssembler, request: ChatRequest, deadline: float) -> AsyncIterator[Event]:
        resp, first_wait, whole = await self._open_stream(body, deadline)
        if whole is not None:
            for ev in self._reply_events(whole, asm):
                yield ev
            return
        calls = ToolCallAssembly()
        usage_raw: dict[str, Any] | None = None
        finish: str | None = None
        state = SSEState()
        dialect = self.dialect
        try:
            async for chunks in self._sse(resp, state, first_wait):
                for chunk in chunks:
                    try:
                        if chunk.get("usage"):
                            usage_raw = chunk["usage"]
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            r = dialect.reasoning_of(delta)
                            if r:
                                yield asm.reasoning_delta(_text(r))  # type: ignore[misc]
                            c = delta.get("content")
                            if c:
                                yield asm.content_delta(_text(c))  # type: ignore[misc]
                            for tc in delta.get("tool_calls") or ():
                                calls.add(tc)
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
                    except (AttributeError, TypeError, ValueError):  # JSON, but not a chunk's shape
                        state.misshapen(chunk)
            self._check_complete(state, finish)
        except ModelError:  # calls that had begun stay in the error's partial message, not run
            asm.tool_calls.extend(calls.calls(dialect))
            raise
        for call in calls.calls(dialect):
            yield asm.tool_call(call)
        for ev in asm.finish(self._usage(usage_raw, asm), finish):
            yield ev


class _Retry(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after
