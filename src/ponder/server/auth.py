"""Bearer-token auth for `ponder serve` and `ponder mcp` over HTTP.

A run executes tools (a Python sandbox, file access) and spends the operator's API keys, so
a server anyone on the network can reach must ask for a token. The rule is simple and
checked before binding: a loopback address may run without one; any other address needs
`--token` (or `PONDER_TOKEN`), else the command refuses to start.

The check is a pure ASGI middleware (no per-request task or body buffering, streaming
untouched): every path except `/healthz` needs `Authorization: Bearer <token>`, compared in
constant time. A refusal answers 401 in OpenAI's error shape, which the `openai` SDK turns
into its `AuthenticationError`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Any

from ..core import fastjson

TOKEN_ENV = "PONDER_TOKEN"
OPEN_PATHS = frozenset({"/healthz"})


def token_from_env(token: str | None) -> str | None:
    """`--token` if given, else `$PONDER_TOKEN`; an empty value counts as none."""
    t = token if token is not None else os.environ.get(TOKEN_ENV)
    return t or None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, `localhost`).
    Anything else, a host name included, is treated as reachable from outside."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def bind_problem(host: str, token: str | None) -> str | None:
    """Why binding `host` without a token is refused (one line naming the fix), or None."""
    if token or is_loopback(host):
        return None
    return (f"refusing to listen on {host} without a token: runs execute tools and spend your API keys. "
            f"Set --token (or {TOKEN_ENV}) and give it to clients as their API key, or bind 127.0.0.1")


def _unauthorized(message: str) -> tuple[dict[str, Any], bytes]:
    body = fastjson.dumps({"error": {"message": message, "type": "authentication_error", "param": None,
                                     "code": "invalid_api_key"}}).encode()
    start = {"type": "http.response.start", "status": 401,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"www-authenticate", b'Bearer realm="ponder"')]}
    return start, body


COOKIE = b"ponder_token"


class BearerAuth:
    """ASGI middleware: requests must carry `Authorization: Bearer <token>`. A browser cannot
    set that header on a page load, so the run viewer also accepts the token once in the
    address (`/?token=…`), which sets an HTTP-only, same-site cookie that later requests carry."""

    def __init__(self, app: Any, token: str, open_paths: frozenset[str] = OPEN_PATHS):
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._token = token.encode()
        self.open_paths = open_paths

    def _from_browser(self, scope: dict[str, Any]) -> tuple[bool, bool]:
        """(authorized, set the cookie): the cookie, or `?token=` in the query string."""
        for k, v in scope.get("headers") or ():
            if k == b"cookie":
                for part in v.split(b";"):
                    name, _, value = part.strip().partition(b"=")
                    if name == COOKIE and hmac.compare_digest(value, self._token):
                        return True, False
        from urllib.parse import parse_qs

        given = parse_qs((scope.get("query_string") or b"").decode("latin-1")).get("token", [""])[0].encode()
        if given and hmac.compare_digest(given, self._token):
            return True, True
        return False, False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = b""
        for k, v in scope.get("headers") or ():
            if k == b"authorization":
                given = v
                break
        if given and hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        ok, set_cookie = (False, False) if given else self._from_browser(scope)
        if ok:
            if not set_cookie:
                await self.app(scope, receive, send)
                return
            cookie = COOKIE + b"=" + self._token + b"; HttpOnly; SameSite=Strict; Path=/"

            async def send_with_cookie(msg: dict[str, Any]) -> None:
                if msg["type"] == "http.response.start":
                    msg = {**msg, "headers": [*msg.get("headers", []), (b"set-cookie", cookie)]}
                await send(msg)

            await self.app(scope, receive, send_with_cookie)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        why = ("wrong token in the Authorization header" if given else
               "this server needs a token: send `Authorization: Bearer <token>` (the OpenAI SDK's api_key), "
               "or open the viewer once as /?token=<token>")
        start, body = _unauthorized(why)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def protect(app: Any, token: str | None) -> Any:
    """`app` behind bearer auth when a token is set, else `app` itself."""
    return BearerAuth(app, token) if token else app
