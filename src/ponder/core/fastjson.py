"""JSON on the hot path: orjson where it can, the standard library where it cannot.

A swarm step parses several SSE chunks and encodes the new messages of a history; with the
standard library that is a visible share of a step's client CPU, orjson does it several
times faster. Where the two differ:

* `dumps`: what orjson refuses (non-string keys, integers beyond 64 bits) goes through
  `json`; NaN and infinities are written as `null`, which is strict JSON (the standard
  library's `NaN` token is not, and providers reject it).
* `loads`: integers beyond 64 bits come back as floats. It parses provider envelopes (SSE
  chunks), whose big payloads, tool-call arguments, are JSON *strings* that
  `dialects.parse_arguments` parses with `json`, exactly. Text orjson rejects is retried
  with `json`, so its extensions (NaN) parse and its error messages are what users see.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text of `obj` (non-ASCII kept as UTF-8)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else None).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(obj, ensure_ascii=False, sort_keys=sort_keys, default=str)


def loads(data: str | bytes) -> Any:
    """Parse JSON; raises ValueError (json.JSONDecodeError) on bad input, like `json.loads`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # its error message, or what orjson refuses but JSON allows
