"""The SQLite run store and sessions: a conversation continues, reasoning intact, after the process exits."""

from __future__ import annotations

import sqlite3

import pytest

from ponder.core.errors import ConfigError
from ponder.core.events import ReasoningDelta, RunFinished
from ponder.core.messages import Message, Reasoning, ToolCall
from ponder.core.store import RunStore, Session, default_db_path
from ponder.engines.interleaved import Interleaved
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_messages_round_trip_byte_for_byte(tmp_path):
    store = RunStore(tmp_path / "p.db")
    weird = "  leading spaces, unicode ✓, \"quotes\"\n\ttabs  "
    msgs = [
        Message.system("s"), Message.user("u"),
        Message(role="assistant", content=None, reasoning=Reasoning(text=weird, model="m", dialect="kimi"),
                tool_calls=[ToolCall(id="functions.add:0", name="add", arguments={"a": 1}, raw_arguments='{"a":1}')]),
        Message.tool("functions.add:0", "1", "add"),
    ]
    store.save_messages("s1", msgs)
    back = RunStore(tmp_path / "p.db").load_messages("s1")
    assert back == msgs and back[2].reasoning.text == weird
    store.save_messages("s1", msgs[:2])  # a shorter conversation leaves no stale rows
    assert len(store.load_messages("s1")) == 2
    assert store.sessions()[0]["name"] == "s1" and store.sessions()[0]["messages"] == 2


def test_wal_mode_and_default_path(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "w.db")
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / "ponder.db"


def test_bad_path_and_empty_session_name_are_clear_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--db"):
        RunStore(tmp_path / "file" / "sub" / "p.db")
    with pytest.raises(ConfigError, match="non-empty name"):
        Session(RunStore(tmp_path / "ok.db"), " ")


async def test_second_engine_from_the_same_sqlite_session_continues_with_reasoning(tmp_path):
    db = tmp_path / "ponder.db"
    m1 = ScriptedModel([Reply(reasoning="first: I will add", tool_calls=[("add", {"a": 20, "b": 22})]),
                        Reply(reasoning="first: it is 42", content="42")])
    res1 = await Interleaved(m1, [add], thinking="on", session=Session(RunStore(db), "calc")).run("20+22?")
    assert res1.status == "ok"

    # a new process: fresh store object, fresh engine, a Kimi-dialect model to inspect the wire
    store = RunStore(db)
    m2 = ScriptedModel([Reply(reasoning="second: reuse 42", content="84")], wire_dialect="kimi")
    eng2 = Interleaved(m2, [add], thinking="on", session=Session(store, "calc"))
    assert [x.role for x in eng2.messages] == ["system", "user", "assistant", "tool", "assistant"]
    res2 = await eng2.run("and doubled?")
    assert res2.answer == "84"
    sent = [a.get("reasoning_content") for a in m2.payloads[0]["messages"] if a["role"] == "assistant"]
    assert sent == ["first: I will add", "first: it is 42"]
    assert len([x for x in m2.requests[0].messages if x.role == "system"]) == 1  # no second system prompt

    # the session now holds both turns; both runs and their events are recorded
    again = Session(RunStore(db), "calc")
    assert [x.reasoning.text for x in again.messages if x.role == "assistant"] == [
        "first: I will add", "first: it is 42", "second: reuse 42"]
    runs = again.runs()
    assert [r["task"] for r in runs] == ["and doubled?", "20+22?"] and all(r["status"] == "ok" for r in runs)
    assert runs[0]["metrics"]["steps"] == 1
    evs = store.events(runs[1]["id"])
    assert isinstance(evs[-1], RunFinished) and any(isinstance(e, ReasoningDelta) for e in evs)
    assert evs[-1].answer == "42"


def test_events_table_is_json_lines(tmp_path):
    store = RunStore(tmp_path / "e.db")
    rid = store.record_run(task="t", mode="interleaved", model="m", events=[ReasoningDelta(text="hi")])
    raw = sqlite3.connect(tmp_path / "e.db").execute("SELECT event FROM events WHERE run_id=?", (rid,)).fetchone()[0]
    assert raw.startswith("{") and '"reasoning_delta"' in raw
    assert store.runs()[0]["status"] == "interrupted"
