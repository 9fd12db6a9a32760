"""What a failed HTTP answer means: whether to retry, when, and what to tell the user.

Retries are never earlier than the server asked (`Retry-After`, in seconds or as an HTTP
date, or OpenAI's `retry-after-ms`): jitter only ever adds to it, so a hundred sub-agents
told to wait 5 s do not all come back at once and none comes back early. Our own exponential
backoff (with ±50 % jitter, at most 30 s) applies when the server names no time.

An error body that is HTML is not the model server talking: it is a proxy, a gateway or a
web server in front of (or instead of) it. The message says so, with the page's title and
the usual fix, rather than quoting markup.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Mapping

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
MAX_BACKOFF_S = 30.0

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, or None if it named no (valid) time."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("Retry-After")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base_s: float, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt + 1`; never below `retry_after`."""
    own = min(base_s * (2**attempt), MAX_BACKOFF_S)
    jittered = own * (0.5 + random.random())
    if retry_after is None:
        return jittered
    return max(jittered, retry_after + own * 0.5 * random.random())


def looks_html(content_type: str | None, body: bytes) -> bool:
    if content_type and "html" in content_type.lower():
        return True
    head = body[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def html_error(status: int, body: bytes, url: str) -> str:
    """The message for an HTML answer where the API's JSON was expected."""
    m = _TITLE.search(body[:65536])
    title = " ".join(_TAGS.sub("", m.group(1).decode("utf-8", "replace")).split())[:120] if m else ""
    what = f"HTTP {status} with an HTML body" + (f" (page title: {title!r})" if title else "")
    return (f"{what}, not the API's JSON: a proxy, gateway or web server answered instead of the model server. "
            f"Check that base_url points at the OpenAI-compatible API root (usually ending in /v1; the request went "
            f"to {url}) and that the server behind any proxy is up.")


def provider_message(text: str) -> str:
    """The provider's own error message from a JSON error body (else the text, shortened)."""
    try:
        data = json.loads(text)
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("msg") or err)[:500]
        return str(err)[:500]
    except (ValueError, AttributeError):
        return text[:500]
