"""The run store: sessions (conversations with their reasoning), runs and their events, in SQLite.

Why SQLite: one file, no server, transactional, readable from any language, and WAL mode
lets readers (a report, a second terminal) read while a run writes. There is one writer
per store object (a lock serialises writes across the threads asyncio may use).

Messages are stored as the full pydantic JSON of `Message`, so reasoning goes back to
the provider byte-for-byte after the process has exited (Kimi and GLM reject or degrade
on edited reasoning). Events are stored as the JSON lines `event_to_json` writes, so
`event_from_json` reads them back as typed events.

Default location: `$PONDER_HOME/ponder.db`, else `~/.ponder/ponder.db`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .events import Event, RunFinished, event_from_json, event_to_json
from .messages import Message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS session_messages (
    session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (session, seq)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    session TEXT,
    mode TEXT NOT NULL,
    model TEXT,
    task TEXT NOT NULL,
    status TEXT,
    answer TEXT,
    reason TEXT,
    metrics TEXT,
    started REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS runs_session ON runs(session, started);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


def default_db_path() -> Path:
    home = os.environ.get("PONDER_HOME")
    return (Path(home) if home else Path.home() / ".ponder") / "ponder.db"


class RunStore:
    """One SQLite database file. Safe to share between coroutines; writes are serialised."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(
                f"cannot open the run store at {self.path}: {e}. Pass another path with --db or set PONDER_HOME."
            ) from e
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ---- sessions -------------------------------------------------------------------------
    def session(self, name: str) -> Session:
        return Session(self, name)

    def sessions(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT s.name, s.created, s.updated, COUNT(m.seq) FROM sessions s "
            "LEFT JOIN session_messages m ON m.session = s.name GROUP BY s.name ORDER BY s.updated DESC"
        ).fetchall()
        return [{"name": r[0], "created": r[1], "updated": r[2], "messages": r[3]} for r in rows]

    def load_messages(self, name: str) -> list[Message]:
        rows = self._conn.execute(
            "SELECT message FROM session_messages WHERE session = ? ORDER BY seq", (name,)
        ).fetchall()
        return [Message.model_validate_json(r[0]) for r in rows]

    def save_messages(self, name: str, messages: Iterable[Message]) -> None:
        """Replace the session's conversation (a whole-list write: messages are never edited in place,
        but a repaired or shortened conversation must not leave stale rows behind)."""
        now = time.time()
        data = [(name, i, m.model_dump_json()) for i, m in enumerate(messages)]
        with self._tx() as c:
            c.execute(
                "INSERT INTO sessions(name, created, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET updated = excluded.updated",
                (name, now, now),
            )
            c.execute("DELETE FROM session_messages WHERE session = ?", (name,))
            c.executemany("INSERT INTO session_messages(session, seq, message) VALUES (?, ?, ?)", data)

    def delete_session(self, name: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM session_messages WHERE session = ?", (name,))
            c.execute("DELETE FROM sessions WHERE name = ?", (name,))

    # ---- runs -------------------------------------------------------------------------------
    def record_run(
        self,
        *,
        task: str,
        mode: str,
        model: str | None,
        events: Iterable[Event],
        finished: RunFinished | None = None,
        session: str | None = None,
        started: float | None = None,
    ) -> str:
        """Store one finished (or interrupted: `finished=None`) run and all of its events."""
        evs = list(events)
        run_id = uuid.uuid4().hex[:16]
        t_start = started if started is not None else (evs[0].ts if evs else time.time())
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs(id, session, mode, model, task, status, answer, reason, metrics, started, finished) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, session, mode, model, task,
                    finished.status if finished else "interrupted",
                    finished.answer if finished else None,
                    finished.reason if finished else "interrupted before the run finished",
                    json.dumps(finished.metrics) if finished else None,
                    t_start,
                    finished.ts if finished else time.time(),
                ),
            )
            c.executemany(
                "INSERT INTO events(run_id, seq, event) VALUES (?, ?, ?)",
                [(run_id, i, event_to_json(e)) for i, e in enumerate(evs)],
            )
        return run_id

    def runs(self, session: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = "SELECT id, session, mode, model, task, status, answer, reason, metrics, started, finished FROM runs"
        args: tuple[Any, ...] = ()
        if session is not None:
            q += " WHERE session = ?"
            args = (session,)
        q += " ORDER BY started DESC LIMIT ?"
        rows = self._conn.execute(q, (*args, limit)).fetchall()
        keys = ("id", "session", "mode", "model", "task", "status", "answer", "reason", "metrics", "started", "finished")
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else None
            out.append(d)
        return out

    def events(self, run_id: str) -> list[Event]:
        rows = self._conn.execute("SELECT event FROM events WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        return [event_from_json(r[0]) for r in rows]


class Session:
    """A named conversation in a store: what `ponder run --session NAME` continues.

    `messages` is loaded at construction; the engine replaces it through `save()` after
    every run (also after an interrupted one, once the dangling tool calls are answered).
    """

    def __init__(self, store: RunStore, name: str):
        if not name or not name.strip():
            raise ConfigError("a session needs a non-empty name, e.g. --session my-task")
        self.store = store
        self.name = name
        self.messages: list[Message] = store.load_messages(name)

    def load(self) -> list[Message]:
        self.messages = self.store.load_messages(self.name)
        return self.messages

    def save(self, messages: Iterable[Message] | None = None) -> None:
        if messages is not None:
            self.messages = list(messages)
        self.store.save_messages(self.name, self.messages)

    def record_run(self, *, task: str, mode: str, model: str | None, events: Iterable[Event],
                   finished: RunFinished | None = None) -> str:
        return self.store.record_run(task=task, mode=mode, model=model, events=events, finished=finished,
                                     session=self.name)

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.store.runs(self.name, limit)
