"""The run store: every run's journal (its events, as they happen), the runs, and sessions, in SQLite.

Why SQLite: one file, no server, transactional, readable from any language, and WAL mode
lets readers (a viewer, `ponder runs` in a second terminal) read while a run writes. One
writer per store object (a lock serialises writes across the threads asyncio may use).

Runs are written by `core.journal.Journal`, a reader of the event stream: the run row
exists from the first event (status `running`), events are appended as they happen, and
the row is closed by `RunFinished`. A `running` row whose process is gone is reported as
`interrupted`: `ponder resume` continues it from its journal.

Messages are stored as the full pydantic JSON of `Message`, so reasoning goes back to the
provider byte for byte after the process has exited (Kimi and GLM reject or degrade on
edited reasoning). Events are the JSON lines `event_to_json` writes, so `event_from_json`
reads them back as typed events.

Default location: `$PONDER_HOME/ponder.db`, else `~/.ponder/ponder.db`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError
from .events import EVENT_ADAPTER, Event, MessageAppended
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
    finished REAL,
    config TEXT,
    pid INTEGER,
    proc_start TEXT,
    host TEXT,
    updated REAL,
    attempts INTEGER DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_session ON runs(session, started);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    n INTEGER,
    PRIMARY KEY (run_id, seq)
);
"""
# columns added since the first schema: a new store has them; an older one gets them on open
_RUN_COLUMNS = {"config": "TEXT", "pid": "INTEGER", "proc_start": "TEXT", "host": "TEXT", "updated": "REAL",
                "attempts": "INTEGER DEFAULT 1"}
_EVENT_COLUMNS = {"n": "INTEGER"}  # n > 1: the row holds a batch of n events (a JSON array), seq is the first
_RUN_KEYS = ("id", "session", "mode", "model", "task", "status", "answer", "reason", "metrics", "started", "finished",
             "config", "pid", "proc_start", "host", "updated", "attempts")
ANSWER_PREVIEW_CHARS = 4_000  # the runs table keeps a preview; the whole answer is in the run's last event


