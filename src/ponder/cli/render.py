"""The terminal: every command renders the event stream through this one module.

* Model output is text, never markup: it goes out as `rich.text.Text` or straight to the
  file, so `[/]` in a model's reasoning cannot crash the view and `arr[i]` keeps its brackets.
* Rendering is linear in the output: streamed text is written as it comes (no re-wrapping
  of what was already shown) and folded past a cap per call; the answer panel shows the
  head of a huge answer and says where the whole text is (`--json`, the run store).
* `--json` prints only JSON lines on stdout (one event each); messages go to stderr.
* One exit-code map for every command (README "Exit codes").
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..core.events import (
    AgentFinished,
    AgentSpawned,
    BudgetHit,
    ContentDelta,
    ErrorEvent,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    RunStarted,
    StepStarted,
    ToolRecovered,
    ToolResult,
    ToolStarted,
    VerificationEvent,
    event_to_json,
)
from ..core.metrics import RunMetrics
from ..server.discovery import viewer_url

T = TypeVar("T")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# ---- exit codes ---------------------------------------------------------------------------
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUDGET, EXIT_CANCELLED = 0, 1, 2, 3, 130
_EXIT = {"ok": EXIT_OK, "error": EXIT_ERROR, "budget": EXIT_BUDGET, "cancelled": EXIT_CANCELLED}


def exit_code(status: str | None) -> int:
    """ok 0 · error 1 · bad input or configuration 2 · budget reached 3 · cancelled 130."""
    return _EXIT.get(status or "error", EXIT_ERROR)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` on stderr (as text, whatever it contains; one line, never
    re-wrapped, so logs and `grep` see it whole) and return the Exit to raise."""
    err_console.print(Text.assemble(("error: ", "bold red"), str(message)), soft_wrap=True)
    return typer.Exit(code)


def note(message: str, style: str = "yellow") -> None:
    err_console.print(Text(message, style=style), soft_wrap=True)


# ---- folding --------------------------------------------------------------------------------
PANEL_CHARS = 20_000  # the most of an answer or tool text shown in a panel
STREAM_CHARS = 200_000  # the most of one call's streamed text echoed live


def fold(text: str, limit: int, where: str = "the whole text is in the run store and in --json output") -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit:,} more characters folded: {where}]"


class _Echo:
    """Streamed text written straight to the terminal: linear, no markup, dim reasoning."""

    def __init__(self, out: Console):
        self.out = out
        self.file = out.file
        self.ansi = out.is_terminal and not out.no_color
        self.mode: str | None = None
        self.shown = 0
        self.folded = 0

    def write(self, text: str, kind: str) -> None:
        if self.mode != kind:
            self.end()
            self.mode = kind
        room = STREAM_CHARS - self.shown
        if room <= 0:
            self.folded += len(text)
            return
        part = text[:room]
        self.folded += len(text) - len(part)
        self.shown += len(part)
        if self.ansi and kind == "reasoning":
            self.file.write("\x1b[2m" + part + "\x1b[0m")
        else:
            self.file.write(part)

    def end(self) -> None:
        if self.mode is not None:
            if self.folded:
                self.file.write(f"\n… [{self.folded:,} more characters folded]")
            self.file.write("\n")
            self.file.flush()
        self.mode = None
        self.folded = 0

    def call_done(self) -> None:
        self.end()
        self.shown = 0


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


