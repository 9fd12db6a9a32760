"""`ponder run`, `ponder resume` and `ponder runs`: a task through either engine, journaled.

Both modes take the same flags and go the same way: flags -> `EngineConfig` ->
`build_engine` -> `ponder.runs` (journal in front) -> the renderer. Ctrl-C ends the run
cleanly (status `cancelled`); a killed process leaves an `interrupted` run that
`ponder resume RUN_ID` continues from its journal.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from ..core.errors import ConfigError, PonderError
from .render import EXIT_USAGE, console, consume, exit_code, fail, run_async

DEFAULT_TOOLS = "python,calculator,search"


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("resume")(resume_cmd)
    app.command("runs")(runs_cmd)


def read_prompt(task: str | None, file: Path | None) -> str:
    """The task from the argument, `-` (stdin) or `--file`; a clear error when there is none."""
    if file is not None:
        if task not in (None, ""):
            raise ConfigError("give the task either as an argument or with --file, not both")
        try:
            return file.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{file} is not UTF-8 text (byte {e.start}); convert it or pass the task another way") from None
        except OSError as e:
            raise ConfigError(f"cannot read the task from {file}: {e.strerror or e}") from None
    if task == "-":
        try:
            return sys.stdin.read()
        except UnicodeDecodeError as e:
            raise ConfigError(f"stdin is not UTF-8 text (byte {e.start}); convert it or pass the task with --file") from None
    if task is None:
        raise ConfigError("no task: give it as an argument, with --file PATH, or as - to read stdin")
    return task


# EngineConfig fields whose flag is not the field's name
FLAGS = {"timeout_s": "--timeout", "idle_timeout_s": "--idle-timeout", "max_cost_usd": "--max-cost",
         "preserve_reasoning": "--no-preserve", "verify_code": "--no-verify"}


def engine_config(**flags: Any) -> Any:
    """Flags -> EngineConfig, with pydantic's complaint turned into one line naming the flag
    as the user typed it, the value and the rule (`--max-steps must be greater than or equal
    to 1 (got -1)`)."""
    from ..engines.build import EngineConfig
    from .options import check_base_url

    check_base_url(flags.get("base_url"))
    try:
        return EngineConfig(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else ""
        flag = FLAGS.get(field, "--" + field.replace("_", "-")) if field else "an option"
        msg = str(err["msg"])
        if msg.startswith("Value error, "):  # our own validator: its message says it all
            raise ConfigError(f"{flag}: {msg.removeprefix('Value error, ')}") from None
        got = f" (got {err['input']!r})" if field and not isinstance(err.get("input"), dict | list) else ""
        raise ConfigError(f"{flag} {msg.replace('Input should be', 'must be')}{got}") from None


def run_cmd(
    task: Annotated[str | None, typer.Argument(help="The task (or a follow-up with --session); - reads stdin.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the task from this file.")] = None,
    mode: Annotated[str, typer.Option(help="interleaved | swarm")] = "interleaved",
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog name, DIALECT:URL#ID, or a .gguf path.")] = "smollm2",
    sub_model: Annotated[str | None, typer.Option(help="swarm: the sub-agents' model (default: --model).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Any OpenAI-compatible endpoint.")] = None,
    dialect: Annotated[str | None, typer.Option(help="Wire dialect override (kimi, glm, vllm, ...).")] = None,
    thinking: Annotated[str, typer.Option(help="on | off | auto (auto: see docs/engines.md)")] = "auto",
    no_preserve: Annotated[bool, typer.Option("--no-preserve", help="Do not send earlier turns' reasoning back.")] = False,
    session: Annotated[str | None, typer.Option(help="interleaved: continue (or start) a named conversation.")] = None,
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db, ~/.ponder/ponder.db).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Step budget of the agent (the orchestrator in a swarm); default 12 / 15.")] = None,
    sub_max_steps: Annotated[int | None, typer.Option(help="swarm: step budget per sub-agent (default 100).")] = None,
    max_tool_calls: Annotated[int | None, typer.Option(help="Tool-call budget (a swarm counts all its agents').")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token budget (prompt + completion, whole run).")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Cost budget in USD (whole run).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock budget of the whole run, seconds.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="HTTP models: longest silence inside a stream, seconds.")] = None,
    threads: Annotated[int | None, typer.Option(help="Embedded model: llama.cpp threads.")] = None,
    tools: Annotated[str, typer.Option(help="Comma-separated: python, calculator, search (empty for none).")] = DEFAULT_TOOLS,
    corpus: Annotated[str | None, typer.Option(help="A folder or a built index the search tool reads (default: the sample corpus).")] = None,
    self_check: Annotated[bool, typer.Option("--self-check", help="Ask the model to review code before it runs.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Run python code without the policy check.")] = False,
    max_parallel: Annotated[int | None, typer.Option(help="swarm: most sub-agents at once (default 100).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line (and nothing else).")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="swarm: run the sub-agents on a Ray cluster (the one `ray start` began on this machine, or $RAY_ADDRESS; else a local one).")] = False,
    ray_address: Annotated[str | None, typer.Option(help="swarm: the Ray cluster to use (HOST:PORT or ray://HOST:PORT); implies --ray.")] = None,
) -> None:
    """Run a task: Interleaved (think before every act) or Swarm (parallel sub-agents), live."""
    try:
        text = read_prompt(task, file)
        cfg = engine_config(
            mode=mode, model=model, sub_model=sub_model, base_url=base_url, dialect=dialect, thinking=thinking,
            preserve_reasoning=not no_preserve, max_steps=max_steps, sub_max_steps=sub_max_steps,
            max_tool_calls=max_tool_calls, max_tokens=max_tokens, max_cost_usd=max_cost, timeout_s=timeout,
            idle_timeout_s=idle_timeout, threads=threads, tools=[t.strip() for t in tools.split(",") if t.strip()],
            corpus=corpus, self_check=self_check, verify_code=not no_verify, max_parallel=max_parallel,
            **_cluster_flags(mode, ray, ray_address))
        if not text.strip():
            raise ConfigError("the task is empty: give the question as text (or --file PATH, or - to read stdin)")
        code = run_async(_run(cfg, text, session=session, db=db, json_out=json_out))
    except (PonderError, ValueError) as e:
        raise fail(str(e)) from None
    raise typer.Exit(code)


def _cluster_flags(mode: str, ray: bool, address: str | None) -> dict[str, Any]:
    if not (ray or address):
        return {}
    if mode != "swarm":
        raise ConfigError("--ray runs a swarm's sub-agents on a Ray cluster; add --mode swarm")
    return {"executor": "ray", "ray_address": address}


async def _run(cfg: Any, task: str, *, session: str | None, db: Path | None, json_out: bool) -> int:
    from .. import runs
    from ..engines.build import build_engine

    engine = build_engine(cfg)
    cancel = asyncio.Event()
    try:
        fin = await consume(runs.stream(engine, task, db=db, session=session, cancel=cancel), json_out=json_out,
                            mode=cfg.mode, cancel=cancel)
    finally:
        for m in {id(x): x for x in (getattr(engine, "model", None), getattr(engine, "sub_model", None)) if x}.values():
            await m.aclose()
    return exit_code(fin.status if fin else None)


def resume_cmd(
    run_id: Annotated[str, typer.Argument(help="The run's id (or a unique prefix); `ponder runs` lists them.")],
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line.")] = False,
) -> None:
    """Continue an interrupted run from its journal: finished sub-agents are not re-run, the
    rest restart from their last completed step."""
    from .. import runs
    from ..core.store import RunStore

    try:
        store = RunStore(db)
        try:
            row = store.run(run_id)
        except KeyError as e:
            raise ConfigError(str(e.args[0])) from None
        cancel = asyncio.Event()
        fin = run_async(consume(runs.stream_resume(row["id"], store=store, cancel=cancel), json_out=json_out,
                                mode=row["mode"], cancel=cancel))
    except (PonderError, ValueError) as e:
        raise fail(str(e)) from None
    raise typer.Exit(exit_code(fin.status if fin else None))


def runs_cmd(
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
    status: Annotated[str | None, typer.Option(help="Only runs with this status (running, ok, budget, cancelled, error, interrupted).")] = None,
    mode: Annotated[str | None, typer.Option(help="Only this mode.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Only runs whose task, id or model contains this.")] = None,
    show: Annotated[str | None, typer.Option(help="Print one run's whole answer (id or prefix).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List stored runs with their status; a `running` run whose process is gone is `interrupted`."""
    from ..core.store import RunStore

    if limit < 1:
        raise fail("--limit must be at least 1")
    try:
        store = RunStore(db)
        if show is not None:
            try:
                row = store.run(show)
            except KeyError as e:
                raise ConfigError(str(e.args[0])) from None
            fin = next((e for e in reversed(store.events(row["id"])) if e.type == "run_finished"), None)
            answer = fin.answer if fin is not None else row["answer"]  # type: ignore[union-attr]
            if json_out:
                print(json.dumps({**row, "answer": answer}))
            else:
                sys.stdout.write((answer or "") + "\n")
            return
        rows = store.runs(limit=limit, status=status, mode=mode, search=search)
    except PonderError as e:
        raise fail(str(e)) from None
    if json_out:
        for r in rows:
            print(json.dumps(r, default=str))
        return
    t = Table(title=Text(f"runs in {store.path}"))
    for col in ("id", "status", "mode", "model", "started", "wall s", "tokens", "cost $", "critical", "task"):
        t.add_column(col, overflow="fold" if col == "id" else "ellipsis", no_wrap=col != "task")
    for r in rows:
        m = r["metrics"] or {}
        u = m.get("usage") or {}
        t.add_row(r["id"], Text(r["status"] or "?", style=_STATUS.get(r["status"], "")), r["mode"], Text(r["model"] or "-"),
                  datetime.fromtimestamp(r["started"]).strftime("%Y-%m-%d %H:%M:%S"),
                  f"{m['wall_s']:.1f}" if "wall_s" in m else "-",
                  str(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0)) if u else "-",
                  f"{m['cost_usd']:.4f}" if "cost_usd" in m else "-", str(m.get("critical_steps", "-")),
                  Text(" ".join(r["task"].split())[:80]))
    console.print(t)
    if any(r["status"] == "interrupted" for r in rows):
        console.print(Text("interrupted runs continue with: ponder resume RUN_ID", style="yellow"))


_STATUS = {"ok": "green", "running": "yellow", "interrupted": "magenta", "error": "red", "budget": "cyan",
           "cancelled": "magenta"}

__all__ = ["EXIT_USAGE", "engine_config", "read_prompt", "register"]
