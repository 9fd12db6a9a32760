"""`ponder models` and `ponder chat`: the catalog, and one model call, streamed, with its telemetry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..core.errors import ConfigError, PonderError
from ..core.events import ErrorEvent, ModelCallFinished, ToolCallEvent
from ..core.messages import Image, Message
from ..models.base import ChatRequest
from ..models.catalog import ModelSpec, catalog
from ..models.profiles import RequestRefused, check_request
from ..models.registry import model as get_model
from .render import (
    EXIT_BUDGET,
    EXIT_ERROR,
    EXIT_OK,
    StreamPrinter,
    console,
    err_console,
    fail,
    metrics_line,
    run_async,
)


def register(app: typer.Typer) -> None:
    app.command("models")(models_cmd)
    app.command("chat")(chat_cmd)


def parse_headers(values: list[str] | None) -> dict[str, str]:
    """`--header K:V` values as a dict; a value without a colon is a one-line error."""
    out: dict[str, str] = {}
    for v in values or []:
        k, sep, val = v.partition(":")
        if not sep or not k.strip():
            raise ConfigError(f"--header {v!r} must look like NAME:VALUE, e.g. --header 'X-Team: research'")
        out[k.strip()] = val.strip()
    return out


def _price(v: float | None) -> str:
    return "?" if v is None else f"{v:.3f}".rstrip("0").rstrip(".")


def _notes(s: ModelSpec) -> str:
    p = s.profile
    notes = []
    if p.retired_on:
        notes.append("retired on its API" + (f" → {p.successor}" if p.successor else ""))
    if s.backend == "http" and not s.base_url:
        notes.append("self-hosted: --base-url")
    if p.thinking == "always":
        notes.append("always thinks")
    if p.effort_levels:
        notes.append("effort " + "/".join(p.effort_levels))
    if s.capabilities.vision:
        notes.append("vision")
    if p.fixed_sampling:
        notes.append("fixed sampling")
    if p.observed:
        notes.append("probed")
    return "; ".join(notes)


def spec_json(s: ModelSpec) -> dict[str, Any]:
    """A catalog entry as JSON (header values left out: they may hold keys)."""
    caps = s.capabilities
    return {
        "name": s.name, "model_id": s.model_id, "dialect": s.dialect, "backend": s.backend, "base_url": s.base_url,
        "api_key_env": s.api_key_env, "key_set": s.key_is_set(), "headers": sorted(s.headers),
        "context_window": s.context_window, "price_input": s.price_input, "price_cached_input": s.price_cached_input,
        "price_output": s.price_output, "prices_known": s.prices_known,
        "capabilities": {"native_thinking": caps.native_thinking, "constrained_decoding": caps.constrained_decoding,
                         "vision": caps.vision},
        "profile": s.profile.model_dump(), "description": s.description, "sources": s.sources,
    }


def models_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON, profiles included.")] = False,
) -> None:
    """List the model catalog: dialect, context, prices (? = not published), API key, rules worth knowing."""
    try:
        specs = sorted(catalog().values(), key=lambda s: s.name)
    except ConfigError as e:
        raise fail(str(e)) from None
    if json_out:
        print(json.dumps([spec_json(s) for s in specs], indent=2))
        return
    wide = console.width >= 110
    t = Table(title="ponder models", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
              caption="$/1M tokens: uncached in / cached in / out (? = not published). key: ✓ set, ✗ missing"
              + ("" if wide else ". `ponder models --json`: key variables, endpoints, profiles"), caption_justify="left")
    # names never truncate or wrap (piped output is 80 columns wide): the other columns give way
    t.add_column("name", no_wrap=True, min_width=max(len(s.name) for s in specs))
    t.add_column("dialect", no_wrap=True)
    t.add_column("context", no_wrap=True, justify="right")
    t.add_column("$ in/cached/out", no_wrap=True)
    t.add_column("key", no_wrap=not wide, overflow="fold")
    t.add_column("notes", overflow="fold", ratio=1)
    for s in specs:
        if not s.api_key_env:
            key = "-"
        elif s.key_is_set():
            key = f"[green]{s.api_key_env + ' ' if wide else ''}✓[/]"
        else:
            key = f"[red]{s.api_key_env + ' ' if wide else ''}✗[/]"
        ctx = f"{s.context_window:,}" if s.context_window else "?"
        prices = "/".join(_price(v) for v in (s.price_input, s.price_cached_input, s.price_output))
        t.add_row(s.name, s.dialect, ctx, prices, key, _notes(s))
    console.print(t)


def chat_cmd(
    prompt: Annotated[str | None, typer.Argument(help="What to ask; - reads stdin.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the prompt from this file.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog name, DIALECT:URL#ID, or a .gguf path.")] = "smollm2",
    base_url: Annotated[str | None, typer.Option(help="Any OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")] = None,
    dialect: Annotated[str | None, typer.Option(help="Wire dialect: kimi, glm, deepseek, vllm, sglang, llamacpp, openai.")] = None,
    thinking: Annotated[str | None, typer.Option(help="on | off | auto (default auto: the provider's)")] = None,
    effort: Annotated[str | None, typer.Option(help="reasoning_effort, e.g. high or max (see `ponder models`).")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="An image (file, http(s) or data URL); repeatable.")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", help="Extra HTTP header NAME:VALUE; repeatable.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Cap on generated tokens.")] = 512,
    temperature: Annotated[float | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option("--top-p")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock limit of the whole call, seconds (exit 3 when reached).")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="HTTP models: longest silence inside a stream, seconds.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line.")] = False,
) -> None:
    """Stream one answer: reasoning dimmed, then the answer, then TTFT, tokens/s, tokens and cost."""
    from ..engines.build import EngineConfig, model_options
    from .options import at_least, check_base_url, positive
    from .run import read_prompt

    try:
        if thinking not in (None, "on", "off", "auto"):
            raise ConfigError(f"--thinking must be on, off or auto (got {thinking!r})")
        at_least("--max-tokens", max_tokens, 1)
        positive("--timeout", timeout)
        positive("--idle-timeout", idle_timeout)
        check_base_url(base_url)
        if prompt is None and file is None:
            raise ConfigError("no prompt: give it as an argument, with --file PATH, or as - to read stdin")
        text = read_prompt(prompt, file)
        if not text.strip() and not image:
            raise ConfigError("the prompt is empty: give it as text (or --file PATH, or - to read stdin)")
        cfg = EngineConfig(model=model, base_url=base_url, dialect=dialect, headers=parse_headers(header),
                           idle_timeout_s=idle_timeout)
        m = get_model(model, base_url=base_url, dialect=dialect, **model_options(cfg, model))
        images = [Image.from_source(i) for i in image or []]
        msgs = ([Message.system(system)] if system else []) + [Message.user(text, images=images)]
        req = ChatRequest(messages=msgs, thinking=None if thinking == "auto" else thinking, reasoning_effort=effort,
                          max_tokens=max_tokens, temperature=temperature, top_p=top_p)
        check_request(m.spec, req)  # the same check the backend makes, before anything starts
    except (PonderError, RequestRefused, ValueError) as e:
        raise fail(str(e)) from None
    code = run_async(_chat(m, req, json_out, timeout))
    raise typer.Exit(code)


async def _chat(m: Any, req: ChatRequest, json_out: bool, limit_s: float | None = None) -> int:
    """One streamed call; exit 1 when it ends in an error event (with --json too), 3 when
    `limit_s` (the call's wall clock, `--timeout`) stops it. Model text is printed as text, never markup."""
    show = StreamPrinter(json_out)
    code = EXIT_OK
    try:
        try:
            async with asyncio.timeout(limit_s):
                async for ev in m.stream(req):
                    show(ev)
                    if isinstance(ev, ErrorEvent):
                        code = EXIT_ERROR
                        if not json_out:
                            err_console.print(Text.assemble(("error: ", "bold red"), ev.message), soft_wrap=True)
                    elif json_out:
                        continue
                    elif isinstance(ev, ToolCallEvent):
                        show.echo.end()
                        console.print(Text.assemble(("tool call ", "cyan"),
                                                    f"{ev.call.name}({ev.call.arguments_json()})"))
                    elif isinstance(ev, ModelCallFinished):
                        console.print()
                        console.print(Text(metrics_line(ev), style="bold"))
        except TimeoutError:
            msg = f"no complete reply within --timeout {limit_s:g}s; the output so far is above (raise --timeout)"
            show.echo.call_done()
            if json_out:
                show(ErrorEvent(error_type="Timeout", message=msg))
            else:
                err_console.print(Text.assemble(("stopped: ", "bold yellow"), msg), soft_wrap=True)
            code = EXIT_BUDGET
    finally:
        await m.aclose()
    return code
