"""`ponder models` and `ponder chat`: one model call, streamed, with its telemetry."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..core.errors import ConfigError, PonderError
from ..core.events import ErrorEvent, ModelCallFinished, ToolCallEvent
from ..core.messages import Message
from ..models.base import ChatRequest
from ..models.catalog import catalog
from ..models.registry import model as get_model
from .render import StreamPrinter, console, err_console, metrics_line, run_async


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
    app.command("chat")(chat_cmd)


def models_cmd() -> None:
    """List the model catalog and whether each model's API key is set."""
    t = Table(title="ponder models")
    for col in ("name", "dialect", "model id", "endpoint", "key", "$/1M in", "cached", "out", "context"):
        t.add_column(col)
    for s in sorted(catalog().values(), key=lambda s: s.name):
        key = "-" if not s.api_key_env else (f"[green]{s.api_key_env} set[/]" if s.key_is_set() else f"[red]{s.api_key_env} missing[/]")
        t.add_row(s.name, s.dialect, s.model_id, s.base_url or "in-process", key, f"{s.price_input:.2f}",
                  f"{s.price_cached_input:.2f}", f"{s.price_output:.2f}", f"{s.context_window:,}")
    console.print(t)


def chat_cmd(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog name, DIALECT:URL#ID, or a .gguf path.")] = "smollm2",
    base_url: Annotated[str | None, typer.Option(help="Any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")] = None,
    dialect: Annotated[str | None, typer.Option(help="Wire dialect: kimi, glm, deepseek, vllm, sglang, llamacpp, openai.")] = None,
    thinking: Annotated[str | None, typer.Option(help="on | off (default: the provider's)")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Cap on generated tokens.")] = 512,
    temperature: Annotated[float | None, typer.Option()] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line.")] = False,
) -> None:
    """Stream one answer: reasoning dimmed, then the answer, then TTFT, tokens/s, tokens and cost."""
    if thinking not in (None, "on", "off"):
        raise typer.BadParameter("--thinking must be 'on' or 'off'")
    try:
        m = get_model(model, base_url=base_url, dialect=dialect)
    except (ConfigError, PonderError, ValueError) as e:
        err_console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    msgs = ([Message.system(system)] if system else []) + [Message.user(prompt)]
    req = ChatRequest(messages=msgs, thinking=thinking, max_tokens=max_tokens, temperature=temperature)
    code = run_async(_chat(m, req, json_out))
    raise typer.Exit(code)


async def _chat(m, req: ChatRequest, json_out: bool) -> int:
    show = StreamPrinter(json_out)
    code = 0
    try:
        async for ev in m.stream(req):
            show(ev)
            if json_out:
                continue
            if isinstance(ev, ToolCallEvent):
                console.print(f"\n[cyan]tool call[/] {ev.call.name}({ev.call.arguments_json()})")
            elif isinstance(ev, ModelCallFinished):
                console.print()
                console.print(metrics_line(ev), style="bold")
            elif isinstance(ev, ErrorEvent):
                err_console.print(f"\n[red]error:[/] {ev.message}")
                code = 1
    finally:
        await m.aclose()
    return code
