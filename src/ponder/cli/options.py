"""Checks of command-line values that typer cannot express, each a one-line `ConfigError`
naming the flag, the value and the fix (the commands turn it into `error: ...`, exit 2).

Numbers are checked here rather than with typer's `min=`/`max=` so that every bad value
reads the same way as every other ponder error (one line on stderr, no usage box), and so
that the check runs before anything is written (no run row, no comparison).
"""

from __future__ import annotations

from ..core.errors import ConfigError
from ..models.catalog import base_url_problem


def check_base_url(url: str | None, flag: str = "--base-url") -> None:
    if url is not None and (problem := base_url_problem(url, flag)):
        raise ConfigError(problem)


def check_port(port: int, flag: str = "--port") -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"{flag} {port} is out of range: use a port from 1 to 65535")


def at_least(flag: str, value: float | None, low: float) -> None:
    """`value` (when given) must be >= `low`."""
    if value is not None and not value >= low:  # NaN too
        raise ConfigError(f"{flag} must be at least {low:g} (got {value:g})")


def positive(flag: str, value: float | None) -> None:
    """`value` (when given) must be > 0: a limit of zero seconds or dollars means nothing."""
    if value is not None and not value > 0:
        raise ConfigError(f"{flag} must be greater than 0 (got {value:g}); leave it out for no limit")


__all__ = ["at_least", "check_base_url", "check_port", "positive"]
