"""`ponder` entry point. Each sub-module registers its own commands on the app."""

from __future__ import annotations

import typer

from . import chat, compare, corpus, export, mcp_cmd, probe, run, serve, tco, view

app = typer.Typer(
    name="ponder",
    help="Slow AI: Swarm and Interleaved reasoning over real models, measured.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold API keys
)

for _mod in (chat, probe, run, export, compare, corpus, tco, serve, mcp_cmd, view):
    _mod.register(app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
