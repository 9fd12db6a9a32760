"""MCP servers as ponder tools, through the official `mcp` SDK (1.x and 2.x).

    async with mcp_tools(stdio=["python", "server.py"]) as tools: ...
    async with mcp_tools(url="http://127.0.0.1:8000/mcp") as tools: ...

Each server tool becomes a `Tool` whose schema is the server's input schema and whose
function is `session.call_tool`. The session lives as long as the `async with` block: the
tools must not be called after it closes (they then report an error, not a crash).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .base import Tool, ToolFailure

# Only these variables reach a stdio server by default: the server is another program, and
# the parent's API keys are none of its business. Pass env= to give it more.
_SAFE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM", "PYTHONPATH", "VIRTUAL_ENV")


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    """SDK 1.x uses camelCase attributes (inputSchema, isError), 2.x snake_case."""
    for n in names:
        if hasattr(obj, n):
            v = getattr(obj, n)
            if v is not None:
                return v
    return default


def _content_text(result: Any) -> str:
    parts: list[str] = []
    for block in _field(result, "content", default=[]) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            res = getattr(block, "resource", None)
            parts.append(getattr(res, "text", None) or f"[resource {getattr(res, 'uri', '')}]")
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} content, {getattr(block, 'mimeType', getattr(block, 'mime_type', ''))}]")
        else:
            parts.append(str(block))
    if not parts:
        structured = _field(result, "structured_content", "structuredContent")
        if structured is not None:
            import json

            return json.dumps(structured, ensure_ascii=False)
    return "\n".join(parts)


def _wrap(session: Any, spec: Any, *, timeout_s: float, prefix: str, alive: dict[str, bool]) -> Tool:
    name = spec.name
    schema = dict(_field(spec, "input_schema", "inputSchema", default={}) or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})

    async def call(**kwargs: Any) -> str:
        if not alive["open"]:
            raise ToolFailure(f"MCP tool {name!r} is no longer available: its server session was closed")
        try:
            result = await session.call_tool(name, kwargs)
        except Exception as e:  # noqa: BLE001 - protocol errors become tool errors
            raise ToolFailure(f"MCP server error calling {name!r}: {type(e).__name__}: {e}") from None
        text = _content_text(result)
        if _field(result, "is_error", "isError", default=False):
            raise ToolFailure(text or f"MCP tool {name!r} reported an error")
        return text

    return Tool(
        name=prefix + name,
        description=_field(spec, "description", default="") or name,
        parameters=schema,
        fn=call,
        timeout_s=timeout_s,
    )


@contextlib.asynccontextmanager
async def mcp_session(
    *,
    stdio: Sequence[str] | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Any]:
    """An initialized `mcp.ClientSession` over stdio (a command line) or streamable HTTP."""
    if (stdio is None) == (url is None):
        raise ValueError("mcp_tools needs exactly one of stdio=[command, *args] or url='http://host:port/mcp'")
    from mcp import ClientSession

    async with contextlib.AsyncExitStack() as stack:
        if stdio is not None:
            from mcp import StdioServerParameters
            from mcp.client.stdio import stdio_client

            if not stdio:
                raise ValueError("stdio= must be a non-empty command line, e.g. ['python', 'server.py']")
            child_env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
            child_env.update(env or {})
            params = StdioServerParameters(command=stdio[0], args=list(stdio[1:]), env=child_env, cwd=cwd)
            streams = await stack.enter_async_context(stdio_client(params))
        else:
            assert url is not None
            streams = await stack.enter_async_context(_http_client(url, headers))
        read, write = streams[0], streams[1]
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def _http_client(url: str, headers: dict[str, str] | None) -> Any:
    try:  # SDK 2.x
        from mcp.client.streamable_http import streamable_http_client

        if headers:
            import httpx2  # type: ignore[import-not-found]

            return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))
        return streamable_http_client(url)
    except ImportError:  # SDK 1.x
        from mcp.client.streamable_http import streamablehttp_client

        return streamablehttp_client(url, headers=headers)


@contextlib.asynccontextmanager
async def mcp_tools(
    *,
    stdio: Sequence[str] | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    prefix: str = "",
    include: Sequence[str] | None = None,
) -> AsyncIterator[list[Tool]]:
    """The server's tools as ponder Tools, valid inside the `async with` block.
    `prefix` renames them (e.g. "github_") when several servers have clashing names;
    `include` keeps only the named tools."""
    async with mcp_session(stdio=stdio, url=url, env=env, cwd=cwd, headers=headers) as session:
        listed = await session.list_tools()
        alive = {"open": True}
        tools = [
            _wrap(session, spec, timeout_s=timeout_s, prefix=prefix, alive=alive)
            for spec in listed.tools
            if include is None or spec.name in include
        ]
        try:
            yield tools
        finally:
            alive["open"] = False
