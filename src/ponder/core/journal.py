"""The journal: a reader of the event stream that appends each run's events to SQLite as they happen.

Every entry point (the CLI, the server, `ponder compare`, the Python API's `ponder.run`)
puts one in front of its consumer; engines never see a store. What it guarantees:

* the run row exists from the first event (`RunStarted`), with status `running`, and is
  closed by `RunFinished` (or marked `interrupted` when the run is stopped from outside);
* a finished model call is committed within 50 ms (at once when the last commit is older
  than that: a single agent gets a commit per model call; a swarm's calls that finish close
  together share one, so 100 agents cost at most ~20 commits a second), any other event
  within 100 ms; `checkpoint()` commits at once (the agent loop calls it before a tool that
  must not run twice);
* sequence numbers are contiguous per run and continue across resumed attempts;
* the journal stores each reply once: a `message_appended` for a message that is the
  reply of a journaled model call keeps only a reference to it, and streamed deltas of a
  call that finished before the flush are folded into that call (its message holds the
  text); deltas of a call still streaming are written, merged per agent, so a crash (or a
  live viewer) still sees the partial text;
* a session's conversation (`ponder run --session`) is written message by message as the
  main agent's `message_appended` events pass, so a crash keeps the question and every
  completed step.

Writes happen on the event loop's thread (WAL, `synchronous=NORMAL`: a commit is a page
write, no fsync), batched into one multi-row INSERT per flush;
`benchmarks/swarm_fanout.py --journal on|off` and `benchmarks/step_overhead.py` measure what
they cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

import orjson
from pydantic import BaseModel

from .events import (
    ContentDelta,
    ErrorEvent,
    Event,
    MessageAppended,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    RunStarted,
)
from .messages import Message
from .store import ANSWER_PREVIEW_CHARS, RunStore, process_start

FLUSH_S = 0.1  # the longest any event waits for its commit
CALL_GAP_S = 0.05  # a finished model call waits at most this long (calls closer together share a commit)
_DELTAS = (ReasoningDelta, ContentDelta)
_INSERT = "INSERT INTO events(run_id, seq, event, n) VALUES (?, ?, ?, ?)"


def _plain(o: Any) -> Any:
    """What orjson cannot write itself: messages (the fields that are set) and pydantic models."""
    if type(o) is Message and o.images is None:
        d: dict[str, Any] = {"role": o.role}
        if o.content is not None:
            d["content"] = o.content
        if o.reasoning is not None:
            d["reasoning"] = o.reasoning
        if o.tool_calls:
            d["tool_calls"] = o.tool_calls
        if o.tool_call_id is not None:
            d["tool_call_id"] = o.tool_call_id
        if o.name is not None:
            d["name"] = o.name
        if o.raw is not None:
            d["raw"] = o.raw
        return d
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json", exclude_none=True)
    raise TypeError(f"cannot journal a {type(o).__name__}")


_IDENT: tuple[int, str | None, str] | None = None


def _identity() -> tuple[int, str | None, str]:
    """This process as the runs table records it (pid, its start time, host), read once."""
    global _IDENT
    pid = os.getpid()
    if _IDENT is None or _IDENT[0] != pid:  # (a fork is another process)
        _IDENT = (pid, process_start(pid), socket.gethostname())
    return _IDENT


class Journal:
    """Call it with each event (it is a sink). `close()` when the run's stream ends."""

    def __init__(self, store: RunStore, *, session: str | None = None, flush_s: float = FLUSH_S,
                 call_gap_s: float = CALL_GAP_S):
        self.store = store
        self.session = session
        self.flush_s = flush_s
        self.call_gap_s = call_gap_s
        self.run_id: str | None = None
        self.main_agent = "main"
        self.seq = 0
        self.finished = False
        self.written = 0  # rows written (for tests and benchmarks)
        self.commits = 0
        self._buf: list[Event] = []
        self._due: float | None = None  # when the pending timer fires
        self._timer: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_reply: dict[str, tuple[Any, int]] = {}  # agent -> (its last reply message, that call's seq)

    # ---- the sink -----------------------------------------------------------------------------
    def __call__(self, ev: Event) -> None:
        buf = self._buf
        buf.append(ev)
        tp = type(ev)
        if tp is ModelCallFinished:
            self._schedule(self.call_gap_s)
        elif tp is RunStarted or tp is RunFinished or (
                tp is MessageAppended and ev.agent == self.main_agent and ev.message.role == "user"):  # type: ignore[attr-defined]
            # the run row exists from the first event, a question is kept the moment it is asked,
            # and the end is never left in a buffer
            self.flush()
        elif len(buf) == 1 or self._timer is None:
            self._schedule(self.flush_s)

    def _schedule(self, within: float) -> None:
        """Make sure a flush happens at most `within` seconds after the last one (or now)."""
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return
        due = max(self._last_flush + within, loop.time())
        if self._due is not None and self._due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer = loop.call_at(due, self._flush_cb)

    def _flush_cb(self) -> None:
        self._timer = None
        self._due = None
        self.flush()

    def checkpoint(self) -> None:
        """Commit everything so far, now (a barrier before a side effect that must not repeat)."""
        if self._buf:
            self.flush()

    # ---- writing ------------------------------------------------------------------------------
    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._due = None
        if self._loop is not None:
            self._last_flush = self._loop.time()
        buf, self._buf = self._buf, []
        if not buf:
            return
        # one pass: fold the deltas of calls that finished within this batch, merge the rest per agent
        kept: list[Any] = []
        deltas: dict[str, list[int]] = {}  # agent -> indices of its pending delta entries
        merge: dict[str, int] = {}  # agent -> index of the delta entry the next delta of its kind joins
        start: RunStarted | None = None
        fin: RunFinished | None = None
        for ev in buf:
            tp = type(ev)
            agent = ev.agent
            if tp is ReasoningDelta or tp is ContentDelta:
                i = merge.get(agent)
                if i is not None and type(kept[i]) is tp:
                    prev = kept[i]
                    kept[i] = tp(text=prev.text + ev.text, agent=agent, ts=prev.ts)  # type: ignore[call-arg,attr-defined]
                    continue
                merge[agent] = len(kept)
                deltas.setdefault(agent, []).append(len(kept))
                kept.append(ev)
                continue
            if merge:
                merge.pop(agent, None)
            if tp is ModelCallFinished or tp is ErrorEvent:
                for i in deltas.pop(agent, ()):
                    kept[i] = None  # its text is in this call's message (or the error's partial)
            elif tp is RunStarted:
                start = ev  # type: ignore[assignment]
            elif tp is RunFinished:
                fin = ev  # type: ignore[assignment]
            kept.append(ev)
        items: list[Any] = []
        session_msgs: list[tuple[int, str]] = []
        first = seq = self.seq
        last_reply, main, session = self._last_reply, self.main_agent, self.session
        for ev in kept:
            if ev is None:
                continue
            tp = type(ev)
            if tp is RunStarted:
                self.run_id = ev.run_id  # type: ignore[attr-defined]
                main = self.main_agent = ev.agent
                if seq == 0 and ev.attempt:  # a resumed run continues its sequence numbers
                    first = seq = self.store.next_seq(ev.run_id)  # type: ignore[attr-defined]
            elif tp is MessageAppended:
                msg, agent, index = ev.message, ev.agent, ev.index  # type: ignore[attr-defined]
                if session is not None and agent == main:
                    session_msgs.append((index, msg.model_dump_json()))
                ref = last_reply.get(agent)
                if ref is not None and ref[0] is msg:
                    ev = {"agent": agent, "ts": ev.ts, "type": "message_appended", "index": index, "ref": ref[1]}
            elif tp is ModelCallFinished:
                last_reply[ev.agent] = (ev.message, seq)  # type: ignore[attr-defined]
            items.append(ev)
            seq += 1
        self.seq = seq
        if items:
            self._write(first, len(items), orjson.dumps(items, default=_plain).decode(), start, fin, session_msgs)

    def _write(self, seq: int, n: int, batch: str, start: RunStarted | None, fin: RunFinished | None,
               session_msgs: list[tuple[int, str]]) -> None:
        if self.run_id is None:
            return  # events before any RunStarted have no run to belong to
        store, row = self.store, (self.run_id, seq, batch, n)
        if start is None and fin is None and not session_msgs:
            # the common case: one row, one statement, committed on its own (no BEGIN/COMMIT round trips)
            with store.lock:
                store.conn.execute(_INSERT, row)
        else:
            now = time.time()
            with store.transaction() as c:
                if start is not None:
                    self._open(c, start, now)
                c.execute(_INSERT, row)
                if session_msgs:
                    c.execute("INSERT INTO sessions(name, created, updated) VALUES (?, ?, ?) "
                              "ON CONFLICT(name) DO UPDATE SET updated = excluded.updated", (self.session, now, now))
                    c.executemany("INSERT OR REPLACE INTO session_messages(session, seq, message) VALUES (?, ?, ?)",
                                  [(self.session, i, m) for i, m in session_msgs])
                if fin is not None:
                    self.finished = True
                    c.execute("UPDATE runs SET status = ?, answer = ?, reason = ?, metrics = ?, finished = ?, "
                              "updated = ? WHERE id = ?",
                              (fin.status, (fin.answer or "")[:ANSWER_PREVIEW_CHARS] if fin.answer is not None else None,
                               fin.reason, fin.metrics.model_dump_json(), fin.ts, now, self.run_id))
        self.written += n
        self.commits += 1

    def _open(self, c: Any, ev: RunStarted, now: float) -> None:
        ident = _identity()
        if ev.attempt == 0:
            c.execute("INSERT INTO runs(id, session, mode, model, task, status, config, started, pid, proc_start, host, "
                      "updated, attempts) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, 1)",
                      (ev.run_id, self.session, ev.mode, ev.model, ev.task, json.dumps(ev.config), ev.ts, *ident, now))
        else:
            c.execute("UPDATE runs SET status = 'running', reason = NULL, pid = ?, proc_start = ?, host = ?, updated = ?, "
                      "attempts = ? WHERE id = ?", (*ident, now, ev.attempt + 1, ev.run_id))

    def close(self) -> None:
        """Flush what is left; a run that ended without its `RunFinished` (stopped from
        outside) is marked `interrupted`, resumable."""
        self.flush()
        if self.run_id is not None and not self.finished:
            with self.store.transaction() as c:
                c.execute("UPDATE runs SET status = 'interrupted', reason = ?, updated = ? WHERE id = ?",
                          ("stopped before it finished; `ponder resume` continues it", time.time(), self.run_id))
