"""MCP servers as tools, against a real server (the SDK's FastMCP/MCPServer) over stdio and
streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from ponder.core.messages import ToolCall
from ponder.tools import Toolbox
from ponder.tools.mcp import mcp_tools

SERVER = str(Path(__file__).with_name("mcp_test_server.py"))


async def _check_tools(tools) -> None:
    box = Toolbox(tools)
    assert {"add", "shout", "fail"} <= set(box.names())
    schema = box.get("add").schema()["function"]
    assert schema["description"] == "Add two integers."
    assert schema["parameters"]["required"] == ["a", "b"]
    r = await box.run(ToolCall(id="1", name="add", arguments={"a": 2, "b": 40}))
    assert r.ok and r.content == "42"
    r = await box.run(ToolCall(id="2", name="shout", arguments={"text": "hi"}))
    assert r.ok and r.content == "HI"
    r = await box.run(ToolCall(id="3", name="fail", arguments={"reason": "nope"}))
    assert not r.ok and r.error
    r = await box.run(ToolCall(id="4", name="add", arguments={"a": 1}))
    assert not r.ok and "b: Field required" in r.error


async def test_stdio_server(monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-fake-should-not-leak")
    async with mcp_tools(stdio=[sys.executable, SERVER, "stdio"]) as tools:
        await _check_tools(tools)
        env_tool = next(t for t in tools if t.name == "env_keys")
        r = await Toolbox([env_tool]).run(ToolCall(id="5", name="env_keys", arguments={}))
        assert r.ok and "MOONSHOT_API_KEY" not in r.content and "PATH" in r.content
    r = await Toolbox(tools).run(ToolCall(id="6", name="add", arguments={"a": 1, "b": 2}))
    assert not r.ok and "session was closed" in r.error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_streamable_http_server() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, SERVER, "http", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=dict(os.environ),
    )
    try:
        for _ in range(150):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("MCP test server did not start")
        async with mcp_tools(url=f"http://127.0.0.1:{port}/mcp", prefix="srv_") as tools:
            names = [t.name for t in tools]
            assert "srv_add" in names
            for t in tools:
                t.name = t.name.removeprefix("srv_")
            await _check_tools(tools)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_needs_exactly_one_transport() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        async with mcp_tools():
            pass
