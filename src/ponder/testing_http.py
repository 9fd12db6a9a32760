"""Test doubles for the HTTP layer, named as such (never a product backend).

`MockOpenAIServer` is a real HTTP/1.1 server on 127.0.0.1 (asyncio streams, keep-alive)
that answers /v1/chat/completions from a script, so tests exercise ponder's real aiohttp
transport, SSE parsing, retries and fault handling. It is also a fault injector: a scripted
stream may carry raw bytes where a chunk belongs (malformed JSON, invalid UTF-8), pauses
(a stall after the first token), a cut, a delay before the headers, an error chunk, any
status with any headers (429 + Retry-After), or a non-JSON body (a proxy's HTML page).
`FAULTS` names one scripted reply per fault class, for fault matrices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pause:
    """In a scripted stream: stop sending for this long (a stall mid-stream)."""

    seconds: float


@dataclass(frozen=True)
class Raw:
    """In a scripted stream: these bytes verbatim, no `data:` framing (comments, `event:` lines)."""

    data: bytes


# One item of a scripted stream: a chunk (sent as JSON), bytes (sent verbatim as a data
# line's payload: malformed JSON, invalid UTF-8), a Pause or a Raw piece.
SSEItem = dict[str, Any] | bytes | Pause | Raw


@dataclass
class MockReply:
    status: int = 200
    json_body: dict[str, Any] | None = None
    sse: list[SSEItem] | None = None  # [DONE] appended unless cut or done=False
    cut_after: int | None = None  # close the socket after this many SSE items
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the headers (a stall before the headers when long)
    fragment_bytes: int | None = None  # send the SSE body in pieces this small, a moment apart
    crlf: bool = False  # end SSE lines with \r\n instead of \n
    done: bool = True  # end a stream with [DONE]
    body: bytes | None = None  # a raw body (with `content_type`) instead of JSON or SSE
    content_type: str = "text/html; charset=utf-8"


def sse_text_reply(content: str = "", reasoning: str = "", usage: dict | None = None, tool_calls: list | None = None,
                   reasoning_field: str = "reasoning_content", cut_after: int | None = None) -> MockReply:
    chunks: list[dict[str, Any]] = []
    for piece in _pieces(reasoning):
        chunks.append({"choices": [{"index": 0, "delta": {reasoning_field: piece}}]})
    for piece in _pieces(content):
        chunks.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
    for i, tc in enumerate(tool_calls or []):
        args = json.dumps(tc["arguments"]) if not isinstance(tc["arguments"], str) else tc["arguments"]
        half = len(args) // 2
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": i, "id": tc.get("id", f"call_{i}"), "type": "function", "function": {"name": tc["name"], "arguments": args[:half]}}]}}]})
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tool_calls else "stop"}]})
    if usage:
        chunks.append({"choices": [], "usage": usage})
    return MockReply(sse=chunks, cut_after=cut_after)


def _pieces(text: str, n: int = 3) -> list[str]:
    if not text:
        return []
    step = max(1, len(text) // n)
    return [text[i : i + step] for i in range(0, len(text), step)]


class MockOpenAIServer:
    """A scripted OpenAI-compatible test-double server. `handler(payload, n) -> MockReply`."""

    def __init__(self, handler: Callable[[dict[str, Any], int], MockReply]):
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # loop time each request arrived (retry spacing)
        self.done: list[float | None] = []  # loop time each request's reply was fully written (None: never)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self.in_flight = 0
        self.connections = 0
        self.peak_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> MockOpenAIServer:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):  # stalled scripts end with the server
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[MockOpenAIServer]:
        """This server on its own event loop in a daemon thread, for callers that block while
        it answers (a CLI runner, a synchronous SDK, a subprocess); closed on exit:
        `with MockOpenAIServer(handler).in_thread() as srv: ... srv.base_url ...`."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.__aenter__())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, daemon=True, name="mock-openai-server")
        thread.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("the mock server did not start within 10 s")
            yield self
        finally:
            if ready.is_set():
                asyncio.run_coroutine_threadsafe(self.__aexit__(None, None, None), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._conn(reader, writer)
        except asyncio.CancelledError:  # __aexit__ ended a scripted stall: a normal end here
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(hdrs.get("content-length", "0")))
                payload = json.loads(body or b"{}")
                self.requests.append(payload)
                self.headers.append(hdrs)
                self.times.append(asyncio.get_running_loop().time())
                self.done.append(None)
                i = len(self.requests) - 1
                reply = self.handler(payload, i)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    if reply.delay_s:
                        await asyncio.sleep(reply.delay_s)
                    if not await self._respond(writer, reply):
                        return
                    self.done[i] = asyncio.get_running_loop().time()
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _respond(self, writer: asyncio.StreamWriter, r: MockReply) -> bool:
        extra = "".join(f"{k}: {v}\r\n" for k, v in r.headers.items())
        if r.body is not None:
            writer.write(f"HTTP/1.1 {r.status} X\r\nContent-Type: {r.content_type}\r\nContent-Length: {len(r.body)}\r\n{extra}\r\n".encode()
                         + r.body)
            await writer.drain()
            return True
        if r.sse is None:
            data = json.dumps(r.json_body or {}).encode()
            writer.write(f"HTTP/1.1 {r.status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n".encode() + data)
            await writer.drain()
            return True
        writer.write(f"HTTP/1.1 {r.status} OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n{extra}\r\n".encode())
        nl = "\r\n" if r.crlf else "\n"
        for i, item in enumerate(r.sse):
            if r.cut_after is not None and i >= r.cut_after:
                await writer.drain()
                writer.transport.abort()
                return False
            if isinstance(item, Pause):
                await writer.drain()
                await asyncio.sleep(item.seconds)
                continue
            if isinstance(item, Raw):
                data = item.data
            elif isinstance(item, bytes):
                data = b"data: " + item + f"{nl}{nl}".encode()
            else:
                data = f"data: {json.dumps(item)}{nl}{nl}".encode()
            await self._send_chunk(writer, data, r.fragment_bytes)
        if r.done:
            await self._send_chunk(writer, f"data: [DONE]{nl}{nl}".encode(), r.fragment_bytes)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    @staticmethod
    async def _send_chunk(writer: asyncio.StreamWriter, data: bytes, fragment: int | None) -> None:
        """One HTTP chunk, or many tiny ones with pauses so the client reads them separately."""
        step = fragment or len(data)
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            if fragment:
                await asyncio.sleep(0.001)


