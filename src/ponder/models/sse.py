"""Server-sent events as the OpenAI-compatible servers send them, and what can go wrong.

Two rules: nothing that arrives is dropped without a trace, and nothing waits forever.

* A `data:` line is one JSON chunk. A line that is not valid JSON, or not a JSON object, is
  counted as *malformed* (its text is lost: the call's outcome must say so); a line with
  invalid UTF-8 is decoded with U+FFFD in place of the bad bytes and counted as *repaired*.
  `SSEState.damage()` turns the counts into the sentence the call's error carries.
* `Watchdog` closes a stream that has been silent for too long: the model's
  `first_byte_timeout_s` until the first chunk (queueing and prefill happen there), then its
  `idle_timeout_s` between reads. It costs one timer per call and a clock read per network
  read, not a timer per read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ..core import fastjson


class Stalled(Exception):
    """The watchdog closed a silent stream."""


class ErrorChunk(Exception):
    """The server reported an error inside the stream (an `error` object or `event: error`)."""

    def __init__(self, data: str):
        super().__init__(data)
        self.data = data


class SSEState:
    """What one stream has delivered so far: enough to decide retry, cut or damage."""

    __slots__ = ("done", "received", "malformed", "repaired", "first_bad", "error_event")

    def __init__(self) -> None:
        self.done = False  # [DONE] seen
        self.received = False  # a chunk (even a damaged one) arrived: retrying would repeat output
        self.malformed = 0  # data lines lost: not JSON, or JSON but not an object
        self.repaired = 0  # data lines with invalid UTF-8, decoded with U+FFFD
        self.first_bad: bytes | None = None
        self.error_event = False  # the last `event:` field was `error`

    def damage(self) -> str | None:
        """One sentence on what was lost or repaired, or None for a clean stream."""
        if not (self.malformed or self.repaired):
            return None
        parts = []
        if self.malformed:
            n = self.malformed
            parts.append(f"{n} chunk{'s' if n > 1 else ''} with malformed JSON dropped "
                         f"(the text {'they' if n > 1 else 'it'} carried is missing)")
        if self.repaired:
            n = self.repaired
            parts.append(f"{n} chunk{'s' if n > 1 else ''} with invalid UTF-8 repaired (bad bytes replaced by U+FFFD)")
        sample = (self.first_bad or b"")[:80].decode("utf-8", "replace")
        return f"{'; '.join(parts)}; first bad chunk: {sample!r}"

    def misshapen(self, chunk: Any) -> None:
        """Valid JSON that is not a chunk's shape (a number where text belongs...): lost too."""
        self.malformed += 1
        self._bad(fastjson.dumps(chunk).encode())

    def _bad(self, data: bytes) -> None:
        self.received = True
        if self.first_bad is None:
            self.first_bad = data


def sse_line(raw: bytes, state: SSEState) -> dict[str, Any] | None:
    """One SSE line: its JSON chunk, or None (comments, keep-alives, [DONE], damaged lines,
    anything after [DONE]). Raises `ErrorChunk` for an error the server put in the stream."""
    if not raw.startswith(b"data:"):
        if raw.startswith(b"event:"):
            state.error_event = raw[6:].strip() == b"error"
        elif state.error_event and not raw.strip():  # a blank line ends the event
            state.error_event = False
        return None
    if state.done:
        return None  # (after [DONE] the body is still read to its end so the connection is reused)
    data = raw[5:].strip()
    if data == b"[DONE]":
        state.done = True
        return None
    if not data:
        return None  # an empty data field carries nothing
    try:
        chunk = fastjson.loads(data)
    except ValueError:
        chunk = _repair(data, state)
        if chunk is None:
            return None
    if type(chunk) is not dict:
        state.malformed += 1
        state._bad(data)
        return None
    state.received = True
    if chunk.get("error") or state.error_event:
        raise ErrorChunk(data.decode("utf-8", "replace"))
    return chunk


def _repair(data: bytes, state: SSEState) -> Any:
    """A line the JSON parser refused: invalid UTF-8 is decoded with U+FFFD and parsed again
    (counted as repaired); anything else is counted as malformed and yields None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            chunk = fastjson.loads(data.decode("utf-8", "replace"))
        except ValueError:
            pass
        else:
            state.repaired += 1
            state._bad(data)
            return chunk
    state.malformed += 1
    state._bad(data)
    return None


class Watchdog:
    """Closes `resp` when no bytes have arrived for `limit` seconds.

    The reader stamps `last` on every network read. One timer, armed once per call, wakes at
    the earliest moment the stream could be overdue and re-arms itself if reads came in since
    (it never waits longer than `step`, the smaller of the two limits, so lowering `limit`
    from the first-chunk wait to the idle limit needs no new timer). On firing it fails the
    pending read with `Stalled` and closes the connection (a half-read stream cannot go back
    to the pool)."""

    __slots__ = ("_loop", "_resp", "_handle", "_step", "clock", "last", "limit", "fired")

    def __init__(self, resp: aiohttp.ClientResponse, limit: float, step: float):
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        self._resp = resp
        self._step = min(step, limit)
        self.limit = limit
        self.last = self.clock()
        self.fired = False
        self._handle = self._loop.call_at(self.last + self._step, self._check)

    def _check(self) -> None:
        now = self.clock()
        due = self.last + self.limit
        if now < due:
            self._handle = self._loop.call_at(min(due, now + self._step), self._check)
            return
        self.fired = True
        self._resp.content.set_exception(Stalled())
        self._resp.close()

    def cancel(self) -> None:
        self._handle.cancel()