def metrics_text(m: RunMetrics, mode: str = "interleaved") -> str:
    """The run's figures in words, one formatter for every mode."""
    u = m.usage
    lines = [" · ".join([
        f"{m.steps} steps ({m.critical_steps} critical)",
        f"{m.tool_calls} tool calls" + (f" ({m.tool_errors} failed)" if m.tool_errors else ""),
        f"{m.model_calls} model calls" + (f" ({m.model_errors} failed)" if m.model_errors else ""),
        f"tokens {u.prompt_tokens} in / {u.completion_tokens} out ({u.reasoning_tokens} reasoning)",
        f"TTFT {m.ttft_first_s * 1000:.0f} ms" if m.ttft_first_s is not None else "TTFT -",
        f"{m.decode_tps_median:.1f} tok/s" if m.decode_tps_median else "tok/s -",
        f"${m.cost_usd:.6f}",
        f"{m.wall_s:.2f} s" + (f" over {m.attempts} attempts" if m.attempts > 1 else ""),
    ])]
    if m.damaged_streams:
        lines.append(f"{m.damaged_streams} model stream(s) arrived damaged (see the error events)")
    if mode == "swarm":
        collapse = ("yes: sub-agents ran one at a time, no real parallelism" if m.serial_collapse
                    else f"no: up to {m.peak_concurrency} sub-agents ran at once")
        lines.append(f"{m.agents} sub-agents over {m.orchestrator_steps} orchestrator steps · parallelism "
                     f"{m.parallelism if m.parallelism is not None else '-'} (all steps / critical steps)")
        lines.append(f"serial collapse: {collapse} · spurious parallelism: "
                     + (f"{m.spurious_agents} sub-agent(s) added nothing (empty or repeated result)"
                        if m.spurious_agents else "none (every sub-agent added a distinct result)"))
        r = m.rewards
        if r:
            lines.append("PARL rewards: " + ", ".join(filter(None, [
                f"parallel {r.get('r_parallel', 0):.2f} (share of steps kept off the critical path)",
                f"finish {r.get('r_finish', 0):.2f} (share of sub-agents that finished with a distinct result)",
                f"task {r['r_perf']:.2f} (the task's score)" if "r_perf" in r else None,
                f"total {r.get('r_parl', 0):.3f}",
            ])))
        cites = (m.extra or {}).get("citations") or {}
        if cites.get("unknown"):
            lines.append(f"the answer cites unknown agents: {', '.join(cites['unknown'])}")
    else:
        lines.append(f"think-before-act: {m.violations} violations, {m.reasks} re-asks · "
                     f"code verified {m.verifications}, rejected {m.rejections}, fixed {m.fixes}")
    return "\n".join(lines)


# ---- JSON lines -------------------------------------------------------------------------------
class JsonLines:
    """Each event as one JSON line on stdout, nothing else there."""

    def __init__(self, out: Any = None):
        self.out = out or sys.stdout
        self.final: RunFinished | None = None
        self.run_id: str | None = None

    def __call__(self, ev: Any) -> None:
        self.out.write(event_to_json(ev) + "\n")
        tp = type(ev)
        if tp is RunFinished:
            self.final = ev
            self.out.flush()
        elif tp is RunStarted:
            self.run_id = ev.run_id


# ---- one model call (`ponder chat`) -----------------------------------------------------------
class StreamPrinter:
    """Prints reasoning dimmed and content plainly as the deltas arrive, or JSON lines."""

    def __init__(self, json_out: bool = False):
        self.json = JsonLines() if json_out else None
        self.echo = _Echo(console)

    def __call__(self, ev: object) -> None:
        if self.json is not None:
            self.json(ev)
            return
        if isinstance(ev, ReasoningDelta):
            self.echo.write(ev.text, "reasoning")
        elif isinstance(ev, ContentDelta):
            self.echo.write(ev.text, "content")
        elif isinstance(ev, ModelCallFinished | ErrorEvent):
            self.echo.call_done()


