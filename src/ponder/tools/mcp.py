"""MCP servers as ponder tools, through the official `mcp` SDK (1.x and 2.x).

    async with mcp_tools(stdio=["python", "server.py"]) as tools: ...
    async with mcp_tools(url="http://127.0.0.1:8000/mcp") as tools: ...

Each server tool becomes a `Tool` whose schema is the server's input schema and whose
function is `session.call_tool`. The session lives as long as the `async with` block: the
tools must not be called after it closes (they then report an error, not a crash).

Nothing waits forever and nothing surfaces as a raw `ExceptionGroup`: start-up (launching the
command, the MCP handshake, listing the tools) has `startup_timeout_s`, each call `timeout_s`,
and every failure is one `MCPStartupError` / tool error line that names the server command.
A start-up failure says why where it can tell: the command was not found, it exited (with the
tail of its stderr), it printed something that is not MCP JSON-RPC on stdout (the usual sign
that the command is not an MCP server), or it never answered the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

from ..core.errors import ConfigError
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


class MCPStartupError(ConfigError):
    """An MCP server could not be started or did not complete the MCP handshake."""


class _QuietParseErrors(logging.Filter):
    """The SDK logs a full traceback for every stdout line that is not JSON-RPC; ponder reports
    such lines itself (in the start-up error), so the traceback becomes a debug record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "JSONRPC" in record.getMessage():
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


logging.getLogger("mcp.client.stdio").addFilter(_QuietParseErrors())


def _label(stdio: Sequence[str] | None, url: str | None) -> str:
    return f"`{shlex.join(stdio)}`" if stdio else f"at {url}"


def _fix(label: str) -> str:
    if label.startswith("at "):
        return "check the URL (usually ending in /mcp) and that the server is running"
    return "check that the command starts an MCP server"


def _leaf(e: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return e


def _describe(e: BaseException) -> str:
    e = _leaf(e)
    text = " ".join(str(e).split())
    if type(e).__name__ == "MCPError" or hasattr(e, "error"):  # the SDK's JSON-RPC error
        err = getattr(e, "error", None)
        msg = getattr(err, "message", None) or text
        data = getattr(err, "data", None)
        return f"{msg} ({data})" if data else msg
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _StartupWatch:
    """What a starting server did that explains a failure: stdout lines that were not JSON-RPC,
    and its stderr (captured to a temporary file, shown as a tail)."""

    def __init__(self) -> None:
        self.junk: list[str] = []
        self.errlog: IO[str] | None = None

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception) and len(self.junk) < 3:
            errors = getattr(message, "errors", None)
            line = None
            if callable(errors):
                with contextlib.suppress(Exception):
                    line = errors()[0].get("input")
            self.junk.append(str(line if line is not None else message)[:80])

    def close(self) -> None:
        if self.errlog is not None:
            self.errlog.close()

    def stderr_tail(self) -> str:
        if self.errlog is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self.errlog.flush()
            self.errlog.seek(0)
            lines = [ln.strip() for ln in self.errlog.read()[-4000:].splitlines() if ln.strip()]
            return " | ".join(lines[-3:])[-300:]
        return ""

    def hints(self) -> str:
        out = ""
        if tail := self.stderr_tail():
            out += f"; its stderr ends: {tail!r}"
        if self.junk:
            out += f"; it wrote {self.junk[0]!r} on stdout, which is not MCP JSON-RPC (is this command an MCP server?)"
        return out


def _wrap(session: Any, spec: Any, *, timeout_s: float, prefix: str, alive: dict[str, bool], label: str) -> Tool:
    name = spec.name
    schema = dict(_field(spec, "input_schema", "inputSchema", default={}) or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})

    async def call(**kwargs: Any) -> str:
        if not alive["open"]:
            raise ToolFailure(f"MCP tool {name!r} is no longer available: its server session was closed")
        try:
            async with asyncio.timeout(timeout_s):
                result = await session.call_tool(name, kwargs)
        except TimeoutError:
            raise ToolFailure(f"MCP tool {name!r} of server {label} did not answer within {timeout_s:g} s (timeout_s): "
                              "the server may be stuck, or the request too large for that time") from None
        except Exception as e:  # noqa: BLE001 - protocol errors become tool errors
            raise ToolFailure(f"MCP server {label} failed calling {name!r}: {_describe(e)}") from None
        text = _content_text(result)
        if _field(result, "is_error", "isError", default=False):
            raise ToolFailure(text or f"MCP tool {name!r} reported an error")
        return text

    return Tool(
        name=prefix + name,
        description=_field(spec, "description", default="") or name,
        parameters=schema,
        fn=call,
        timeout_s=timeout_s + 1.0,  # the MCP limit above, whose message names the server, fires first
    )


@contextlib.asynccontextmanager
async def mcp_session(
    *,
    stdio: Sequence[str] | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    headers: dict[str, str] | None = None,
    startup_timeout_s: float = 30.0,
) -> AsyncIterator[Any]:
    """An initialized `mcp.ClientSession` over stdio (a command line) or streamable HTTP.
    Raises `MCPStartupError` (one line naming the server) when it cannot be had within
    `startup_timeout_s`."""
    async with _started(stdio, url, env, cwd, headers, startup_timeout_s, list_tools=False) as (session, _):
        yield session


