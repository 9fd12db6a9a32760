"""`ponder mcp`: ponder's engines as MCP tools (`research`, `solve`), over stdio or HTTP
(see ponder.server.mcp_server)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import typer

from .render import fail
from .serve import TOOLS, split_list


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp_cmd)


def mcp_cmd(
    transport: Annotated[Literal["stdio", "http"], typer.Option(
        help="stdio (the client starts `ponder mcp`) or http (streamable HTTP at http://HOST:PORT/mcp).")] = "stdio",
    model: Annotated[str, typer.Option(help="Model of `solve`, and of `research`'s orchestrator.")] = "smollm2",
    swarm_model: Annotated[str | None, typer.Option(help="`research`'s orchestrator model (default: --model).")] = None,
    sub_model: Annotated[str | None, typer.Option(help="`research`'s sub-agents' model (default: the orchestrator's).")] = None,
    tools: Annotated[str, typer.Option(help="Tools of the runs, comma-separated: python, calculator, search.")] = TOOLS,
    max_steps: Annotated[int | None, typer.Option(help="Step budget of each run's main agent.")] = None,
    timeout_s: Annotated[float | None, typer.Option("--timeout", "--timeout-s",
                                                    help="Wall-clock budget of each run, seconds.")] = None,
    host: Annotated[str, typer.Option(help="http: bind address (a non-loopback one needs --token).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="http: port.")] = 8701,
    token: Annotated[str | None, typer.Option(help="http: bearer token clients must send. Default $PONDER_TOKEN.",
                                              show_default=False)] = None,
    db: Annotated[Path | None, typer.Option(help="Run store path (default $PONDER_HOME/ponder.db).")] = None,
) -> None:
    """Serve ponder's `research` (swarm) and `solve` (interleaved) as MCP tools."""
    from ..core.errors import ConfigError
    from ..server.auth import bind_problem, token_from_env
    from ..tools import BUILTIN_TOOLS
    from .options import at_least, check_port, positive

    try:
        check_port(port)
        at_least("--max-steps", max_steps, 1)
        positive("--timeout", timeout_s)
    except ConfigError as e:
        raise fail(str(e)) from None
    names = split_list(tools)
    if bad := [n for n in names if n not in BUILTIN_TOOLS]:
        raise fail(f"unknown tool {bad[0]!r} in --tools; use a comma-separated subset of: {', '.join(BUILTIN_TOOLS)}")
    tok = token_from_env(token)
    if transport == "http" and (problem := bind_problem(host, tok)):
        raise fail(problem)

    from ..server.mcp_server import MCPOptions, build_server, http_app, serve_stdio

    server = build_server(db=db, options=MCPOptions(model=model, swarm_model=swarm_model, sub_model=sub_model,
                                                    tools=names, max_steps=max_steps, timeout_s=timeout_s))
    if transport == "stdio":
        asyncio.run(serve_stdio(server))
        return
    import uvicorn

    uvicorn.run(http_app(server, host=host, token=tok), host=host, port=port, log_level="warning")
