"""`ponder run`: one task through an engine, rendered live (or as JSON lines).

`--mode interleaved` (default) runs the Interleaved engine here; `--mode swarm` hands
over to the swarm command's runner. Ctrl-C sets the engine's cancel event, so the run
still ends with a RunFinished and a `--session` keeps a valid conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel

from ..core.errors import ConfigError, PonderError
from ..core.events import (
    BudgetHit,
    ContentDelta,
    ErrorEvent,
    ReasoningDelta,
    RunFinished,
    StepStarted,
    ToolResult,
    ToolStarted,
    VerificationEvent,
    event_to_json,
)
from .render import console, err_console, run_async

DEFAULT_TOOLS = "python,calculator,search"


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)


def run_cmd(
    task: Annotated[str, typer.Argument(help="The task, or a follow-up when --session continues a conversation.")],
    mode: Annotated[str, typer.Option(help="interleaved | swarm")] = "interleaved",
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog name, DIALECT:URL#ID, or a .gguf path.")] = "smollm2",
    base_url: Annotated[str | None, typer.Option(help="Any OpenAI-compatible endpoint.")] = None,
    dialect: Annotated[str | None, typer.Option(help="Wire dialect override (kimi, glm, vllm, ...).")] = None,
    thinking: Annotated[str, typer.Option(help="on | off | auto (auto: see docs/engines.md)")] = "auto",
    no_preserve: Annotated[bool, typer.Option("--no-preserve", help="Do not send earlier turns' reasoning back.")] = False,
    session: Annotated[str | None, typer.Option(help="Continue (or start) a named conversation stored in SQLite.")] = None,
    db: Annotated[Path | None, typer.Option(help="Run store path (default $PONDER_HOME/ponder.db, ~/.ponder/ponder.db).")] = None,
    max_steps: Annotated[int, typer.Option(help="Step budget.")] = 12,
    max_tool_calls: Annotated[int | None, typer.Option(help="Tool-call budget.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget (prompt + completion, whole run).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Cost budget in USD.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock budget in seconds.")] = None,
    tools: Annotated[str, typer.Option(help="Comma-separated: python, calculator, search (empty for none).")] = DEFAULT_TOOLS,
    self_check: Annotated[bool, typer.Option("--self-check", help="Ask the model to review code before it runs.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Run python code without the policy check.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line.")] = False,
    sub_model: Annotated[str | None, typer.Option(help="swarm: model for sub-agents.")] = None,
    max_parallel: Annotated[int, typer.Option(help="swarm: most sub-agents at once.")] = 100,
    sub_max_steps: Annotated[int | None, typer.Option(help="swarm: step budget per sub-agent (default 100).")] = None,
) -> None:
    """Run a task with think-before-act reasoning: reasoning dimmed, tools in panels, answer, metrics."""
    if thinking not in ("on", "off", "auto"):
        raise typer.BadParameter("--thinking must be on, off or auto")
    tool_names = [t.strip() for t in tools.split(",") if t.strip()]
    if mode == "swarm":
        from .swarm_cmd import run_swarm_cli

        run_async(run_swarm_cli(model, task, json_out=json_out, sub_model=sub_model, max_parallel=max_parallel,
                                  tools=tool_names, db=db, max_steps=min(max_steps, 15), sub_max_steps=sub_max_steps))
        return
    if mode != "interleaved":
        raise typer.BadParameter(f"--mode must be interleaved or swarm, not {mode!r}")
    try:
        code = run_async(_run_interleaved(
            task, model_name=model, base_url=base_url, dialect=dialect, thinking=thinking,
            preserve=not no_preserve, session_name=session, db=db, tool_names=tool_names, json_out=json_out,
            budgets=dict(max_steps=max_steps, max_tool_calls=max_tool_calls, max_tokens=max_tokens,
                         max_cost_usd=max_cost, wall_timeout_s=timeout),
            self_check=self_check, verify=not no_verify,
        ))
    except (ConfigError, PonderError, ValueError) as e:
        err_console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def build_tools(names: list[str]) -> list[Any]:
    """The named built-in tools; unknown names are a clear error listing the known ones."""
    from ..tools import named_tools

    try:
        return named_tools(names)
    except ValueError as e:
        raise ConfigError(str(e)) from None


async def _run_interleaved(task: str, *, model_name: str, base_url: str | None, dialect: str | None, thinking: str,
                           preserve: bool, session_name: str | None, db: Path | None, tool_names: list[str],
                           json_out: bool, budgets: dict[str, Any], self_check: bool, verify: bool) -> int:
    from ..engines.base import Budgets
    from ..engines.interleaved import Interleaved
    from ..models.registry import model as get_model

    m = get_model(model_name, base_url=base_url, dialect=dialect)
    sess = None
    if session_name is not None:
        from ..core.store import RunStore, Session

        sess = Session(RunStore(db), session_name)
    eng = Interleaved(m, build_tools(tool_names), thinking=thinking, preserve_reasoning=preserve,  # type: ignore[arg-type]
                      budgets=Budgets(**budgets), self_check=self_check, verify_code=verify, session=sess)
    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, cancel.set)
    render = _Renderer(json_out)
    status = "error"
    try:
        async for ev in eng.stream(task, cancel=cancel):
            render(ev)
            if isinstance(ev, RunFinished):
                status = ev.status
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(Exception):
            await m.aclose()
    return {"ok": 0, "budget": 0, "cancelled": 130}.get(status, 1)


class _Renderer:
    """Live view: reasoning dimmed, tool calls and results in panels, the answer, one metrics line."""

    def __init__(self, json_out: bool):
        self.json_out = json_out
        self.mode: str | None = None

    def _break(self, mode: str | None) -> None:
        if self.mode in ("reasoning", "content") and mode != self.mode:
            console.print()
        self.mode = mode

    def __call__(self, ev: Any) -> None:
        if self.json_out:
            sys.stdout.write(event_to_json(ev) + "\n")
            sys.stdout.flush()
            return
        if isinstance(ev, StepStarted):
            self._break(None)
            console.print(f"[bold blue]── step {ev.step}[/]")
        elif isinstance(ev, ReasoningDelta):
            self._break("reasoning")
            console.print(ev.text, style="dim", end="", soft_wrap=True, markup=False)
        elif isinstance(ev, ContentDelta):
            self._break("content")
            console.print(ev.text, end="", soft_wrap=True, markup=False)
        elif isinstance(ev, ToolStarted):
            self._break(None)
            args = json.dumps(ev.arguments, ensure_ascii=False, indent=1)
            body = ev.arguments["code"] if ev.name == "python" and isinstance(ev.arguments.get("code"), str) else args
            console.print(Panel(escape(body), title=f"tool call · {escape(ev.name)}", border_style="cyan", expand=False))
        elif isinstance(ev, VerificationEvent):
            self._break(None)
            mark = "[green]✓[/]" if ev.ok else "[red]✗[/]"
            console.print(f"{mark} verify ({ev.stage}){': ' + escape(ev.reason) if ev.reason else ''}", style="dim")
        elif isinstance(ev, ToolResult):
            self._break(None)
            text = ev.content if len(ev.content) < 2000 else ev.content[:2000] + " …"
            console.print(Panel(escape(text), title=f"result · {escape(ev.name)} · {ev.duration_s:.2f}s",
                                border_style="green" if ev.ok else "red", expand=False))
        elif isinstance(ev, BudgetHit):
            self._break(None)
            console.print(f"[yellow]budget reached: {ev.budget} ({ev.value:g} of {ev.limit:g})[/]")
        elif isinstance(ev, ErrorEvent):
            self._break(None)
            err_console.print(f"[red]model error:[/] {escape(ev.message)}")
        elif isinstance(ev, RunFinished):
            self._break(None)
            style = {"ok": "bold green", "budget": "yellow", "cancelled": "yellow"}.get(ev.status, "red")
            console.print(Panel(escape(ev.answer or "(no answer)"), title=f"answer · {ev.status}", border_style=style))
            if ev.reason:
                console.print(f"[{style}]{escape(ev.reason)}[/]")
            console.print(metrics_summary(ev.metrics), style="dim")


def metrics_summary(m: dict[str, Any]) -> str:
    u = m.get("usage") or {}
    ttft = m.get("ttft_first_s")
    tps = m.get("decode_tps_median")
    return " · ".join([
        f"{m.get('steps', 0)} steps",
        f"{m.get('tool_calls', 0)} tool calls",
        f"tokens {u.get('prompt_tokens', 0)} in / {u.get('completion_tokens', 0)} out ({u.get('reasoning_tokens', 0)} reasoning)",
        f"TTFT {ttft * 1000:.0f} ms" if ttft is not None else "TTFT -",
        f"{tps:.1f} tok/s" if tps else "tok/s -",
        f"${m.get('cost_usd', 0.0):.6f}",
        f"violations {m.get('violations', 0)} · re-asks {m.get('reasks', 0)}",
        f"verified {m.get('verifications', 0)} / rejected {m.get('rejections', 0)} / fixed {m.get('fixes', 0)}",
        f"{m.get('wall_s', 0.0):.2f} s",
    ])
