"""HTTP front end: runs as Server-Sent Events, one more consumer of the event stream."""

from .app import RunRequest, create_app

__all__ = ["RunRequest", "create_app"]
