"""Interleaved engine: every budget, the caller's cancel and task cancellation end a run cleanly."""

from __future__ import annotations

import asyncio
import time

import pytest

from ponder.core.events import BudgetHit, RunFinished
from ponder.core.messages import Usage
from ponder.engines.base import Budgets
from ponder.engines.interleaved import Interleaved
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _forever(**kw) -> ScriptedModel:
    """A model that never answers: it always calls another tool."""
    return ScriptedModel(lambda req, n: Reply(reasoning=f"step {n}", content=f"partial {n}",
                                              tool_calls=[("add", {"a": n, "b": 1})], **kw))


def _assert_clean_budget_end(res, budget: str) -> None:
    assert res.status == "budget", res.reason
    assert isinstance(res.events[-1], RunFinished)
    assert sum(isinstance(e, RunFinished) for e in res.events) == 1
    hits = [e for e in res.events if isinstance(e, BudgetHit)]
    assert [h.budget for h in hits] == [budget]
    # every tool call in the conversation has its result (the conversation can be continued)
    calls = {c.id for m in res.messages if m.role == "assistant" for c in m.tool_calls}
    answered = {m.tool_call_id for m in res.messages if m.role == "tool"}
    assert calls == answered


async def test_step_budget():
    res = await Interleaved(_forever(), [add], thinking="on", budgets=Budgets(max_steps=3)).run("loop")
    _assert_clean_budget_end(res, "max_steps")
    assert res.metrics.steps == 3 and "3 steps" in res.reason
    assert res.answer == "partial 2"  # the last content so far


async def test_tool_call_budget_answers_unrun_calls():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2})]))
    res = await Interleaved(m, [add], thinking="on", budgets=Budgets(max_tool_calls=3)).run("loop")
    _assert_clean_budget_end(res, "max_tool_calls")
    assert res.metrics.tool_calls == 3  # two in step 1, one of two in step 2
    not_run = [x for x in res.messages if x.role == "tool" and "not run" in (x.content or "")]
    assert len(not_run) == 1


async def test_token_budget():
    m = _forever(usage=Usage(prompt_tokens=400, completion_tokens=100))
    res = await Interleaved(m, [add], thinking="on", budgets=Budgets(max_tokens=1200)).run("loop")
    _assert_clean_budget_end(res, "max_tokens")
    assert res.metrics.usage.total_tokens >= 1200 and res.metrics.model_calls == 3


async def test_cost_budget():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 1})],
                                           usage=Usage(prompt_tokens=10, completion_tokens=1000)), price_output=10.0)
    res = await Interleaved(m, [add], thinking="on", budgets=Budgets(max_cost_usd=0.025)).run("loop")
    _assert_clean_budget_end(res, "max_cost_usd")
    assert res.metrics.cost_usd == pytest.approx(0.03)  # 3 calls at $0.01


async def test_wall_timeout_stops_a_hanging_model_call():
    m = ScriptedModel([Reply(reasoning="r", content="partial", tool_calls=[("add", {"a": 1, "b": 1})]),
                       Reply(reasoning="slow", content="late", delay_s=30)])
    t0 = time.monotonic()
    res = await Interleaved(m, [add], thinking="on", budgets=Budgets(wall_timeout_s=0.5)).run("go")
    assert time.monotonic() - t0 < 3
    _assert_clean_budget_end(res, "wall_timeout_s")
    assert res.answer == "partial" and "0.5s" in res.reason


async def test_wall_timeout_stops_a_hanging_tool_and_answers_its_call():
    @tool
    async def hang() -> str:
        """Never returns in time."""
        await asyncio.sleep(30)
        return "never"

    m = ScriptedModel([Reply(reasoning="r", tool_calls=[("hang", {})])])
    res = await Interleaved(m, [hang], thinking="on", budgets=Budgets(wall_timeout_s=0.4)).run("go")
    _assert_clean_budget_end(res, "wall_timeout_s")
    assert "not run" in res.messages[-1].content


async def test_cancel_event_from_the_caller():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 1})], delay_s=0.05))
    cancel = asyncio.Event()
    eng = Interleaved(m, [add], thinking="on", budgets=Budgets(max_steps=1000))

    async def stop_soon() -> None:
        await asyncio.sleep(0.3)
        cancel.set()

    stopper = asyncio.create_task(stop_soon())
    res = await eng.run("loop", cancel=cancel)
    await stopper
    assert res.status == "cancelled" and res.reason == "cancelled by the caller"
    assert isinstance(res.events[-1], RunFinished) and 1 <= res.metrics.steps < 100
    calls = {c.id for x in res.messages if x.role == "assistant" for c in x.tool_calls}
    assert calls == {x.tool_call_id for x in res.messages if x.role == "tool"}


async def test_task_cancellation_propagates_and_leaves_a_valid_conversation():
    @tool
    async def hang() -> str:
        """Never returns in time."""
        await asyncio.sleep(30)
        return "never"

    m = ScriptedModel([Reply(reasoning="r", tool_calls=[("hang", {})])])
    eng = Interleaved(m, [hang], thinking="on")
    task = asyncio.create_task(eng.run("go"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert eng.messages[-1].role == "tool" and "not run" in eng.messages[-1].content


async def test_cancel_already_set_ends_before_any_tool_runs():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 1})], delay_s=0.05))
    cancel = asyncio.Event()
    cancel.set()
    res = await Interleaved(m, [add], thinking="on").run("loop", cancel=cancel)
    assert res.status == "cancelled" and res.metrics.tool_calls == 0


async def test_consumer_stopping_early_stops_the_work():
    m = ScriptedModel(lambda req, n: Reply(reasoning="r", tool_calls=[("add", {"a": 1, "b": 1})], delay_s=0.02))
    eng = Interleaved(m, [add], thinking="on", budgets=Budgets(max_steps=10_000))
    agen = eng.stream("loop")
    seen = 0
    async for _ in agen:
        seen += 1
        if seen == 5:
            break
    await agen.aclose()
    calls = len(m.requests)
    await asyncio.sleep(0.2)
    assert len(m.requests) == calls  # nothing keeps running in the background
