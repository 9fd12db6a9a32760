"""Preserved reasoning, on vs off, on the embedded model: what each follow-up turn costs.

A multi-turn session (one Interleaved engine, thinking on, the calculator tool) is run
twice from scratch: with `preserve_reasoning=True` and with `False`. For every follow-up
turn we report, summed over that turn's model calls:

* TTFT of the turn's first call (s),
* prompt tokens, and prompt tokens *re-processed* (prompt - reused KV prefix),
* reasoning tokens generated.

llama.cpp keeps the last call's tokens in its KV cache and `Llama.generate` skips the
longest common prefix of the new prompt; the embedded backend reports that prefix as
`Usage.cached_prompt_tokens`, and re-renders earlier turns from the exact text it
generated (`Message.raw`) so the prefix survives from one step to the next.

    .venv/bin/python benchmarks/preserved_reasoning.py [--turns 4] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ponder.core.events import Event, ModelCallFinished
from ponder.engines.interleaved import Interleaved
from ponder.models.base import ChatModel, ChatRequest
from ponder.models.registry import model as get_model

TURNS = [
    "Use the calculator to compute 17*23, then answer with the number.",
    "Now multiply that result by 3 using the calculator.",
    "Add 100 to it with the calculator.",
    "Subtract 7 from it with the calculator.",
    "Divide it by 2 with the calculator.",
    "What was the very first number you computed?",
]


@dataclass
class CallStat:
    prompt: int
    reused: int
    reasoning: int
    ttft: float | None


class CallMeter(ChatModel):
    """A measuring wrapper (not a backend): records each call's figures, then passes events on."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.spec = inner.spec
        self.calls: list[CallStat] = []

    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        async for ev in self.inner.stream(request, agent=agent):
            if isinstance(ev, ModelCallFinished):
                u = ev.usage
                self.calls.append(CallStat(u.prompt_tokens, u.cached_prompt_tokens, u.reasoning_tokens, ev.ttft_s))
            yield ev


@dataclass
class TurnStat:
    ttft: float | None
    prompt: int
    reprocessed: int
    reasoning: int
    calls: int
    status: str
    reason: str | None = None


@dataclass
class Condition:
    preserve: bool
    turns: list[TurnStat] = field(default_factory=list)


async def run_condition(preserve: bool, turns: list[str], max_tokens: int) -> Condition:
    from ponder.tools import named_tools

    inner = get_model("smollm2", temperature=0.0, max_tokens=max_tokens)
    meter = CallMeter(inner)
    # first_tool_choice="required": each turn starts with a calculator call, so every turn has a
    # tool-call step whose reasoning the backend can (or, with preservation off, cannot) send back
    eng = Interleaved(meter, named_tools(["calculator"]), thinking="on", preserve_reasoning=preserve,
                      first_tool_choice="required")
    eng.budgets.max_steps = 4
    cond = Condition(preserve)
    for task in turns:
        before = len(meter.calls)
        res = await eng.run(task)
        calls = meter.calls[before:]
        cond.turns.append(TurnStat(
            ttft=calls[0].ttft if calls else None,
            prompt=sum(c.prompt for c in calls),
            reprocessed=sum(c.prompt - c.reused for c in calls),
            reasoning=sum(c.reasoning for c in calls),
            calls=len(calls),
            status=res.status,
            reason=res.reason,
        ))
        if res.status != "ok":
            print(f"  [preserve={'on' if preserve else 'off'}] turn {len(cond.turns)}: {res.status}: {res.reason}", flush=True)
    return cond


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def report(on: Condition, off: Condition) -> None:
    print(f"{'turn':>4} | {'preserve':>8} | {'calls':>5} | {'TTFT ms':>8} | {'prompt':>6} | {'re-processed':>12} | {'reasoning':>9} | status")
    for i in range(1, len(on.turns)):
        for c in (on, off):
            t = c.turns[i]
            ttft = f"{t.ttft * 1000:.0f}" if t.ttft is not None else "-"
            print(f"{i + 1:>4} | {'on' if c.preserve else 'off':>8} | {t.calls:>5} | {ttft:>8} | {t.prompt:>6} | "
                  f"{t.reprocessed:>12} | {t.reasoning:>9} | {t.status}")
    fu_on, fu_off = on.turns[1:], off.turns[1:]

    def med_ttft(ts: list[TurnStat]) -> float:
        vals = [t.ttft for t in ts if t.ttft is not None]
        return statistics.median(vals) if vals else 0.0

    print("\nfollow-up turns, on/off ratio:")
    print(f"  median TTFT            on {med_ttft(fu_on) * 1000:.0f} ms  off {med_ttft(fu_off) * 1000:.0f} ms  "
          f"ratio {_ratio(med_ttft(fu_on), med_ttft(fu_off))}")
    for label, key in (("prompt tokens", "prompt"), ("re-processed tokens", "reprocessed"), ("reasoning tokens", "reasoning")):
        a = sum(getattr(t, key) for t in fu_on)
        b = sum(getattr(t, key) for t in fu_off)
        print(f"  {label:<22} on {a:>6}  off {b:>6}  ratio {_ratio(a, b)}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=4, help="turns per session (first turn + follow-ups), max 6")
    ap.add_argument("--max-tokens", type=int, default=256, help="max tokens per model call")
    args = ap.parse_args()
    turns = TURNS[: max(2, min(args.turns, len(TURNS)))]
    t0 = time.perf_counter()
    on = await run_condition(True, turns, args.max_tokens)
    off = await run_condition(False, turns, args.max_tokens)
    print(f"embedded smollm2, thinking on, greedy, {len(turns)} turns per session ({time.perf_counter() - t0:.1f} s)\n")
    report(on, off)


if __name__ == "__main__":
    asyncio.run(main())
