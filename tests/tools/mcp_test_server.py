"""A tiny MCP server used by the tests (stdio or streamable HTTP on 127.0.0.1).

Usage: python mcp_test_server.py stdio | python mcp_test_server.py http PORT
"""

from __future__ import annotations

import os
import sys

try:  # SDK 2.x
    from mcp.server.mcpserver import MCPServer as _Server
except ImportError:  # SDK 1.x
    from mcp.server.fastmcp import FastMCP as _Server

server = _Server("ponder-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason."""
    raise ValueError(reason)


@server.tool()
async def sleepy(seconds: float) -> str:
    """Answer after `seconds` (a stuck server, for call timeouts)."""
    import asyncio

    await asyncio.sleep(seconds)
    return "awake"


@server.tool()
def env_keys() -> str:
    """Names of the environment variables the server sees (to check none leak)."""
    return ",".join(sorted(os.environ))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "stdio":
        server.run("stdio")
    else:
        port = int(sys.argv[2])
        try:
            server.run("streamable-http", host="127.0.0.1", port=port)
        except TypeError:  # SDK 1.x: host/port live in settings
            server.settings.host = "127.0.0.1"
            server.settings.port = port
            server.run("streamable-http")
