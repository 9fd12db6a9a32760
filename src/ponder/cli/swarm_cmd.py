"""`ponder run --mode swarm` (the live view) and `ponder export-trajectories` (RL data).

The live view is a rich table of sub-agents (name, goal, status, steps, tokens,
elapsed) under the orchestrator's latest reasoning, redrawn a few times a second from
the event stream alone; `--json` prints every event as a JSON line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..core.errors import ConfigError, PonderError
from ..core.events import (
    AgentFinished,
    AgentSpawned,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    StepStarted,
    event_to_json,
)
from .render import console, err_console

ORCH = "orchestrator"
_STYLE = {"pending": "dim", "running": "yellow", "ok": "green", "error": "red", "cancelled": "magenta", "budget": "cyan"}


@dataclass
class _Row:
    name: str
    goal: str
    status: str = "pending"
    steps: int = 0
    tokens: int = 0
    t0: float | None = None
    t1: float | None = None


class SwarmView:
    """Folds the swarm's events into what the live table shows."""

    def __init__(self, max_rows: int = 40):
        self.rows: dict[str, _Row] = {}
        self.reasoning = ""
        self.orch_steps = 0
        self.orch_tokens = 0
        self.max_rows = max_rows
        self.final: RunFinished | None = None

    def observe(self, ev: Any) -> None:
        if isinstance(ev, AgentSpawned):
            self.rows[ev.agent_id] = _Row(ev.name, ev.goal)
        elif isinstance(ev, ReasoningDelta) and ev.agent == ORCH:
            self.reasoning = (self.reasoning + ev.text)[-600:]
        elif isinstance(ev, StepStarted):
            if ev.agent == ORCH:
                self.orch_steps = ev.step
            elif (r := self.rows.get(ev.agent)) is not None:
                r.steps, r.status = ev.step, "running"
                r.t0 = r.t0 or ev.ts
        elif isinstance(ev, ModelCallFinished):
            n = ev.usage.prompt_tokens + ev.usage.completion_tokens
            if ev.agent == ORCH:
                self.orch_tokens += n
            elif (r := self.rows.get(ev.agent)) is not None:
                r.tokens += n
        elif isinstance(ev, AgentFinished) and (r := self.rows.get(ev.agent_id)) is not None:
            r.status, r.t1 = ev.status, ev.ts
            r.steps = max(r.steps, ev.steps)
        elif isinstance(ev, RunFinished):
            self.final = ev

    def render(self) -> Group:
        now = time.time()
        t = Table(expand=True, show_edge=False, pad_edge=False)
        for col, kw in (("agent", {}), ("goal", {"ratio": 1, "overflow": "ellipsis", "no_wrap": True}),
                        ("status", {}), ("steps", {"justify": "right"}), ("tokens", {"justify": "right"}),
                        ("elapsed", {"justify": "right"})):
            t.add_column(col, **kw)
        rows = list(self.rows.values())
        active = [r for r in rows if r.status == "running"]
        rest = [r for r in rows if r.status != "running"]
        shown = (active + rest)[: self.max_rows]
        for r in shown:
            el = ((r.t1 or now) - r.t0) if r.t0 else 0.0
            t.add_row(escape(r.name), escape(r.goal.replace("\n", " ")), f"[{_STYLE.get(r.status, '')}]{r.status}[/]",
                      str(r.steps), str(r.tokens), f"{el:.1f}s")
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = " · ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no sub-agents yet"
        more = f" (showing {len(shown)} of {len(rows)})" if len(shown) < len(rows) else ""
        head = Panel(Text(self.reasoning.strip()[-600:] or "…", style="dim"),
                     title=f"orchestrator · step {self.orch_steps} · {self.orch_tokens} tokens", title_align="left")
        return Group(head, Text(f"sub-agents: {summary}{more}"), t)