@contextlib.asynccontextmanager
async def _started(stdio: Sequence[str] | None, url: str | None, env: dict[str, str] | None, cwd: str | None,
                   headers: dict[str, str] | None, startup_timeout_s: float, *, list_tools: bool) -> AsyncIterator[tuple[Any, Any]]:
    if (stdio is None) == (url is None):
        raise ValueError("mcp_tools needs exactly one of stdio=[command, *args] or url='http://host:port/mcp'")
    if stdio is not None and not stdio:
        raise ValueError("stdio= must be a non-empty command line, e.g. ['python', 'server.py']")
    if not startup_timeout_s > 0:
        raise ValueError(f"startup_timeout_s must be a positive number of seconds, got {startup_timeout_s!r}")
    from mcp import ClientSession

    label = _label(stdio, url)
    watch = _StartupWatch()
    stack = contextlib.AsyncExitStack()
    try:
        try:
            async with asyncio.timeout(startup_timeout_s):
                if stdio is not None:
                    from mcp import StdioServerParameters
                    from mcp.client.stdio import stdio_client

                    child_env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
                    child_env.update(env or {})
                    _check_command(stdio[0], child_env.get("PATH"), cwd)
                    watch.errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
                    params = StdioServerParameters(command=stdio[0], args=list(stdio[1:]), env=child_env, cwd=cwd)
                    streams = await stack.enter_async_context(stdio_client(params, errlog=watch.errlog))
                else:
                    assert url is not None
                    streams = await stack.enter_async_context(_http_client(url, headers))
                session = await stack.enter_async_context(
                    ClientSession(streams[0], streams[1], message_handler=watch.on_message))
                await session.initialize()
                listed = await session.list_tools() if list_tools else None
        except BaseException as e:  # the SDK's task groups cancel us and raise groups: one line instead
            # Let the SDK's contexts see the error as `async with` would (they turn their own
            # cancellation back into the real error), then decide what to tell the user.
            failure = await _unwind(stack, e)
            if isinstance(e, KeyboardInterrupt | SystemExit | MCPStartupError) or _cancelled_from_outside():
                raise
            if isinstance(e, TimeoutError):
                raise MCPStartupError(
                    f"MCP server {label} did not complete the MCP handshake within {startup_timeout_s:g} s "
                    f"(startup_timeout_s){watch.hints()}: {_fix(label)}, or raise startup_timeout_s if it is "
                    "slow to start") from None
            raise MCPStartupError(_startup_failure(label, failure, watch)) from None
        try:
            yield session, listed
        except BaseException as e:
            await _unwind(stack, e)
            raise
        await _unwind(stack, None)
    finally:
        watch.close()


def _cancelled_from_outside() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _unwind(stack: contextlib.AsyncExitStack, exc: BaseException | None) -> BaseException | None:
    """Exit the SDK's contexts with `exc` in flight; return what they raised instead (or `exc`).
    A failing server's teardown errors add nothing to the first error, so they are not raised;
    an outside cancellation or an interrupt is."""
    try:
        if exc is None:
            await stack.aclose()
        else:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
    except BaseException as raised:  # noqa: BLE001
        if isinstance(raised, KeyboardInterrupt | SystemExit) or _cancelled_from_outside():
            raise
        logging.getLogger(__name__).debug("MCP session teardown: %s", _describe(raised))
        return raised
    return exc


def _check_command(cmd: str, path: str | None, cwd: str | None) -> None:
    """Fail before spawning when the command cannot exist (the SDK's own error is a bare errno)."""
    if os.sep in cmd:
        full = cmd if os.path.isabs(cmd) else os.path.join(cwd or os.getcwd(), cmd)
        if not os.path.exists(full):
            raise MCPStartupError(f"MCP server command {cmd!r} does not exist: check the path")
    elif shutil.which(cmd, path=path) is None:
        raise MCPStartupError(f"MCP server command {cmd!r} was not found on PATH: install it, or give its full path")


def _startup_failure(label: str, e: BaseException, watch: _StartupWatch) -> str:
    leaf = _leaf(e)
    if isinstance(leaf, OSError) and leaf.strerror:
        return f"MCP server {label} could not be started: {leaf.strerror}{watch.hints()}"
    what = _describe(e)
    if "connection closed" in what.lower():
        return (f"MCP server {label} exited (or closed its stdout) during start-up, before completing the MCP "
                f"handshake{watch.hints()}")
    return f"MCP server {label} failed the MCP handshake: {what}{watch.hints()}; {_fix(label)}"


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
    startup_timeout_s: float = 30.0,
    prefix: str = "",
    include: Sequence[str] | None = None,
) -> AsyncIterator[list[Tool]]:
    """The server's tools as ponder Tools, valid inside the `async with` block.
    `timeout_s` limits each call, `startup_timeout_s` the start (launch, handshake, tool list).
    `prefix` renames them (e.g. "github_") when several servers have clashing names;
    `include` keeps only the named tools."""
    label = _label(stdio, url)
    async with _started(stdio, url, env, cwd, headers, startup_timeout_s, list_tools=True) as (session, listed):
        alive = {"open": True}
        tools = [
            _wrap(session, spec, timeout_s=timeout_s, prefix=prefix, alive=alive, label=label)
            for spec in listed.tools
            if include is None or spec.name in include
        ]
        try:
            yield tools
        finally:
            alive["open"] = False
