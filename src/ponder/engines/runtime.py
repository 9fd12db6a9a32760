"""The run lifecycle, written once for every engine.

`run_into(engine, task, sink)` is the one place that gives a run its id and first event
(`RunStarted`), arms the wall clock and the caller's cancel, enforces the run-wide token
and cost limits, turns whatever happened into exactly one `RunFinished` with typed
`RunMetrics`, and hands every event to `sink` the moment it happens. `stream()` and `run()`
are thin wrappers. Engines only implement `drive` and `conclude` (see `engines/base.py`).

Stops cost nothing until they fire: the wall clock is a timer handle and the caller's
cancel one waiter task; either stops the run by cancelling the task that drives it (then
un-cancelling it), so the engine cleans up in its own `finally` blocks exactly as for any
cancellation. A cancellation from outside is propagated, as asyncio expects.

Persistence is not here: a journal is just another reader of the stream (a sink), added
by the entry points (`ponder.runs`). The only thing the runtime offers it is `checkpoint`,
a barrier the agent loop calls before a tool that must not run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.events import BudgetHit, Event, ModelCallFinished, RunFinished, RunStarted
from ..core.metrics import RunMetrics
from ..core.telemetry import RunTelemetry
from .base import Budgets, Engine, Outcome, RunResult, check_answer

if TYPE_CHECKING:
    from .replay import RunReplay

Sink = Callable[[Event], Any]


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def _no_checkpoint() -> None:
    return None


@dataclass(eq=False)
class RunContext:
    """What an engine's `drive` gets: where events go, the run's budgets and spend, and (on
    resume) the journal's replay. One per run; a swarm's agents share it."""

    run_id: str
    budgets: Budgets
    emit: Sink = field(repr=False, default=print)
    telemetry: RunTelemetry = field(default_factory=RunTelemetry)
    checkpoint: Callable[[], None] = field(repr=False, default=_no_checkpoint)
    replay: RunReplay | None = None
    options: dict[str, Any] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)
    prior_wall_s: float = 0.0  # active time of earlier attempts (resume)
    attempt: int = 0
    last_content: str | None = None  # the main agent's latest text: the answer when a stop cuts the run
    stop_reason: str | None = None  # set (before the cancel) when the runtime stops the run
    state: Any = None  # the engine's per-run state

    def spend_exceeded(self) -> BudgetHit | None:
        """A `BudgetHit` (not yet emitted) when the run's token or cost limit is reached."""
        b, t = self.budgets, self.telemetry
        if b.max_tokens is not None and t.usage.total_tokens >= b.max_tokens:
            return BudgetHit(budget="max_tokens", limit=b.max_tokens, value=t.usage.total_tokens)
        if b.max_cost_usd is not None and t.cost_usd >= b.max_cost_usd:
            return BudgetHit(budget="max_cost_usd", limit=b.max_cost_usd, value=round(t.cost_usd, 8))
        return None

    def elapsed(self) -> float:
        return self.prior_wall_s + (time.monotonic() - self.t0)

    def base_metrics(self, **fields: Any) -> RunMetrics:
        """The figures every engine reports, from the stream alone, plus the engine's own."""
        t = self.telemetry
        base: dict[str, Any] = dict(
            tool_calls=t.tool_calls, tool_errors=t.tool_errors, model_calls=t.model_calls,
            model_errors=t.model_errors, damaged_streams=t.damaged_streams, usage=copy.copy(t.usage),
            cost_usd=t.cost_usd, ttft_first_s=t.ttfts[0] if t.ttfts else None,
            ttft_median_s=statistics.median(t.ttfts) if t.ttfts else None,
            decode_tps_median=statistics.median(t.decode_tps) if t.decode_tps else None,
            wall_s=round(self.elapsed(), 4), attempts=self.attempt + 1,
        )
        base.update(fields)
        # model_construct: the figures are typed already; fresh dicts, never shared between runs
        return RunMetrics.model_construct(**{**_METRIC_DEFAULTS, "rewards": {}, "extra": {}, **base})


_METRIC_DEFAULTS = {k: v for k, v in RunMetrics().__dict__.items() if k not in ("usage", "rewards", "extra")}


class _Stop:
    __slots__ = ("status", "reason", "hit")

    def __init__(self, status: str, reason: str, hit: BudgetHit | None):
        self.status, self.reason, self.hit = status, reason, hit


