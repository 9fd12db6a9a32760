"""Stored runs for the viewer tests, made with the scripted test doubles through `ponder.runs.execute`.

The demo swarm: the orchestrator plans four sub-agents, waits for all, and finishes.

* `a` looks a fact up, writes it to shared memory, then answers (2 steps);
* `b` depends on `a` and answers (1 step);
* `c` calls the `python` test double twice in one step: `import os` (rejected by the
  verify-before-execute policy) and `print(6*7)` (passes), then answers (2 steps);
* `d` keeps calling `lookup` until the sub-agents' 2-step budget stops it (status budget).

Critical path (engines/swarm/metrics.py): O1 -> a (2) -> b (1) -> O3, length 5; O2 (the
wait), c and d are off it (c and d: 1 + 2 = 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.engines.test_swarm import call, is_orchestrator, orch_turn, sub_name, subtask
from tests.server.helpers import serve_app

from ponder import runs
from ponder.core.events import ContentDelta, Event, ReasoningDelta, RunFinished
from ponder.engines.base import Budgets
from ponder.engines.interleaved import Interleaved
from ponder.engines.swarm import Swarm
from ponder.models.base import ChatRequest
from ponder.server import create_app
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool

CRITICAL_AGENTS = {"a", "b"}
CRITICAL_ORCH_STEPS = {1, 3}
SUB_AGENTS = ("a", "b", "c", "d")
REASONING_A = "I need the population of Orvan first; look it up and note it for the others."


@tool
def lookup(q: str) -> str:
    """Look a fact up (a test double: canned answers)."""
    return f"fact: {q} is 48,200" if "orvan" in q.lower() else f"fact: nothing about {q}"


@tool(name="python")
def fake_python(code: str) -> str:
    """Run Python code (a test double named python: the loop verifies its code, it never runs it)."""
    return "42"


@dataclass
class PacedModel(ScriptedModel):
    """A scripted test-double model whose calls take time: `delay_s` of each reply before the
    first token (the TTFT), then `decode_s` before the call ends (decode), so bars have both
    shades. `gate`, when given, holds the first call until the test sets it."""

    decode_s: float = 0.0
    gate: threading.Event | None = None
    _gated: bool = field(default=False, repr=False)

    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        if self.gate is not None and not self._gated:
            await asyncio.to_thread(self.gate.wait, 30)
            self._gated = True
        first = True
        async for ev in super().stream(request, agent=agent):
            yield ev
            if first and isinstance(ev, ReasoningDelta | ContentDelta):
                first = False
                await asyncio.sleep(self.decode_s)


def _turns(req: ChatRequest) -> int:
    return sum(1 for m in req.messages if m.role == "assistant")


def demo_script(delay: float = 0.02) -> Any:
    plan = [subtask("a", "find the population of Orvan", tools=["lookup", "memory_write"]),
            {**subtask("b", "double the population a found", depends_on=["a"]), "tools": ["memory_read"]},
            subtask("c", "compute six times seven", tools=["python"]),
            subtask("d", "look up everything about Vellmora", tools=["lookup"])]

    def orch(req: ChatRequest, n: int) -> Reply:
        t = orch_turn(req)
        if t == 0:
            return Reply(reasoning="Split it: a finds the figure, b doubles it, c and d work on their own.",
                         tool_calls=[call("plan", subtasks=plan)], delay_s=delay)
        if t == 1:
            return Reply(reasoning="Wait for all four.", tool_calls=[call("wait", task_ids=[], mode="all")], delay_s=delay)
        return Reply(reasoning="All in; b has the doubled figure.", tool_calls=[call("finish", answer="96,400 [a] [b]")],
                     delay_s=delay)

    def sub(req: ChatRequest, n: int) -> Reply:
        name, t = sub_name(req), _turns(req)
        if name == "a":
            if t == 0:
                return Reply(reasoning=REASONING_A, tool_calls=[call("lookup", q="Orvan population"),
                                                                call("memory_write", key="orvan.population", value="48,200")],
                             delay_s=delay)
            return Reply(reasoning="The lookup answered.", content="Orvan has 48,200 people.", delay_s=delay)
        if name == "b":
            return Reply(reasoning="a found 48,200; twice that is 96,400.", content="96,400", delay_s=delay)
        if name == "c":
            if t == 0:
                return Reply(reasoning="Try the os module first, then plain arithmetic.",
                             tool_calls=[call("python", code="import os\nprint(os.getcwd())"),
                                         call("python", code="print(6*7)")], delay_s=delay)
            return Reply(reasoning="The second one ran: 42.", content="42", delay_s=delay)
        return Reply(reasoning="Keep looking.", tool_calls=[call("lookup", q=f"Vellmora part {t}")], delay_s=delay)

    return lambda req, n: orch(req, n) if is_orchestrator(req) else sub(req, n)


def demo_swarm(delay: float = 0.02, decode: float = 0.01, gate: threading.Event | None = None) -> Swarm:
    model = PacedModel(demo_script(delay), decode_s=decode, gate=gate, price_output=2.0)
    return Swarm(model, [lookup, fake_python], sub_budgets=Budgets(max_steps=2))


async def store_demo_swarm(db: Any, *, run_id: str | None = None, delay: float = 0.02, decode: float = 0.01,
                           gate: threading.Event | None = None) -> RunFinished:
    return await runs.execute(demo_swarm(delay, decode, gate), "What is twice the population of Orvan?",
                              lambda ev: None, db=db, run_id=run_id)


async def store_interleaved(db: Any, *, error: bool = False, run_id: str | None = None) -> RunFinished:
    script = [Reply(reasoning="Add them with the tool.", tool_calls=[("lookup", {"q": "Orvan"})], delay_s=0.01),
              Reply(reasoning="The tool answered.", content="48,200" if not error else None,
                    error="upstream broke" if error else None, delay_s=0.01)]
    eng = Interleaved(PacedModel(script, decode_s=0.005), [lookup])
    return await runs.execute(eng, "How many people live in Orvan?" if not error else "A run that fails",
                              lambda ev: None, db=db, run_id=run_id)


def run_sync(coro_fn: Any) -> Any:
    """`asyncio.run` in a thread of its own: works where a loop already runs (Playwright's)."""
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["value"] = asyncio.run(coro_fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            out["error"] = e

    t = threading.Thread(target=main)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def run_in_thread(coro_fn: Any) -> threading.Thread:
    """Run a coroutine in its own thread and event loop (a writer beside the server's loop)."""
    t = threading.Thread(target=lambda: asyncio.run(coro_fn()), daemon=True)
    t.start()
    return t


@contextlib.contextmanager
def serve(db: Any) -> Iterator[str]:
    """`create_app(db=...)` served by uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    with serve_app(create_app(db=db)) as url:
        yield url


def wait_for_row(db: Any, run_id: str, events: int = 1, timeout_s: float = 30.0) -> None:
    """Until the run has `events` journal rows (its row exists from the first)."""
    from pathlib import Path

    from ponder.core.store import RunStore

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if Path(db).exists():
            with RunStore(db) as s:
                if len(s.event_rows(run_id)) >= events:
                    return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached the store")
