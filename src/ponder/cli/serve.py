"""`ponder serve`: the HTTP server (ponder's run API and the OpenAI-compatible endpoints;
see ponder.server.app and ponder.server.openai_api)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .render import fail

TOOLS = "calculator,search"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


def split_list(value: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip())


def serve_cmd(
    host: Annotated[str, typer.Option(help="Bind address. A non-loopback address needs --token: runs execute tools.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8700,
    db: Annotated[Path | None, typer.Option(help="Run store path (default $PONDER_HOME/ponder.db).")] = None,
    token: Annotated[str | None, typer.Option(
        help="Bearer token every request must carry (clients: the OpenAI SDK's api_key). Default $PONDER_TOKEN.",
        show_default=False)] = None,
    allow_endpoint: Annotated[list[str] | None, typer.Option(
        "--allow-endpoint", help="An endpoint URL clients may name as DIALECT:URL#MODEL_ID (repeatable). "
                                 "Otherwise only catalog models run.")] = None,
    tools: Annotated[str, typer.Option(help="Server-side tools of engine runs (interleaved/..., swarm/...), "
                                            "comma-separated: python, calculator, search.")] = TOOLS,
    max_request_mb: Annotated[float, typer.Option(help="Largest request body accepted (413 beyond).")] = 8.0,
    record_passthrough: Annotated[bool, typer.Option(
        help="Journal direct model calls (plain model names) in the run store, like engine runs.")] = True,
    reasoning_cache_mb: Annotated[float, typer.Option(
        help="Memory for the reasoning kept to restore clients' histories (0: none).")] = 128.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level (warning: no line per request).")] = "info",
) -> None:
    """Serve OpenAI's POST /v1/chat/completions and GET /v1/models, ponder's POST /v1/runs
    (events as Server-Sent Events), GET /v1/runs, and the run viewer at / and /runs/RUN_ID."""
    from ..core.errors import ConfigError
    from ..server.auth import bind_problem, token_from_env
    from .options import check_base_url, check_port

    tok = token_from_env(token)
    if problem := bind_problem(host, tok):  # the first thing to know
        raise fail(problem)
    try:
        check_port(port)
        for url in allow_endpoint or ():
            check_base_url(url.rstrip("/"), "--allow-endpoint")
    except ConfigError as e:
        raise fail(str(e)) from None
    if not max_request_mb > 0 or not reasoning_cache_mb >= 0:
        raise fail("--max-request-mb must be positive and --reasoning-cache-mb zero or more")
    from ..tools import BUILTIN_TOOLS

    names = split_list(tools)
    if bad := [n for n in names if n not in BUILTIN_TOOLS]:
        raise fail(f"unknown tool {bad[0]!r} in --tools; use a comma-separated subset of: {', '.join(BUILTIN_TOOLS)}")
    endpoints = tuple(u.rstrip("/") for u in allow_endpoint or ())

    import uvicorn

    from ..server import create_app
    from ..server.discovery import announce
    from ..server.openai_api import OpenAIOptions

    options = OpenAIOptions(allow_endpoints=endpoints, max_request_bytes=int(max_request_mb * 2**20), tools=names,
                            record_passthrough=record_passthrough, cache_bytes=int(reasoning_cache_mb * 2**20))
    with announce(host, port, db):  # so `ponder run` and `ponder view` find this server
        uvicorn.run(create_app(db=db, token=tok, openai=options), host=host, port=port, log_level=log_level)