async def run_into(
    engine: Engine,
    task: str,
    sink: Sink,
    *,
    cancel: asyncio.Event | None = None,
    run_id: str | None = None,
    replay: RunReplay | None = None,
    checkpoint: Callable[[], None] | None = None,
    **options: Any,
) -> RunFinished:
    """Run one turn of `engine` in the caller's task, handing every event to `sink` as it
    happens (`RunStarted` first, `RunFinished` last), and return the `RunFinished`.

    Why in the caller's task: a swarm makes thousands of events a second, and an event that
    crosses a queue and a task switch costs several times one that is a function call."""
    if not isinstance(task, str) or not task.strip():
        raise ValueError("the task is empty: give the question as text (or --file PATH, or - to read stdin)")
    check = getattr(engine, "check_options", None)
    if check is not None:
        check(options)
    me = asyncio.current_task()
    if me is None:  # pragma: no cover - always inside a task under asyncio.run
        raise RuntimeError("run_into must run inside an asyncio task")
    loop = asyncio.get_running_loop()
    budgets = engine.budgets
    ctx = RunContext(run_id=run_id or (replay.run_id if replay else None) or new_run_id(), budgets=budgets,
                     checkpoint=checkpoint or _no_checkpoint, replay=replay, options=options)
    if replay is not None:
        ctx.telemetry = replay.telemetry
        ctx.prior_wall_s = replay.wall_s
        ctx.attempt = replay.attempts
        ctx.last_content = replay.last_content
    observe = ctx.telemetry.observe
    stop: list[_Stop] = []
    done = False

    def halt(status: str, reason: str, hit: BudgetHit | None = None) -> None:
        if not done and not stop:
            stop.append(_Stop(status, reason, hit))
            ctx.stop_reason = reason
            me.cancel()

    if getattr(engine, "hard_spend_limits", False) and (budgets.max_tokens is not None or budgets.max_cost_usd is not None):
        def emit(ev: Event) -> None:
            observe(ev)
            sink(ev)
            if type(ev) is ModelCallFinished and (hit := ctx.spend_exceeded()) is not None:
                hit.agent = engine.main_agent
                halt("budget", f"{hit.budget} budget reached ({hit.value:g} of {hit.limit:g})", hit)
    else:
        def emit(ev: Event) -> None:
            observe(ev)
            sink(ev)
    ctx.emit = emit

    emit(RunStarted(run_id=ctx.run_id, mode=engine.mode, task=task, model=engine.describe().get("model"),
                    config=engine.describe(), attempt=ctx.attempt, agent=engine.main_agent))
    timer = None
    if budgets.wall_timeout_s is not None:
        limit = budgets.wall_timeout_s
        timer = loop.call_later(max(0.0, limit - ctx.prior_wall_s), lambda: halt(
            "budget", f"wall-clock budget reached (wall_timeout_s = {limit:g}s)",
            BudgetHit(budget="wall_timeout_s", limit=limit, value=round(ctx.elapsed(), 3), agent=engine.main_agent)))
    watcher = None
    if cancel is not None:
        watcher = loop.create_task(cancel.wait())
        watcher.add_done_callback(lambda t: None if t.cancelled() else halt("cancelled", "cancelled by the caller"))
    try:
        try:
            outcome = await engine.drive(task, ctx)
            if stop:  # a stop came as the engine was finishing: take in the cancel it requested
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    if me.uncancel() > 0:
                        raise
                s = stop[0]
                if s.hit is not None:
                    sink(s.hit)
                outcome = Outcome(s.status, outcome.answer or ctx.last_content, s.reason)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            if not stop or me.uncancel() > 0:
                raise  # cancelled from outside (perhaps as well): not ours to swallow
            s = stop[0]
            if s.hit is not None:
                sink(s.hit)
            outcome = Outcome(s.status, ctx.last_content, s.reason)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - an engine bug must still end the run cleanly
            outcome = Outcome("error", ctx.last_content, f"engine error: {type(e).__name__}: {e}")
        done = True
        try:
            outcome, metrics = await engine.conclude(ctx, outcome)
            if getattr(engine, "checks_answer", False):  # agents (not a pass-through call)
                outcome = check_answer(outcome)
        except Exception as e:  # noqa: BLE001
            outcome, metrics = Outcome("error", outcome.answer, f"engine error while concluding: {type(e).__name__}: {e}"), ctx.base_metrics()
        fin = RunFinished(status=outcome.status, answer=outcome.answer, reason=outcome.reason, metrics=metrics,
                          agent=engine.main_agent, run_id=ctx.run_id)
        sink(fin)
        return fin
    finally:
        done = True
        if timer is not None:
            timer.cancel()
        if watcher is not None:
            watcher.cancel()


class _Failed:
    """Carries an exception from `stream()`'s producer task to its consumer."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


async def stream(engine: Engine, task: str, **kw: Any) -> AsyncIterator[Event]:
    """The run's events as they happen, `RunStarted` first and exactly one `RunFinished` last.

    The run goes on in its own task feeding a queue, so the caller consumes at its own pace;
    closing the iterator early cancels the run (the engine cleans up, the conversation stays
    valid)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def produce() -> None:
        try:
            await run_into(engine, task, queue.put_nowait, **kw)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # e.g. a bad argument: surface it to the consumer
            queue.put_nowait(_Failed(e))

    producer = asyncio.get_running_loop().create_task(produce(), name=f"ponder-{engine.mode}")
    try:
        while True:
            item = await queue.get()
            if type(item) is _Failed:
                raise item.exc
            yield item
            if type(item) is RunFinished:
                break
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer


async def run(engine: Engine, task: str, **kw: Any) -> RunResult:
    """Run to the end; the answer, metrics and every event. Events go straight into the
    result's list (no queue)."""
    events: list[Event] = []
    fin = await run_into(engine, task, events.append, **kw)
    # model_construct: every part is already typed; a validating constructor would re-check
    # thousands of events one by one
    return RunResult.model_construct(answer=fin.answer, status=fin.status, reason=fin.reason, run_id=fin.run_id,
                                     metrics=fin.metrics, events=events, messages=list(engine.history()))


class Runnable:
    """`run`, `stream` and `run_into` as methods, for the engines' Python API."""

    async def run(self, task: str, **kw: Any) -> RunResult:
        return await run(self, task, **kw)  # type: ignore[arg-type]

    def stream(self, task: str, **kw: Any) -> AsyncIterator[Event]:
        return stream(self, task, **kw)  # type: ignore[arg-type]

    async def run_into(self, task: str, sink: Sink, **kw: Any) -> RunFinished:
        return await run_into(self, task, sink, **kw)  # type: ignore[arg-type]