# ---- the fault catalogue -----------------------------------------------------------------------
# Each entry scripts one fault class around the same answer: `FAULTS[name](n)` is the reply to
# the n-th request (0-based), so a fault that should clear on retry (429, 503) does.
FAULT_ANSWER = "The answer is forty-two, clearly."
_STALL_S = 3600.0  # "forever": the client's own limits must end the wait


def _answer_chunks() -> list[SSEItem]:
    words = FAULT_ANSWER.split(" ")
    chunks: list[SSEItem] = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w}}]} for i, w in enumerate(words)]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": len(words)}})
    return chunks


def _with(at: int, item: SSEItem, replace: bool = False) -> list[SSEItem]:
    c = _answer_chunks()
    c[at : at + (1 if replace else 0)] = [item]
    return c


FAULTS: dict[str, Callable[[int], MockReply]] = {
    "ok": lambda n: MockReply(sse=_answer_chunks()),
    # a chunk cut short: the word it carried (" forty-two,") is lost
    "malformed_json": lambda n: MockReply(sse=_with(4, b'{"choices": [{"index": 0, "delta": {"content": " forty-tw', replace=True)),
    # the same chunk with a byte that is not UTF-8 in it
    "invalid_utf8": lambda n: MockReply(sse=_with(4, b'{"choices": [{"index": 0, "delta": {"content": " forty\xff-two,"}}]}',
                                                  replace=True)),
    "cut_mid_stream": lambda n: MockReply(sse=_answer_chunks(), cut_after=3),
    "stall_after_first_token": lambda n: MockReply(sse=_with(2, Pause(_STALL_S))),
    "stall_before_headers": lambda n: MockReply(sse=_answer_chunks(), delay_s=_STALL_S),
    "rate_limited": lambda n: (MockReply(status=429, json_body={"error": {"message": "rate limit reached"}},
                                         headers={"Retry-After": "1"}) if n == 0 else MockReply(sse=_answer_chunks())),
    "server_error": lambda n: (MockReply(status=503, json_body={"error": {"message": "overloaded"}})
                               if n == 0 else MockReply(sse=_answer_chunks())),
    "html_from_proxy": lambda n: MockReply(status=502, body=b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
                                                            b"<body><center><h1>502 Bad Gateway</h1></center><hr>nginx</body></html>"),
    "error_chunk": lambda n: MockReply(sse=_with(3, {"error": {"message": "upstream model crashed", "type": "server_error"}})),
}


def _fixed_reply_handler(latency_s: float, stream_default: bool = True) -> Callable[[dict[str, Any], int], MockReply]:
    """A handler for benchmarks: a short fixed answer after `latency_s`, streamed or not as asked."""
    usage = {"prompt_tokens": 20, "completion_tokens": 4}
    streamed = sse_text_reply(content="ok, done.", usage=usage)
    body = {"id": "x", "object": "chat.completion", "model": "mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok, done."}, "finish_reason": "stop"}],
            "usage": usage}

    def handler(payload: dict[str, Any], n: int) -> MockReply:
        if payload.get("stream", stream_default):
            return MockReply(sse=streamed.sse, delay_s=latency_s)
        return MockReply(json_body=body, delay_s=latency_s)

    return handler


def main() -> None:  # pragma: no cover - used by benchmarks as a separate process
    """`python -m ponder.testing_http --latency 0.2`: serve until killed; prints the base URL first."""
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()

    async def serve() -> None:
        async with MockOpenAIServer(_fixed_reply_handler(args.latency)) as srv:
            print(srv.base_url, flush=True)
            sys.stdout.flush()
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":  # pragma: no cover
    main()
