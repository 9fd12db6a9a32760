"""The comparison store: one SQLite file, one row per (comparison, suite, task, mode, model).

A row is written the moment its task finishes, so killing `ponder compare` loses at most
the tasks in flight, and `--resume ID` skips every key already stored. The tables carry
a `bench_` prefix so the file can sit next to (or inside) other ponder databases.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DB = Path(".ponder") / "compare.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_comparisons (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS bench_results (
    comparison_id TEXT NOT NULL,
    suite TEXT NOT NULL,
    task_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    engine TEXT NOT NULL,
    status TEXT NOT NULL,
    answer TEXT,
    extracted TEXT,
    score REAL NOT NULL DEFAULT 0,
    solved INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    critical_steps INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    model_calls INTEGER NOT NULL DEFAULT 0,
    agents INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    ttft_s REAL,
    decode_tps REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    wall_s REAL NOT NULL DEFAULT 0,
    error TEXT,
    features TEXT NOT NULL DEFAULT '{}',
    detail TEXT NOT NULL DEFAULT '{}',
    finished_at REAL NOT NULL,
    PRIMARY KEY (comparison_id, suite, task_id, mode, model)
);
"""


@dataclass
class TaskRecord:
    """Everything measured for one task under one mode and model."""

    comparison_id: str
    suite: str
    task_id: str
    mode: str  # what the user asked for: swarm | interleaved | single | auto
    model: str
    engine: str  # what actually ran (auto resolves to swarm or interleaved)
    status: str  # ok | budget | cancelled | error
    answer: str | None = None
    extracted: str | None = None
    score: float = 0.0
    solved: bool = False
    steps: int = 0
    critical_steps: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    agents: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_s: float | None = None
    decode_tps: float | None = None
    cost_usd: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    features: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    finished_at: float = field(default_factory=time.time)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.suite, self.task_id, self.mode, self.model

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class CompareStore:
    """Thread-safe (one lock) because asyncio tasks may record from worker threads."""

    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL") if str(self.path) != ":memory:" else None
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- comparisons -------------------------------------------------------------------------
    def new_comparison(self, config: dict[str, Any], comparison_id: str | None = None) -> str:
        cid = comparison_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO bench_comparisons (id, created, config) VALUES (?, ?, ?)",
                             (cid, time.time(), json.dumps(config, sort_keys=True)))
        return cid

    def config(self, comparison_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT config FROM bench_comparisons WHERE id = ?", (comparison_id,)).fetchone()
        if row is None:
            known = ", ".join(c for c, _ in self.comparisons()[-5:]) or "(none)"
            raise KeyError(f"no comparison {comparison_id!r} in {self.path}; recent ones: {known}")
        return json.loads(row[0])

    def set_status(self, comparison_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE bench_comparisons SET status = ? WHERE id = ?", (status, comparison_id))

    def comparisons(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(r[0], r[1]) for r in self._db.execute("SELECT id, status FROM bench_comparisons ORDER BY created")]

    # ---- results -----------------------------------------------------------------------------
    def record(self, rec: TaskRecord) -> None:
        d = asdict(rec)
        d["solved"] = int(rec.solved)
        d["features"] = json.dumps(rec.features, default=str)
        d["detail"] = json.dumps(rec.detail, default=str)
        cols = list(d)
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO bench_results ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [d[c] for c in cols],
            )

    def done_keys(self, comparison_id: str, *, include_errors: bool = True) -> set[tuple[str, str, str, str]]:
        q = "SELECT suite, task_id, mode, model FROM bench_results WHERE comparison_id = ?"
        if not include_errors:
            q += " AND status != 'error'"
        with self._lock:
            return {tuple(r) for r in self._db.execute(q, (comparison_id,))}  # type: ignore[misc]

    def results(self, comparison_id: str | None = None) -> list[TaskRecord]:
        q = "SELECT * FROM bench_results"
        args: tuple[Any, ...] = ()
        if comparison_id is not None:
            q += " WHERE comparison_id = ?"
            args = (comparison_id,)
        q += " ORDER BY suite, task_id, mode, model"
        with self._lock:
            cur = self._db.execute(q, args)
            names = [c[0] for c in cur.description]
            rows = cur.fetchall()
        out = []
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["solved"] = bool(d["solved"])
            d["features"] = json.loads(d["features"] or "{}")
            d["detail"] = json.loads(d["detail"] or "{}")
            out.append(TaskRecord(**d))
        return out
