"""`ponder compare`: which design fits my workload, measured.

Runs suites x modes x models, stores every task's result in SQLite as it finishes
(resumable with --resume ID), prints the verdict tables and writes a self-contained
HTML report. `ponder compare --demo` is what `make demo` runs: small offline suites
with the embedded model, a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ConfigError, PonderError
from .render import fail, run_async

# The embedded model runs one call at a time, so concurrency 1; the time budget keeps
# `make demo` near 6 minutes even on a slow or busy machine (what is left stays resumable,
# and the report says so). Thinking is off and the first step must call a tool: on the
# 135M model, elicited thinking degenerates ("1.1.1.1…" for hundreds of tokens) and an
# unforced first step answers without looking anything up (docs/compare.md has the numbers).
DEMO = {"suites": ["lookup-wide", "lookup-chain", "reason", "deep", "wide"], "modes": ["swarm", "interleaved", "single"],
        "models": ["smollm2"], "n": 1, "suite_n": {"lookup-wide": 2, "lookup-chain": 8}, "max_steps": 12, "sub_max_steps": 4,
        "task_timeout_s": 45.0, "concurrency": 1, "max_parallel": 8, "max_tokens": 512, "time_budget_s": 330.0,
        "thinking": "off", "first_tool_choice": "required"}


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)


def compare_cmd(
    suite: Annotated[list[str] | None, typer.Option("--suite", "-s", help="lookup-wide | lookup-chain | deep | wide | reason (repeatable).")] = None,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="swarm | interleaved | single | auto (repeatable).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model name or DIALECT:URL#ID (repeatable).")] = None,
    n: Annotated[int, typer.Option("--n", help="Tasks per suite.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the generated suites.")] = 0,
    db: Annotated[Path, typer.Option(help="SQLite file for results.")] = Path(".ponder/compare.db"),
    out: Annotated[Path | None, typer.Option(help="HTML report path (default reports/compare-<id>.html).")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume the comparison with this id (its stored settings apply).")] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks running at once.")] = 2,
    jsonl: Annotated[list[Path] | None, typer.Option("--jsonl", help="A user suite: JSONL with question, answer, grader.")] = None,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="A folder of documents or a saved index (`ponder corpus build`): JSONL suites get search tools over it.")] = None,
    thinking: Annotated[str, typer.Option(help="Engine thinking: on | off | auto.")] = "auto",
    first_tool_choice: Annotated[str | None, typer.Option(help="required: an interleaved agent's first step must call a tool.")] = None,
    sub_max_steps: Annotated[int | None, typer.Option(help="Step budget per swarm sub-agent (default: --max-steps).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Small offline suites with the embedded model (what `make demo` runs).")] = False,
    demo_sizes: Annotated[bool, typer.Option("--demo-sizes", help="The demo's small task sizes (lookup-wide 8-10 items, wide 3-4 companies).")] = False,
    max_steps: Annotated[int, typer.Option(help="Step budget per engine run.")] = 12,
    task_timeout: Annotated[float, typer.Option(help="Wall-clock limit per task, seconds.")] = 600.0,
    judge_model: Annotated[str | None, typer.Option(help="Model that grades free-form ('judge') answers.")] = None,
    retry_errors: Annotated[bool, typer.Option(help="On --resume, rerun tasks that errored.")] = False,
    time_budget: Annotated[float | None, typer.Option(help="Stop starting tasks after this many seconds (resumable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout (tables go to stderr).")] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    ray: Annotated[bool, typer.Option("--ray", help="Run the tasks on a Ray cluster (the one `ray start` began on this machine, or $RAY_ADDRESS); results land here.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="The Ray cluster to use (HOST:PORT or ray://HOST:PORT); implies --ray.")] = None,
) -> None:
    """Compare Swarm, Interleaved and a single call on offline suites; print the verdict, write an HTML report."""
    from rich.console import Console

    from ..bench.html import write_html
    from ..bench.report import NotRun, render_terminal, summary_dict
    from ..bench.router import fit_router
    from ..bench.runner import CompareConfig, Runner
    from ..bench.store import CompareStore

    # --json: stdout carries one JSON object and nothing else; the tables go to stderr
    console = Console(stderr=json_out, width=None if (sys.stderr if json_out else sys.stdout).isatty() else 180)
    store = CompareStore(db)
    if resume:
        try:
            cfg = CompareConfig.from_dict(store.config(resume))
        except KeyError as e:
            raise fail(e.args[0]) from None
        cfg.concurrency = concurrency
    elif demo:
        cfg = CompareConfig(**{**DEMO, "suites": suite or DEMO["suites"], "modes": mode or DEMO["modes"],
                               "models": model or DEMO["models"], "seed": seed, "demo": True})
        if time_budget is not None:
            cfg.time_budget_s = time_budget
    else:
        cfg = CompareConfig(suites=list(suite) if suite is not None else ([] if jsonl else ["deep", "wide", "reason"]),
                            modes=mode or ["swarm", "interleaved", "single"], models=model or ["smollm2"], n=n,
                            seed=seed, jsonl=[str(p) for p in jsonl or []], concurrency=concurrency,
                            max_steps=max_steps, task_timeout_s=task_timeout, judge_model=judge_model,
                            time_budget_s=time_budget, thinking=thinking, first_tool_choice=first_tool_choice,
                            sub_max_steps=sub_max_steps, corpus=str(corpus) if corpus is not None else None,
                            demo=demo_sizes)
    if ray or ray_address or resume:  # where to run is this invocation's choice, also on --resume
        cfg.executor, cfg.ray_address = ("ray", ray_address) if ray or ray_address else ("local", None)
    try:
        if retry_errors and not resume:
            raise ValueError("--retry-errors reruns the errored tasks of a stored comparison: give --resume ID too")
        cfg.validate()
    except ValueError as e:
        raise fail(str(e)) from None
    if corpus is not None and not cfg.jsonl:
        console.print("[yellow]note:[/] --corpus gives search tools to JSONL suites (--jsonl FILE); the built-in "
                      "suites search their own generated corpus")
    router = fit_router([r for r in store.results() if r.comparison_id != resume]) if "auto" in cfg.modes else None
    try:
        runner = Runner(cfg, store, router=router, progress=progress) if router else Runner(cfg, store, progress=progress)
    except (ConfigError, PonderError, ValueError) as e:
        raise fail(str(e)) from None
    if router:
        console.print(f"router: {router.describe()}")
    t0 = time.perf_counter()
    try:
        cid = run_async(runner.run(resume, retry_errors=retry_errors))
    except KeyboardInterrupt:
        last = store.comparisons()[-1][0] if store.comparisons() else "?"
        console.print(f"\n[yellow]interrupted[/]; finished tasks are stored. Resume with: ponder compare --resume {last} --db {db}")
        raise typer.Exit(130) from None
    except (ConfigError, PonderError, ValueError, RuntimeError) as e:
        raise fail(str(e)) from None
    records = store.results(cid)
    not_run = NotRun(runner.pending_keys(cid), f"ponder compare --resume {cid} --db {db}")
    if runner.skipped:
        console.print(f"[yellow]the time budget ({cfg.time_budget_s:g}s) stopped the comparison[/]: "
                      f"{runner.skipped} task(s) were not started")
    render_terminal(records, cid, console, config=cfg.to_dict(), not_run=not_run)
    path = write_html(records, cid, out, cfg.to_dict(), not_run)
    if json_out:
        sys.stdout.write(json.dumps({"comparison_id": cid, "report": str(path.resolve()), "db": str(db),
                                     "not_run": len(not_run.keys), "resume": not_run.resume if not_run.keys else None,
                                     **summary_dict(records)}, default=str) + "\n")
    console.print(f"comparison [bold]{cid}[/] · {len(records)} results · {time.perf_counter() - t0:.1f}s · db {db}")
    console.print(f"HTML report: [bold]{path.resolve()}[/]")