# ---- a run (`ponder run`, `ponder resume`) ------------------------------------------------------
class RunView:
    """Live view of an interleaved run: steps, reasoning dimmed, tools in panels, the answer,
    the metrics in words. Also used for a swarm's events outside its live table."""

    def __init__(self, mode: str = "interleaved"):
        self.mode = mode
        self.echo = _Echo(console)
        self.final: RunFinished | None = None
        self.run_id: str | None = None

    def __call__(self, ev: Any) -> None:
        tp = type(ev)
        if tp is ReasoningDelta:
            self.echo.write(ev.text, "reasoning")
            return
        if tp is ContentDelta:
            self.echo.write(ev.text, "content")
            return
        if tp is ModelCallFinished:
            self.echo.call_done()
            return
        self.echo.end()
        if tp is RunStarted:
            self.run_id = ev.run_id
            if ev.attempt:
                console.print(Text(f"resuming run {ev.run_id} (attempt {ev.attempt + 1})", style="bold"))
        elif tp is StepStarted:
            console.print(Text(f"── step {ev.step}", style="bold blue"))
        elif tp is ToolStarted:
            body = ev.arguments["code"] if ev.name == "python" and isinstance(ev.arguments.get("code"), str) else \
                event_to_json(ev).split('"arguments":', 1)[-1][:-1]
            console.print(Panel(Text(fold(body, PANEL_CHARS)), title=Text(f"tool call · {ev.name}"),
                                border_style="cyan", expand=False))
        elif tp is VerificationEvent:
            mark = ("✓ ", "green") if ev.ok else ("✗ ", "red")
            console.print(Text.assemble(mark, (f"verify ({ev.stage})" + (f": {ev.reason}" if ev.reason else ""), "dim")))
        elif tp is ToolResult:
            console.print(Panel(Text(fold(ev.content, 2_000, "the whole result is in --json output")),
                                title=Text(f"result · {ev.name} · {ev.duration_s:.2f}s"),
                                border_style="green" if ev.ok else "red", expand=False))
        elif tp is ToolRecovered:
            console.print(Text(f"recovered {ev.name} ({ev.call_id}): "
                               + ("re-run (idempotent)" if ev.action == "rerun" else "outcome unknown, not re-run"),
                               style="yellow"))
        elif tp is BudgetHit:
            console.print(Text(f"budget reached: {ev.budget} ({ev.value:g} of {ev.limit:g})", style="yellow"))
        elif tp is ErrorEvent:
            err_console.print(Text.assemble(("model error: ", "red"), ev.message), soft_wrap=True)
        elif tp is RunFinished:
            self.final = ev
            show_final(ev, self.mode)


def show_final(ev: RunFinished, mode: str) -> None:
    style = {"ok": "bold green", "budget": "yellow", "cancelled": "yellow"}.get(ev.status, "red")
    console.print(Panel(Text(fold(ev.answer or "(no answer)", PANEL_CHARS)), title=Text(f"answer · {ev.status}"),
                        border_style=style, title_align="left"))
    if ev.reason:
        console.print(Text(ev.reason, style=style))
    console.print(Text(metrics_text(ev.metrics, mode), style="dim"))
    if ev.run_id:
        console.print(Text(f"run {ev.run_id}", style="dim"))
        if url := viewer_url(ev.run_id):  # a `ponder serve` holds this run: link its page
            console.print(Text(f"view {url}", style="dim"))


# ---- the swarm's live table ----------------------------------------------------------------------
ORCH = "orchestrator"
_STYLE = {"queued": "dim", "running": "yellow", "ok": "green", "error": "red", "cancelled": "magenta", "budget": "cyan"}


@dataclass
class _Row:
    name: str
    goal: str
    status: str = "queued"
    steps: int = 0
    tokens: int = 0
    t0: float | None = None
    t1: float | None = None


