"""The fault matrix: every fault class the scripted server injects, against ponder's real HTTP
transport, then through the Interleaved engine into a real SQLite run store. Nothing is lost
without the outcome saying so, and nothing waits beyond its own limits."""

from __future__ import annotations

import time

import pytest

from ponder import runs
from ponder.core.events import ContentDelta, ErrorEvent, ModelCallFinished, RunFinished
from ponder.core.messages import Message
from ponder.core.store import RunStore
from ponder.engines.interleaved import Interleaved
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.openai_compat import OpenAICompatModel
from ponder.testing_http import FAULT_ANSWER, FAULTS, MockOpenAIServer

REQ = ChatRequest(messages=[Message.user("What is the answer?")])
FAST = {"idle_timeout_s": 0.5, "first_byte_timeout_s": 0.6, "backoff_s": 0.01, "max_retries": 1}


def faulty_model(url: str, **kw) -> OpenAICompatModel:
    return OpenAICompatModel(resolve("faulty", base_url=url, dialect="openai"), api_key="sk-fault-secret-999", **{**FAST, **kw})


async def call(fault: str, **kw):
    async with MockOpenAIServer(lambda p, n: FAULTS[fault](n)) as srv:
        t0 = time.perf_counter()
        evs = [ev async for ev in faulty_model(srv.base_url, **kw).stream(REQ)]
        return evs, time.perf_counter() - t0, srv


def streamed_text(evs) -> str:
    return "".join(e.text for e in evs if isinstance(e, ContentDelta))


# fault -> (outcome: "ok" or the ErrorEvent's error_type, text that must be in the message,
#           the partial (or final) content, requests made)
MATRIX = {
    "ok": ("ok", None, FAULT_ANSWER, 1),
    "malformed_json": ("StreamDamaged", "1 chunk with malformed JSON dropped", "The answer is clearly.", 1),
    "invalid_utf8": ("StreamDamaged", "invalid UTF-8 repaired", "The answer is forty\ufffd-two, clearly.", 1),
    "cut_mid_stream": ("StreamInterrupted", "stream cut mid-way", "The answer", 1),
    "stall_after_first_token": ("StreamInterrupted", "no data for 0.5 s (idle_timeout_s)", "The", 1),
    "stall_before_headers": ("ModelError", "within 0.6 s (first_byte_timeout_s) (after 2 attempts)", None, 2),
    "rate_limited": ("ok", None, FAULT_ANSWER, 2),
    "server_error": ("ok", None, FAULT_ANSWER, 2),
    "html_from_proxy": ("ModelError", "HTTP 502 with an HTML body (page title: '502 Bad Gateway')", None, 2),
    "error_chunk": ("ModelError", "upstream model crashed", "The answer", 1),
}


def test_the_matrix_covers_every_scripted_fault():
    assert set(MATRIX) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(MATRIX))
async def test_fault_outcome(fault):
    outcome, says, text, n_requests = MATRIX[fault]
    evs, took, srv = await call(fault)
    last = evs[-1]
    assert len(srv.requests) == n_requests
    assert took < 5.0  # every stall ends within its own limits (0.5-0.6 s per attempt here)
    assert sum(isinstance(e, ModelCallFinished | ErrorEvent) for e in evs) == 1
    if outcome == "ok":
        assert isinstance(last, ModelCallFinished) and last.message.content == text
        return
    assert isinstance(last, ErrorEvent), last
    assert last.error_type == outcome and says in last.message, last.message
    assert "sk-fault-secret" not in last.message
    if text is None:
        assert last.partial is None
    else:  # everything that arrived is kept, and is what was shown live
        assert last.partial is not None and last.partial.content == text == streamed_text(evs)


async def test_retry_after_is_honoured_never_earlier():
    evs, _, srv = await call("rate_limited")
    assert isinstance(evs[-1], ModelCallFinished)
    assert srv.times[1] - srv.times[0] >= 1.0  # Retry-After: 1


async def test_html_error_names_the_fix_without_markup():
    evs, _, _ = await call("html_from_proxy")
    msg = evs[-1].message
    assert "proxy" in msg and "base_url" in msg and "/v1" in msg and "<center>" not in msg and "<html" not in msg


@pytest.mark.parametrize("fault", sorted(MATRIX))
async def test_fault_as_stored_by_a_run(fault, tmp_path):
    """The same faults through the Interleaved engine into the SQLite store: a damaged or failed
    call is never an `ok` run, and what arrived is in the stored events."""
    outcome, says, text, _ = MATRIX[fault]
    store = RunStore(tmp_path / "runs.db")
    async with MockOpenAIServer(lambda p, n: FAULTS[fault](n)) as srv:
        m = faulty_model(srv.base_url)
        res = await runs.run(Interleaved(m, thinking="off"), "What is the answer?", store=store, session="s")
        await m.aclose()
    run = store.runs(session="s")[0]
    events = store.events(run["id"])
    assert isinstance(events[-1], RunFinished) and events[-1].status == run["status"] == res.status
    if outcome == "ok":
        assert run["status"] == "ok" and run["answer"] == text
        return
    assert res.metrics.damaged_streams == (1 if outcome == "StreamDamaged" else 0)
    assert run["status"] == "error"
    assert f"({outcome})" in run["reason"] and says in run["reason"], run["reason"]
    stored_err = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(stored_err) == 1 and stored_err[0].error_type == outcome
    if text is not None:
        assert stored_err[0].partial is not None and stored_err[0].partial.content == text
