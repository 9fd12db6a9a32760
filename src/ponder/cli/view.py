"""`ponder view [RUN_ID]`: open the run viewer in a browser.

A running `ponder serve` that holds the run is used when there is one (found through the
file it writes, or on the default port); otherwise this command serves the run store itself
(on `--port`, or a free port when that one is taken) until Ctrl-C.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ..core.errors import ConfigError
from .render import EXIT_ERROR, console, fail


def register(app: typer.Typer) -> None:
    app.command("view")(view_cmd)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def view_cmd(
    run_id: Annotated[str | None, typer.Argument(help="A run id (or a unique prefix); none opens the runs list.")] = None,
    db: Annotated[Path | None, typer.Option(help="Run store (default $PONDER_HOME/ponder.db).")] = None,
    host: Annotated[str, typer.Option(help="Bind address when a server has to be started.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port when a server has to be started (a free one if it is taken).")] = 8700,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL; do not open a browser.")] = False,
) -> None:
    """Open a run's page in the web viewer (timeline, critical path, agents, steps)."""
    from ..core.store import RunStore
    from ..server.discovery import announce, base_url, viewer_url

    try:
        with RunStore(db) as store:
            rid = store.run(run_id)["id"] if run_id else None
            path = store.path
    except ConfigError as e:
        raise fail(str(e)) from None
    except KeyError as e:
        raise fail(str(e.args[0])) from None
    found = viewer_url(rid) if rid else None
    if found is not None:
        _open(found, no_browser)
        return
    if port == 0 or not _port_free(host, port):
        port = _free_port(host)
    base = base_url(host, port)
    url = f"{base}/runs/{rid}" if rid else f"{base}/"

    import uvicorn

    from ..server import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(db=path), host=host, port=port, log_level="warning"))

    def when_up() -> None:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            console.print(Text(f"serving {path} · Ctrl-C stops", style="dim"))
            _open(url, no_browser)

    threading.Thread(target=when_up, daemon=True).start()
    with announce(host, port, path):
        server.run()
    if not server.started:
        raise fail(f"could not serve the viewer on {host}:{port}; pick another --port", EXIT_ERROR)


def _open(url: str, no_browser: bool) -> None:
    console.print(Text(f"view {url}"))
    if not no_browser:
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001 - no browser here: the URL is printed
            pass
