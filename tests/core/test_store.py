"""The SQLite run store, the journal and sessions: every run is recorded as it happens, and a
conversation continues, reasoning intact, after the process exits."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ponder import runs
from ponder.core.errors import ConfigError
from ponder.core.events import (
    ContentDelta,
    MessageAppended,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    RunStarted,
)
from ponder.core.journal import Journal
from ponder.core.messages import Reasoning, ToolCall
from ponder.core.store import RunStore, default_db_path
from ponder.engines.interleaved import Interleaved
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool


@tool(idempotent=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


WEIRD = "  leading spaces, unicode ✓, \"quotes\"\n\ttabs  "


def _calc_model(*replies: Reply, **kw) -> ScriptedModel:
    return ScriptedModel(list(replies), **kw)


async def test_session_messages_round_trip_byte_for_byte(tmp_path):
    store = RunStore(tmp_path / "p.db")
    m = _calc_model(Reply(reasoning=WEIRD, tool_calls=[ToolCall(id="functions.add:0", name="add", arguments={"a": 1, "b": 2},
                                                             raw_arguments='{"a":1, "b":2}')]),
                    Reply(reasoning="done", content="3"))
    res = await runs.run(Interleaved(m, [add], thinking="on"), "1+2?", store=store, session="s1")
    back = RunStore(tmp_path / "p.db").load_messages("s1")
    assert back == res.messages and back[2].reasoning == Reasoning(text=WEIRD, model="scripted", dialect="scripted")
    assert back[2].tool_calls[0].raw_arguments == '{"a":1, "b":2}'
    assert store.sessions()[0]["name"] == "s1" and store.sessions()[0]["messages"] == 5


def test_wal_mode_and_default_path(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "w.db")
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / "ponder.db"


def test_bad_path_and_empty_session_name_are_clear_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--db"):
        RunStore(tmp_path / "file" / "sub" / "p.db")
    with pytest.raises(ConfigError, match="is a directory"):
        RunStore(tmp_path)
    with pytest.raises(ConfigError, match="non-empty name"):
        RunStore(tmp_path / "ok.db").load_messages(" ")


async def test_second_engine_from_the_same_session_continues_with_reasoning(tmp_path):
    db = tmp_path / "ponder.db"
    m1 = _calc_model(Reply(reasoning="first: I will add", tool_calls=[("add", {"a": 20, "b": 22})]),
                     Reply(reasoning="first: it is 42", content="42"))
    res1 = await runs.run(Interleaved(m1, [add], thinking="on"), "20+22?", db=db, session="calc")
    assert res1.status == "ok"

    # a new process: fresh store object, fresh engine, a Kimi-dialect model to inspect the wire
    m2 = _calc_model(Reply(reasoning="second: reuse 42", content="84"), wire_dialect="kimi")
    res2 = await runs.run(Interleaved(m2, [add], thinking="on"), "and doubled?", db=db, session="calc")
    assert res2.answer == "84"
    sent = [a.get("reasoning_content") for a in m2.payloads[0]["messages"] if a["role"] == "assistant"]
    assert sent == ["first: I will add", "first: it is 42"]
    assert len([x for x in m2.requests[0].messages if x.role == "system"]) == 1  # no second system prompt

    store = RunStore(db)
    assert [x.reasoning.text for x in store.load_messages("calc") if x.role == "assistant"] == [
        "first: I will add", "first: it is 42", "second: reuse 42"]
    rows = store.runs("calc")
    assert [r["task"] for r in rows] == ["and doubled?", "20+22?"] and all(r["status"] == "ok" for r in rows)
    assert rows[0]["metrics"]["steps"] == 1
    evs = store.events(rows[1]["id"])
    assert isinstance(evs[0], RunStarted) and isinstance(evs[-1], RunFinished) and evs[-1].answer == "42"


async def test_journal_holds_every_event_once_with_replies_stored_by_reference(tmp_path):
    store = RunStore(tmp_path / "j.db")
    m = _calc_model(Reply(reasoning="think " * 5, tool_calls=[("add", {"a": 1, "b": 2})]),
                    Reply(reasoning="so", content="three " * 20))
    seen = []
    fin = await runs.execute(Interleaved(m, [add], thinking="on"), "1+2", seen.append, store=store)
    stored = store.events(fin.run_id)
    # the stream's deltas of finished calls are folded into their calls; everything else is kept, in order
    live = [e for e in seen if type(e) not in (ReasoningDelta, ContentDelta)]
    assert [e.type for e in stored] == [e.type for e in live]
    assert all(a == b for a, b in zip(stored, live, strict=True) if type(a) is not MessageAppended)
    # an appended reply is the very message of its call (stored once, referenced)
    rows = dict(store.event_rows(fin.run_id))
    assert [s for s, r in rows.items() if '"ref":' in r] and list(rows) == list(range(len(rows)))
    # written in batches (one row per commit), read back one event per sequence number
    raw = store._conn.execute("SELECT COUNT(*), SUM(n) FROM events WHERE run_id = ?", (fin.run_id,)).fetchone()
    assert raw[0] < len(rows) and raw[1] == len(rows)
    appended = [e.message for e in stored if type(e) is MessageAppended and e.message.role == "assistant"]
    calls = [e.message for e in stored if type(e) is ModelCallFinished]
    assert appended == calls
    assert store.runs()[0]["status"] == "ok" and store.integrity_check() == "ok"


async def test_run_row_exists_from_the_first_event_and_a_dead_writer_reads_interrupted(tmp_path):
    store = RunStore(tmp_path / "r.db")
    j = Journal(store)
    j(RunStarted(run_id="r1", mode="interleaved", task="t", model="m", config={"mode": "interleaved"}))
    assert store.run("r1")["status"] == "running"  # written at once, before any model call
    j(ContentDelta(text="partial"))
    j.flush()
    assert [e.type for e in store.events("r1")] == ["run_started", "content_delta"]  # an unfinished call's text is kept
    # the writing process is gone (a pid that cannot exist): the run is reported interrupted
    sqlite3.connect(tmp_path / "r.db").execute("UPDATE runs SET pid = ? WHERE id = 'r1'", (2 ** 22 + 7,)).connection.commit()
    assert store.run("r1")["status"] == "interrupted"
    assert store.runs(status="interrupted")[0]["id"] == "r1"
    j.close()
    assert os.getpid() and store.run("r1")["status"] == "interrupted"


def test_older_store_is_migrated(tmp_path):
    c = sqlite3.connect(tmp_path / "old.db")
    c.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, session TEXT, mode TEXT NOT NULL, model TEXT, task TEXT NOT NULL,"
              " status TEXT, answer TEXT, reason TEXT, metrics TEXT, started REAL NOT NULL, finished REAL)")
    c.execute("INSERT INTO runs VALUES ('a', NULL, 'swarm', 'm', 't', 'ok', 'x', NULL, NULL, 1.0, 2.0)")
    c.commit()
    rows = RunStore(tmp_path / "old.db").runs()
    assert rows[0]["id"] == "a" and rows[0]["status"] == "ok" and rows[0]["config"] is None


def test_processes_opening_a_new_store_together_all_succeed(tmp_path):
    """A server and a first `ponder run` may create the same store at once (WAL switch and
    schema race): every opener gets a working store."""
    import threading

    for r in range(15):
        path, errors, opened = tmp_path / f"s{r}.db", [], []
        barrier = threading.Barrier(4)

        def open_it(path=path, errors=errors, opened=opened, barrier=barrier):
            barrier.wait()
            try:
                opened.append(RunStore(path))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(opened) == 4
        assert {r[1] for r in opened[0]._conn.execute("PRAGMA table_info(runs)")} >= {"config", "pid", "attempts"}