def metrics_text(m: dict[str, Any]) -> str:
    u = m.get("usage") or {}
    ex = m.get("extra") or {}
    parts = [
        f"agents {m.get('agents', 0)} (peak {ex.get('peak_concurrency', 0)} at once)",
        f"steps {m.get('steps', 0)} · critical {m.get('critical_steps', 0)} · parallelism {m.get('parallelism')}",
        f"serial collapse {m.get('serial_collapse')} · spurious {m.get('spurious_agents', 0)}",
        f"tool calls {m.get('tool_calls', 0)} · model calls {m.get('model_calls', 0)}",
        f"tokens {u.get('prompt_tokens', 0)} in / {u.get('completion_tokens', 0)} out · ${m.get('cost_usd', 0):.6f}",
        f"wall {m.get('wall_s', 0):.2f} s · rewards {m.get('rewards')}",
    ]
    cites = ex.get("citations") or {}
    if cites.get("unknown"):
        parts.append(f"[yellow]answer cites unknown agents: {cites['unknown']}[/]")
    return "\n".join(parts)


async def run_swarm_cli(model_name: str, task: str, *, json_out: bool, sub_model: str | None, max_parallel: int,
                        tools: list[str], db: Path | None = None, max_steps: int | None = None,
                        sub_max_steps: int | None = None) -> None:
    """The live view behind `ponder run --mode swarm`. Ctrl-C cancels the whole tree cleanly."""
    from ..engines.base import Budgets
    from ..engines.swarm import Swarm
    from ..models.registry import model as get_model
    from .run import build_tools

    try:
        m = get_model(model_name)
        sm = get_model(sub_model) if sub_model else None
        store = None
        with contextlib.suppress(Exception):
            from ..core.store import RunStore

            store = RunStore(db)
        sw = Swarm(m, build_tools(tools), sub_model=sm, max_parallel=max_parallel, store=store,
                   budgets=Budgets(max_steps=max_steps or 15, max_tool_calls=1_500),
                   sub_budgets=Budgets(max_steps=sub_max_steps or 100))
    except (ConfigError, PonderError, ValueError) as e:
        err_console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)
    view = SwarmView()
    try:
        if json_out:
            out = sys.stdout
            async for ev in sw.stream(task, cancel=cancel):
                out.write(event_to_json(ev) + "\n")
                view.observe(ev)
            out.flush()
        else:
            last = 0.0
            with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
                async for ev in sw.stream(task, cancel=cancel):
                    view.observe(ev)
                    now = time.monotonic()
                    if now - last > 0.12:
                        live.update(view.render())
                        last = now
                live.update(view.render())
            fin = view.final
            if fin is not None:
                style = "green" if fin.status == "ok" else "yellow"
                console.print(Panel(escape(fin.answer or "(no answer)"), title=f"answer · {fin.status}",
                                    border_style=style, title_align="left"))
                if fin.reason:
                    console.print(f"[{style}]{escape(fin.reason)}[/]")
                console.print(Text.from_markup(metrics_text(fin.metrics), style="dim"))
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(Exception):
            await m.aclose()
    if view.final is not None and view.final.status not in ("ok",):
        raise typer.Exit(1)


def export_trajectories_cmd(
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db, ~/.ponder/ponder.db).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output .jsonl file (default: stdout).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Export one run (id or id prefix); default all runs.")] = None,
) -> None:
    """Write stored runs as JSONL trajectories (messages per agent, tool calls, PARL rewards) for RL."""
    from ..core.store import RunStore
    from ..engines.swarm.trajectories import iter_store_trajectories, write_jsonl

    try:
        store = RunStore(db)
    except (ConfigError, PonderError) as e:
        err_console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    try:
        trajs = iter_store_trajectories(store, run)
        n = write_jsonl(trajs, out) if out is not None else write_jsonl(trajs, sys.stdout)
    except KeyError as e:
        err_console.print(f"[red]error:[/] {escape(str(e.args[0]))}")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err_console.print(f"exported {n} run(s)" + (f" to {out}" if out else ""))


def register(app: typer.Typer) -> None:
    app.command("export-trajectories")(export_trajectories_cmd)