class SwarmView:
    """Folds the swarm's events into what the live table shows; `render()` is called by the
    live display on every refresh, so elapsed times tick between events."""

    def __init__(self, max_rows: int = 40):
        self.rows: dict[str, _Row] = {}
        self.reasoning = ""
        self.orch_steps = 0
        self.orch_tokens = 0
        self.max_rows = max_rows
        self.final: RunFinished | None = None
        self.run_id: str | None = None
        self.t0 = time.time()

    def __call__(self, ev: Any) -> None:
        self.observe(ev)

    def observe(self, ev: Any) -> None:
        tp = type(ev)
        if tp is AgentSpawned:
            self.rows[ev.agent_id] = _Row(ev.name, ev.goal)
        elif tp is ReasoningDelta and ev.agent == ORCH:
            self.reasoning = (self.reasoning + ev.text)[-600:]
        elif tp is StepStarted:
            if ev.agent == ORCH:
                self.orch_steps = ev.step
            elif (r := self.rows.get(ev.agent)) is not None:
                r.steps, r.status = ev.step, "running"
                r.t0 = r.t0 or ev.ts
        elif tp is ModelCallFinished:
            n = ev.usage.prompt_tokens + ev.usage.completion_tokens
            if ev.agent == ORCH:
                self.orch_tokens += n
            elif (r := self.rows.get(ev.agent)) is not None:
                r.tokens += n
        elif tp is AgentFinished and (r := self.rows.get(ev.agent_id)) is not None:
            r.status, r.t1 = ev.status, ev.ts
            r.steps = max(r.steps, ev.steps)
        elif tp is RunStarted:
            self.run_id = ev.run_id
            self.t0 = ev.ts
        elif tp is RunFinished:
            self.final = ev

    def render(self) -> Group:
        now = time.time()
        t = Table(expand=True, show_edge=False, pad_edge=False)
        for col, kw in (("agent", {}), ("goal", {"ratio": 1, "overflow": "ellipsis", "no_wrap": True}),
                        ("status", {}), ("steps", {"justify": "right"}), ("tokens", {"justify": "right"}),
                        ("elapsed", {"justify": "right"})):
            t.add_column(col, **kw)
        rows = list(self.rows.values())
        order = {"running": 0, "queued": 1}
        shown = sorted(rows, key=lambda r: order.get(r.status, 2))[: self.max_rows]
        for r in shown:
            el = ((r.t1 or now) - r.t0) if r.t0 else 0.0
            t.add_row(Text(r.name), Text(r.goal.replace("\n", " ")), Text(r.status, style=_STYLE.get(r.status, "")),
                      str(r.steps), str(r.tokens), f"{el:.1f}s" if r.t0 else "-")
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = [f"{k} {counts[k]}" for k in ("running", "queued") if counts.get(k)]
        parts += [f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("running", "queued")]
        summary = " · ".join(parts) or "no sub-agents yet"
        more = f" (showing {len(shown)} of {len(rows)})" if len(shown) < len(rows) else ""
        head = Panel(Text(self.reasoning.strip()[-600:] or "…", style="dim"),
                     title=Text(f"orchestrator · step {self.orch_steps} · {self.orch_tokens} tokens · "
                                f"{now - self.t0:.1f}s"), title_align="left")
        return Group(head, Text(f"sub-agents: {summary}{more}"), t)

    def __rich__(self) -> Group:
        return self.render()


# ---- driving a stream -----------------------------------------------------------------------------
async def consume(events: AsyncIterator[Any], *, json_out: bool, mode: str,
                  cancel: asyncio.Event | None = None) -> RunFinished | None:
    """Render a run's stream until its end; Ctrl-C sets `cancel` (the run ends cleanly,
    status `cancelled`). Returns the `RunFinished`, if one came."""
    loop = asyncio.get_running_loop()
    if cancel is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, cancel.set)
    try:
        if json_out:
            out = JsonLines()
            async for ev in events:
                out(ev)
            sys.stdout.flush()
            return out.final
        if mode == "swarm":
            view = SwarmView()
            with Live(view, console=console, refresh_per_second=4, transient=False):
                async for ev in events:
                    view.observe(ev)
            if not console.is_terminal:
                console.line()  # Live's last frame ends without a newline when output is not a terminal
            if view.final is not None:
                show_final(view.final, mode)
            return view.final
        rv = RunView(mode)
        async for ev in events:
            rv(ev)
        return rv.final
    finally:
        if cancel is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)


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