def default_db_path() -> Path:
    home = os.environ.get("PONDER_HOME")
    return (Path(home) if home else Path.home() / ".ponder") / "ponder.db"


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (so a reused pid is not taken for the run's process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2:].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int | None, start: str | None, host: str | None) -> bool | None:
    """Whether the process that wrote a run is still running; None when it cannot be told
    (another host, or no /proc)."""
    if not pid or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_start(pid)
    if now is None or start is None:  # alive; whether the pid was reused cannot be told
        return True
    return now == start


class RunStore:
    """One SQLite database file. Safe to share between coroutines; writes are serialised."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        try:
            if self.path.is_dir():
                raise ConfigError(f"the run store {self.path} is a directory; pass a file path with --db "
                                  "(e.g. --db runs.db) or set PONDER_HOME")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self.lock = self._lock = threading.Lock()
            for attempt in range(50):  # processes opening a new store together: the setup waits its turn
                try:
                    self._setup()
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e) or attempt == 49:
                        raise
                    time.sleep(0.02 * (attempt + 1))
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(
                f"cannot open the run store at {self.path}: {e}. Pass another path with --db or set PONDER_HOME."
            ) from e

    def _setup(self) -> None:
        """WAL, the schema, and the columns an older store lacks. (Switching to WAL takes a lock
        that does not wait on the busy timeout, hence the caller's retries.)"""
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        for table, cols in (("runs", _RUN_COLUMNS), ("events", _EVENT_COLUMNS)):
            have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            for col, decl in cols.items():
                if col not in have:
                    try:
                        self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
                    except sqlite3.OperationalError as e:  # another process migrated it just now
                        if "duplicate column" not in str(e):
                            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    # ---- sessions -------------------------------------------------------------------------
    def sessions(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT s.name, s.created, s.updated, COUNT(m.seq) FROM sessions s "
            "LEFT JOIN session_messages m ON m.session = s.name GROUP BY s.name ORDER BY s.updated DESC"
        ).fetchall()
        return [{"name": r[0], "created": r[1], "updated": r[2], "messages": r[3]} for r in rows]

    def load_messages(self, name: str) -> list[Message]:
        if not name or not name.strip():
            raise ConfigError("a session needs a non-empty name, e.g. --session my-task")
        rows = self._conn.execute(
            "SELECT message FROM session_messages WHERE session = ? ORDER BY seq", (name,)
        ).fetchall()
        return [Message.model_validate_json(r[0]) for r in rows]

    def delete_session(self, name: str) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM session_messages WHERE session = ?", (name,))
            c.execute("DELETE FROM sessions WHERE name = ?", (name,))

    # ---- runs -------------------------------------------------------------------------------
    def _row(self, r: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(_RUN_KEYS, r, strict=True))
        d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else None
        d["config"] = json.loads(d["config"]) if d["config"] else None
        if d["status"] == "running" and process_alive(d["pid"], d["proc_start"], d["host"]) is False:
            d["status"] = "interrupted"
            d["reason"] = d["reason"] or "the process running it stopped before it finished; `ponder resume` continues it"
        return d

    def runs(self, session: str | None = None, limit: int = 50, *, status: str | None = None,
             mode: str | None = None, search: str | None = None) -> list[dict[str, Any]]:
        """Newest first. `running` rows whose process is gone come back as `interrupted`."""
        q = f"SELECT {', '.join(_RUN_KEYS)} FROM runs"
        where, args = [], []
        if session is not None:
            where.append("session = ?")
            args.append(session)
        if mode is not None:
            where.append("mode = ?")
            args.append(mode)
        if search:
            where.append("(task LIKE ? OR id LIKE ? OR model LIKE ?)")
            args += [f"%{search}%", f"{search}%", f"%{search}%"]
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY started DESC LIMIT ?"
        rows = [self._row(r) for r in self._conn.execute(q, (*args, limit if status is None else -1)).fetchall()]
        if status is not None:
            rows = [r for r in rows if r["status"] == status][:limit]
        return rows

    def run(self, run_id: str) -> dict[str, Any]:
        """One run by id or unique id prefix; KeyError (with what to do) when there is none."""
        rows = self._conn.execute(f"SELECT {', '.join(_RUN_KEYS)} FROM runs WHERE id LIKE ? LIMIT 2",
                                  (run_id.replace("%", "") + "%",)).fetchall()
        if not rows:
            raise KeyError(f"no run {run_id!r} in {self.path}; `ponder runs` lists the stored runs")
        if len(rows) > 1 and rows[0][0] != run_id:
            raise KeyError(f"run id prefix {run_id!r} is ambiguous in {self.path}; give more characters")
        return self._row(rows[0])

    def next_seq(self, run_id: str) -> int:
        r = self._conn.execute("SELECT MAX(seq + COALESCE(n, 1)) FROM events WHERE run_id = ?", (run_id,)).fetchone()
        return 0 if r[0] is None else int(r[0])

    def _raw(self, run_id: str, after: int) -> list[tuple[int, str, int | None]]:
        return self._conn.execute(
            "SELECT seq, event, n FROM events WHERE run_id = ? AND seq + COALESCE(n, 1) - 1 > ? ORDER BY seq",
            (run_id, after)).fetchall()

    def event_objects(self, run_id: str, after: int = -1) -> Iterator[tuple[int, dict[str, Any]]]:
        """(seq, event as a JSON object) per event, batches expanded."""
        for seq, raw, n in self._raw(run_id, after):
            obj = orjson.loads(raw)
            if n is not None and n > 1 or type(obj) is list:
                for i, item in enumerate(obj):
                    if seq + i > after:
                        yield seq + i, item
            else:
                yield seq, obj

    def event_rows(self, run_id: str, after: int = -1) -> list[tuple[int, str]]:
        """(seq, event JSON) per event, in order: one row per event whatever the batching."""
        out: list[tuple[int, str]] = []
        for seq, raw, n in self._raw(run_id, after):
            if (n is None or n <= 1) and raw[:1] == "{":
                out.append((seq, raw))
                continue
            for i, item in enumerate(orjson.loads(raw)):
                if seq + i > after:
                    out.append((seq + i, orjson.dumps(item).decode()))
        return out

    def events(self, run_id: str, after: int = -1) -> list[Event]:
        """The run's journal as typed events (a message kept by reference is filled in)."""
        out: list[Event] = []
        calls: dict[int, Message] = {}
        for seq, obj in self.event_objects(run_id, after):
            ev = decode_object(obj, calls)
            if obj.get("type") == "model_call_finished":
                calls[seq] = ev.message  # type: ignore[union-attr]
            out.append(ev)
        return out


def decode_object(d: dict[str, Any], calls: dict[int, Message]) -> Event:
    """One journal entry. A `message_appended` that names the model call whose message it
    appends (`ref`, that call's seq) carries no copy of it: the journal stores each reply once."""
    if "ref" in d and d.get("type") == "message_appended":
        msg = calls.get(d["ref"])
        if msg is None:
            raise ValueError(f"journal entry refers to model call {d['ref']}, which is not in it")
        return MessageAppended(agent=d["agent"], ts=d["ts"], index=d["index"], message=msg)
    return EVENT_ADAPTER.validate_python(d)


def decode_event(raw: str | bytes, calls: dict[int, Message]) -> Event:
    """One journal row's JSON (see `decode_object`)."""
    return decode_object(orjson.loads(raw), calls)
