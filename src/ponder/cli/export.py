"""`ponder export-trajectories`: stored runs as JSONL for RL post-training."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import PonderError
from .render import fail, note


def register(app: typer.Typer) -> None:
    app.command("export-trajectories")(export_trajectories_cmd)


def export_trajectories_cmd(
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db, ~/.ponder/ponder.db).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output .jsonl file (default: stdout).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Export one run (id or id prefix); default all runs.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Accepted for symmetry: the output is always JSON lines.")] = False,
) -> None:
    """Write stored runs as JSONL trajectories (messages per agent, tool calls, PARL rewards) for RL."""
    from ..core.store import RunStore
    from ..engines.swarm.trajectories import iter_store_trajectories, write_jsonl

    try:
        store = RunStore(db)
    except PonderError as e:
        raise fail(str(e)) from None
    try:
        trajs = iter_store_trajectories(store, run)
        n = write_jsonl(trajs, out) if out is not None else write_jsonl(trajs, sys.stdout)
    except KeyError as e:
        raise fail(str(e.args[0])) from None
    finally:
        store.close()
    note(f"exported {n} run(s)" + (f" to {out}" if out else ""), style="dim")
