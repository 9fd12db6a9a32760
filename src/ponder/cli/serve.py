"""`ponder serve`: the HTTP/SSE server (see ponder.server.app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)


def serve_cmd(
    host: Annotated[str, typer.Option(help="Bind address. Keep 127.0.0.1 unless a proxy authenticates: runs execute tools.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8700,
    db: Annotated[Path | None, typer.Option(help="Run store path (default $PONDER_HOME/ponder.db).")] = None,
) -> None:
    """Serve POST /v1/runs (events as Server-Sent Events), GET /v1/runs, GET /v1/models, and the
    run viewer at / (runs list) and /runs/RUN_ID."""
    import uvicorn

    from ..server import create_app
    from ..server.discovery import announce

    with announce(host, port, db):  # so `ponder run` and `ponder view` find this server
        uvicorn.run(create_app(db=db), host=host, port=port, log_level="info")
