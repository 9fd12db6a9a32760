"""Shared rendering of the event stream for CLI commands (rich), so every command looks alike."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from ..core.events import ContentDelta, ModelCallFinished, ReasoningDelta, event_to_json

T = TypeVar("T")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def metrics_line(ev: ModelCallFinished) -> str:
    u = ev.usage
    parts = [
        f"TTFT {ev.ttft_s * 1000:.0f} ms" if ev.ttft_s is not None else "TTFT -",
        f"{ev.decode_tokens_per_s:.1f} tok/s" if ev.decode_tokens_per_s else "tok/s -",
        f"tokens {u.prompt_tokens} in ({u.cached_prompt_tokens} cached) / {u.completion_tokens} out"
        + (f" ({u.reasoning_tokens} reasoning)" if u.reasoning_tokens else ""),
        f"${ev.cost_usd:.6f}",
        f"{ev.total_s:.2f} s",
    ]
    return " · ".join(parts)


class StreamPrinter:
    """Prints reasoning dimmed and content plainly, as deltas arrive, or JSON lines."""

    def __init__(self, json_out: bool = False):
        self.json_out = json_out
        self._in_reasoning = False

    def __call__(self, ev: object) -> None:
        if self.json_out:
            sys.stdout.write(event_to_json(ev) + "\n")  # type: ignore[arg-type]
            sys.stdout.flush()
            return
        if isinstance(ev, ReasoningDelta):
            if not self._in_reasoning:
                self._in_reasoning = True
            console.print(ev.text, style="dim", end="", soft_wrap=True)
        elif isinstance(ev, ContentDelta):
            if self._in_reasoning:
                console.print()
                self._in_reasoning = False
            console.print(ev.text, end="", soft_wrap=True, markup=False)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, closing the pooled HTTP sessions before the loop ends (no 'Unclosed
    client session' noise at exit)."""
    from ..models.openai_compat import close_clients

    async def main() -> T:
        try:
            return await coro
        finally:
            await close_clients()

    return asyncio.run(main())
