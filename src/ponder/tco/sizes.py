"""Token-count and list parsing for the CLI ("8k" = 8192 tokens, as serving benchmarks use)."""

from __future__ import annotations

import re

from ..core.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_MULT = {"": 1, "k": 1024, "m": 1024 * 1024}


def parse_size(text: str | int, what: str = "size") -> int:
    """'8k' -> 8192, '1.5k' -> 1536, '300' -> 300. Rejects anything else with a clear message."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise ConfigError(
                f"bad {what} {text!r}: use a whole number with an optional k or m suffix (k = 1024), e.g. 8k, 1k, 512"
            )
        value = int(float(m.group(1)) * _MULT[m.group(2).lower()])
    if value < 1:
        raise ConfigError(f"bad {what} {text!r}: must be at least 1")
    return value


def parse_list(text: str, what: str = "users") -> list[int]:
    """'1,8,64' -> [1, 8, 64] (sizes allowed, e.g. '1k'); de-duplicated, order kept."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ConfigError(f"bad {what} {text!r}: give a comma-separated list such as 1,8,64")
    out: list[int] = []
    for p in parts:
        v = parse_size(p, what)
        if v not in out:
            out.append(v)
    return out
