"""Journaled runs: what every entry point calls to run, stream or resume a task.

The composition root of the run lifecycle: `build_engine` (engines) + the runtime
(engines) + a `Journal` (core) in front of the caller's consumer. The CLI, `ponder serve`,
`ponder compare` and the Python API (`ponder.run`, `ponder.resume`) all come through here,
so every run is in the store from its first event, and any run whose process died can be
continued with `resume(run_id)`. Engines import no store; this module is the only place
where the two meet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from .core.errors import ConfigError
from .core.events import Event, RunFinished
from .core.journal import Journal
from .core.store import RunStore
from .engines.base import Engine, RunResult
from .engines.build import EngineConfig, build_engine
from .engines.replay import ReplayError, replay
from .engines.runtime import run_into

Sink = Callable[[Event], Any]
Target = Engine | EngineConfig | dict[str, Any]

__all__ = ["Recorder", "ResumeError", "execute", "open_store", "recording", "resume", "resume_into", "run", "stream",
           "stream_resume"]

RESUMABLE = ("interrupted",)


class ResumeError(ConfigError):
    """The run cannot be resumed (unknown, still running, already finished, unreadable)."""


def open_store(store: RunStore | None = None, db: str | Path | None = None) -> RunStore:
    return store if store is not None else RunStore(db)


def _engine(target: Target, model_factory: Any = None) -> Engine:
    if isinstance(target, EngineConfig | dict):
        return build_engine(target, model_factory=model_factory)
    return target


def _with_session(engine: Engine, store: RunStore, session: str | None) -> None:
    if session is None:
        return
    if engine.mode != "interleaved":
        raise ConfigError(f"--session continues an interleaved conversation; the {engine.mode} mode has none. "
                          "Drop --session, or use --mode interleaved")
    engine.messages = store.load_messages(session)  # type: ignore[attr-defined]


async def execute(target: Target, task: str, sink: Sink, *, store: RunStore | None = None, db: str | Path | None = None,
                  session: str | None = None, cancel: asyncio.Event | None = None, run_id: str | None = None,
                  model_factory: Any = None, **options: Any) -> RunFinished:
    """Run `task` to its end, journaled, handing every event to `sink` as it happens."""
    engine = _engine(target, model_factory)
    st = open_store(store, db)
    try:
        _with_session(engine, st, session)
        journal = Journal(st, session=session)

        def tee(ev: Event) -> None:
            journal(ev)
            sink(ev)

        try:
            return await run_into(engine, task, tee, cancel=cancel, run_id=run_id, checkpoint=journal.checkpoint,
                                  **options)
        finally:
            journal.close()
    finally:
        if store is None:
            st.close()


async def resume_into(run_id: str, sink: Sink, *, store: RunStore | None = None, db: str | Path | None = None,
                      engine: Engine | None = None, cancel: asyncio.Event | None = None, model_factory: Any = None,
                      **options: Any) -> RunFinished:
    """Continue an interrupted run from its journal (same run id, sequence numbers continue).
    `engine` replaces the one rebuilt from the journaled configuration (the Python API's
    custom tools and models cannot be rebuilt from a name)."""
    st = open_store(store, db)
    try:
        try:
            row = st.run(run_id)
        except KeyError as e:
            raise ResumeError(str(e.args[0])) from None
        if row["status"] not in RESUMABLE:
            hint = ("it is still running in another process" if row["status"] == "running"
                    else f"it already ended with status {row['status']!r}")
            raise ResumeError(f"run {row['id']} cannot be resumed: {hint}. `ponder runs` lists runs and their status")
        try:
            rr = replay(st.events(row["id"]))
        except (ReplayError, ValueError) as e:
            raise ResumeError(f"run {row['id']} cannot be resumed: {e}") from None
        if engine is None:
            if not rr.config or "mode" not in rr.config:
                raise ResumeError(f"run {row['id']} has no stored engine configuration; pass engine= to resume it")
            try:
                engine = build_engine(rr.config, model_factory=model_factory)
            except ValueError as e:
                raise ResumeError(f"run {row['id']}: its stored configuration no longer builds: {e}") from None
        _with_session(engine, st, row["session"])
        journal = Journal(st, session=row["session"])

        def tee(ev: Event) -> None:
            journal(ev)
            sink(ev)

        try:
            return await run_into(engine, rr.task, tee, cancel=cancel, replay=rr, checkpoint=journal.checkpoint,
                                  **options)
        finally:
            journal.close()
    finally:
        if store is None:
            st.close()


class Recorder:
    """A sink that journals a run driven in another process (a cluster host streams its events
    here, in order), then hands each event on. `checkpoint()` is the journal's barrier."""

    __slots__ = ("journal", "sink")

    def __init__(self, journal: Journal, sink: Sink):
        self.journal, self.sink = journal, sink

    def __call__(self, ev: Event) -> None:
        self.journal(ev)
        self.sink(ev)

    def checkpoint(self) -> None:
        self.journal.checkpoint()


@contextlib.contextmanager
def recording(sink: Sink, *, store: RunStore | None = None, db: str | Path | None = None) -> Iterator[Recorder]:
    """Journal a run whose engine runs elsewhere: the same `Journal` as `execute` (the run row
    from its first event; a run whose `RunFinished` never came is marked `interrupted`)."""
    st = open_store(store, db)
    journal = Journal(st)
    try:
        yield Recorder(journal, sink)
    finally:
        journal.close()
        if store is None:
            st.close()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


async def _as_stream(start: Callable[[Sink], Any]) -> AsyncIterator[Event]:
    """Events of a sink-based run as an async iterator (the run in its own task; closing the
    iterator cancels it, and the journal marks it interrupted)."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    async def produce() -> None:
        try:
            await start(queue.put_nowait)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - surfaced to the consumer
            queue.put_nowait(_Failed(e))
        finally:
            queue.put_nowait(done)

    producer = asyncio.get_running_loop().create_task(produce(), name="ponder-run")
    try:
        while True:
            item = await queue.get()
            if item is done:
                break
            if type(item) is _Failed:
                raise item.exc
            yield item
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer


def stream(target: Target, task: str, **kw: Any) -> AsyncIterator[Event]:
    """`execute` as an async iterator of events (`RunStarted` first, `RunFinished` last)."""
    return _as_stream(lambda sink: execute(target, task, sink, **kw))


def stream_resume(run_id: str, **kw: Any) -> AsyncIterator[Event]:
    return _as_stream(lambda sink: resume_into(run_id, sink, **kw))


async def _collect(start: Callable[[Sink], Any], engine_messages: Callable[[], list[Any]] | None = None) -> RunResult:
    events: list[Event] = []
    fin: RunFinished = await start(events.append)
    return RunResult.model_construct(answer=fin.answer, status=fin.status, reason=fin.reason, run_id=fin.run_id,
                                     metrics=fin.metrics, events=events,
                                     messages=engine_messages() if engine_messages else [])


async def run(target: Target, task: str, **kw: Any) -> RunResult:
    """Run a task journaled in the run store (default `$PONDER_HOME/ponder.db`) and return
    its answer, metrics and events: `await ponder.run(EngineConfig(mode="swarm", model="glm-4.7"), "...")`."""
    engine = _engine(target, kw.pop("model_factory", None))
    return await _collect(lambda sink: execute(engine, task, sink, **kw), engine.history)


async def resume(run_id: str, **kw: Any) -> RunResult:
    """Continue an interrupted run from its journal: `await ponder.resume("3f2c…")`."""
    return await _collect(lambda sink: resume_into(run_id, sink, **kw))
