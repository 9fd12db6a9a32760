"""Pooled aiohttp sessions for the HTTP backends: shared while used, closed when not.

One `aiohttp.ClientSession` per (event loop, `PoolKey`): keep-alive connections and many
concurrent streams for every model of an endpoint. The key holds everything that changes how
the session behaves (the endpoint and its connection limit). What differs between models on
one endpoint (API key headers, timeouts) is passed per request, never baked into the shared
session: a model's timeouts hold even when another model created the pool first.

Lifetime: a model acquires the session on its first call and releases it in `aclose()`; the
last release closes it. Sessions nobody released are closed when `asyncio.run` shuts the loop
down (a suspended async generator, which `loop.shutdown_asyncgens()` finalises, holds the
close), so a script that never calls `aclose()` still exits without "Unclosed client session".
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

DEFAULT_MAX_CONNECTIONS = 512
READ_BUFSIZE = 2**20  # an SSE line may carry a large tool-call argument


@dataclass(frozen=True, slots=True)
class PoolKey:
    """Everything a pooled session is built from: equal keys may share one session."""

    base_url: str
    max_connections: int = DEFAULT_MAX_CONNECTIONS


class _LoopPools:
    __slots__ = ("sessions", "users", "guard")

    def __init__(self) -> None:
        self.sessions: dict[PoolKey, aiohttp.ClientSession] = {}
        self.users: dict[PoolKey, weakref.WeakSet[object]] = {}
        self.guard: AsyncIterator[None] | None = None

    async def close_all(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        self.users.clear()
        for s in sessions:
            await s.close()


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = weakref.WeakKeyDictionary()


def _new_session(key: PoolKey) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=key.max_connections, ttl_dns_cache=300),
        # Only a default for callers that pass no timeout; the backends pass theirs per request.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=300.0),
        read_bufsize=READ_BUFSIZE,
        # An API client keeps no cookies: one model's cookies must not ride on another's calls.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def _close_at_shutdown(pools: _LoopPools) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await pools.close_all()


def _pools() -> _LoopPools:
    loop = asyncio.get_running_loop()
    pools = _POOLS.get(loop)
    if pools is None:
        pools = _POOLS[loop] = _LoopPools()
    return pools


async def acquire(key: PoolKey, owner: object) -> aiohttp.ClientSession:
    """The loop's session for `key`, opened if needed; `owner` holds it until `release`."""
    pools = _pools()
    if pools.guard is None:
        guard = _close_at_shutdown(pools)
        await guard.__anext__()  # suspended at its `yield` until the loop shuts down
        pools.guard = guard
    session = pools.sessions.get(key)
    if session is None or session.closed:
        session = pools.sessions[key] = _new_session(key)
    pools.users.setdefault(key, weakref.WeakSet()).add(owner)
    return session


async def release(key: PoolKey, owner: object) -> None:
    """`owner` no longer needs the session; the last owner's release closes it."""
    loop = asyncio.get_running_loop()
    pools = _POOLS.get(loop)
    if pools is None:
        return
    users = pools.users.get(key)
    if users is None or owner not in users:
        return  # not held through this loop (a session `shared_client` made stays open)
    users.discard(owner)
    if users:
        return
    del pools.users[key]
    session = pools.sessions.pop(key, None)
    if session is not None:
        await session.close()


def shared_client(base_url: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> aiohttp.ClientSession:
    """The loop's pooled session for an endpoint, for callers outside the model classes.
    It stays open until `close_clients()` or the end of the loop."""
    pools = _pools()
    key = PoolKey(base_url, max_connections)
    session = pools.sessions.get(key)
    if session is None or session.closed:
        session = pools.sessions[key] = _new_session(key)
    return session


async def close_clients() -> None:
    """Close this event loop's pooled sessions (the CLI calls it before the loop ends)."""
    pools = _POOLS.pop(asyncio.get_running_loop(), None)
    if pools is None:
        return
    if pools.guard is not None:
        await pools.guard.aclose()  # type: ignore[attr-defined]  # runs close_all
    else:
        await pools.close_all()
