"""HTTP front end: runs as Server-Sent Events, one more consumer of the event stream, and the
run viewer. `create_app` is imported on first use, so `ponder.server.discovery` (which
`ponder run` calls at the end of every run) does not pull in the web stack."""

from typing import Any

__all__ = ["RunRequest", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'ponder.server' has no attribute {name!r}")
