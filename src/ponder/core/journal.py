"""The journal: a reader of the event stream that appends each run's events to SQLite as they happen.

Every entry point (the CLI, the server, `ponder compare`, the Python API's `ponder.run`)
puts one in front of its consumer; engines never see a store. What it guarantees:

* the run row exists from the first event (`RunStarted`), with status `running`, and is
  closed by `RunFinished` (or marked `interrupted` when the run is stopped from outside);
* events are committed at least once per model call (a flush is queued the moment a
  `ModelCallFinished` arrives, so all calls finishing together share one commit) and at
  most 100 ms after any other event; `checkpoint()` commits at once (the agent loop calls
  it before a tool that must not run twice);
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
write, no fsync), batched; `benchmarks/swarm_fanout.py --journal on|off` and
`benchmarks/step_overhead.py` measure what they cost.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import Any

from . import fastjson
from .events import (
    ContentDelta,
    ErrorEvent,
    Event,
    MessageAppended,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    RunStarted,
    event_to_json,
)
from .store import ANSWER_PREVIEW_CHARS, RunStore, process_start

FLUSH_S = 0.1
_DELTAS = (ReasoningDelta, ContentDelta)


class Journal:
    """Call it with each event (it is a sink). `close()` when the run's stream ends."""

    def __init__(self, store: RunStore, *, session: str | None = None, flush_s: float = FLUSH_S):
        self.store = store
        self.session = session
        self.flush_s = flush_s
        self.run_id: str | None = None
        self.main_agent = "main"
        self.seq = 0
        self.finished = False
        self.written = 0  # rows written (for tests and benchmarks)
        self._buf: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_reply: dict[str, tuple[Any, int]] = {}  # agent -> (its last reply message, that call's seq)

    # ---- the sink -----------------------------------------------------------------------------
    def __call__(self, ev: Event) -> None:
        self._buf.append(ev)
        tp = type(ev)
        if tp is ModelCallFinished:
            if self._soon is None:
                loop = self._loop or self._get_loop()
                if loop is not None:
                    self._soon = loop.call_soon(self._flush_cb)
        elif tp is RunStarted or tp is RunFinished:
            self.flush()  # the run row exists from the first event; the end is never left in a buffer
            return
        if self._timer is None and self._soon is None:
            loop = self._loop or self._get_loop()
            if loop is not None:
                self._timer = loop.call_later(self.flush_s, self._flush_cb)

    def _get_loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._loop

    def _flush_cb(self) -> None:
        self._soon = None
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
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        buf, self._buf = self._buf, []
        if not buf:
            return
        rows: list[Any] = []  # (event, json) pairs; None where a delta was folded away
        deltas: dict[str, list[int]] = {}  # agent -> indices of its pending delta rows
        merge: dict[str, int] = {}  # agent -> index of the delta row the next delta of its kind joins
        start: RunStarted | None = None
        fin: RunFinished | None = None
        session_msgs: list[tuple[int, str]] = []
        for ev in buf:
            tp = type(ev)
            agent = ev.agent
            if tp in _DELTAS:
                i = merge.get(agent)
                if i is not None and type(rows[i][0]) is tp:
                    prev = rows[i][0]
                    rows[i] = (tp(text=prev.text + ev.text, agent=agent, ts=prev.ts), None)  # type: ignore[call-arg,attr-defined]
                    continue
                merge[agent] = len(rows)
                deltas.setdefault(agent, []).append(len(rows))
                rows.append((ev, None))
                continue
            merge.pop(agent, None)
            if tp is ModelCallFinished or tp is ErrorEvent:
                for i in deltas.pop(agent, ()):
                    rows[i] = None  # its text is in this call's message (or the error's partial)
            elif tp is RunStarted:
                start = ev  # type: ignore[assignment]
            elif tp is RunFinished:
                fin = ev  # type: ignore[assignment]
            rows.append((ev, None))
        out: list[tuple[str | None, int, str]] = []
        for row in rows:
            if row is None:
                continue
            ev = row[0]
            tp = type(ev)
            seq = self.seq
            if tp is RunStarted:
                self.run_id = ev.run_id  # type: ignore[attr-defined]
                self.main_agent = ev.agent
                if self.seq == 0:
                    self.seq = seq = self.store.next_seq(ev.run_id)  # type: ignore[attr-defined]
            if tp is MessageAppended:
                msg = ev.message  # type: ignore[attr-defined]
                ref = self._last_reply.get(ev.agent)
                if ref is not None and ref[0] is msg:
                    text = fastjson.dumps({"agent": ev.agent, "ts": ev.ts, "type": "message_appended",
                                           "index": ev.index, "ref": ref[1]})  # type: ignore[attr-defined]
                else:
                    text = event_to_json(ev)
                if self.session is not None and ev.agent == self.main_agent:
                    session_msgs.append((ev.index, msg.model_dump_json()))  # type: ignore[attr-defined]
            else:
                text = event_to_json(ev)
                if tp is ModelCallFinished:
                    self._last_reply[ev.agent] = (ev.message, seq)  # type: ignore[attr-defined]
            out.append((self.run_id, seq, text))
            self.seq += 1
        self._write(out, start, fin, session_msgs)

    def _write(self, rows: list[tuple[str | None, int, str]], start: RunStarted | None, fin: RunFinished | None,
               session_msgs: list[tuple[int, str]]) -> None:
        if self.run_id is None:
            return  # events before any RunStarted have no run to belong to
        now = time.time()
        with self.store.transaction() as c:
            if start is not None:
                self._open(c, start, now)
            c.executemany("INSERT INTO events(run_id, seq, event) VALUES (?, ?, ?)", rows)
            if session_msgs:
                c.execute("INSERT INTO sessions(name, created, updated) VALUES (?, ?, ?) "
                          "ON CONFLICT(name) DO UPDATE SET updated = excluded.updated", (self.session, now, now))
                c.executemany("INSERT OR REPLACE INTO session_messages(session, seq, message) VALUES (?, ?, ?)",
                              [(self.session, i, m) for i, m in session_msgs])
            if fin is not None:
                self.finished = True
                c.execute("UPDATE runs SET status = ?, answer = ?, reason = ?, metrics = ?, finished = ?, updated = ? "
                          "WHERE id = ?",
                          (fin.status, (fin.answer or "")[:ANSWER_PREVIEW_CHARS] if fin.answer is not None else None,
                           fin.reason, fin.metrics.model_dump_json(), fin.ts, now, self.run_id))
            else:
                c.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, self.run_id))
        self.written += len(rows)

    def _open(self, c: Any, ev: RunStarted, now: float) -> None:
        pid = os.getpid()
        ident = (pid, process_start(pid), socket.gethostname())
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
