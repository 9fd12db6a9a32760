"""MCP servers as tools, against a real server (the SDK's FastMCP/MCPServer) over stdio and
streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from ponder.core.messages import ToolCall
from ponder.tools import Toolbox
from ponder.tools.mcp import MCPStartupError, mcp_tools

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


async def test_a_stuck_call_ends_at_the_call_timeout_naming_the_server_and_the_session_survives() -> None:
    async with mcp_tools(stdio=[sys.executable, SERVER, "stdio"], timeout_s=0.5) as tools:
        box = Toolbox(tools)
        t0 = time.perf_counter()
        r = await box.run(ToolCall(id="1", name="sleepy", arguments={"seconds": 30}))
        took = time.perf_counter() - t0
        assert not r.ok and "did not answer within 0.5 s (timeout_s)" in r.error and "mcp_test_server.py" in r.error
        assert took < 3.0
        r = await box.run(ToolCall(id="2", name="add", arguments={"a": 1, "b": 2}))
        assert r.ok and r.content == "3"


NOT_MCP = {
    # command -> what the one-line error must say
    "prints_and_exits": ([sys.executable, "-c", "print('hello, I am a web app'); import sys; "
                          "sys.stderr.write('listening on 8080\\n')"],
                         ["exited (or closed its stdout) during start-up", "'hello, I am a web app'",
                          "is this command an MCP server?", "its stderr ends: 'listening on 8080'"]),
    "silent_forever": ([sys.executable, "-c", "import time; time.sleep(60)"],
                       ["did not complete the MCP handshake within 1 s (startup_timeout_s)", "raise startup_timeout_s"]),
    "not_installed": (["ponder-no-such-mcp-server"], ["'ponder-no-such-mcp-server' was not found on PATH", "full path"]),
    "bad_path": (["./no/such/server.py"], ["'./no/such/server.py' does not exist"]),
}


@pytest.mark.parametrize("case", sorted(NOT_MCP))
async def test_a_command_that_is_not_an_mcp_server_fails_fast_with_one_line(case, capfd) -> None:
    cmd, says = NOT_MCP[case]
    t0 = time.perf_counter()
    with pytest.raises(MCPStartupError) as info:
        async with mcp_tools(stdio=cmd, startup_timeout_s=1):
            pass
    took = time.perf_counter() - t0
    msg = str(info.value)
    assert "\n" not in msg and all(s in msg for s in says), msg
    assert took < 5.0  # the start-up limit (1 s) plus the SDK's process shutdown
    assert "Traceback" not in capfd.readouterr().err  # the SDK's parse-error tracebacks are quieted


async def test_an_http_server_that_is_not_there_fails_with_one_line() -> None:
    with pytest.raises(MCPStartupError, match=r"MCP server at http://127.0.0.1:\d+/mcp failed .*; check the URL"):
        async with mcp_tools(url=f"http://127.0.0.1:{_free_port()}/mcp", startup_timeout_s=5):
            pass


async def test_errors_inside_the_block_come_out_as_themselves() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with mcp_tools(stdio=[sys.executable, SERVER, "stdio"]):
            raise KeyError("mine")


async def test_a_cancellation_from_outside_during_start_up_stays_a_cancellation() -> None:
    async def start() -> None:
        async with mcp_tools(stdio=[sys.executable, "-c", "import time; time.sleep(60)"], startup_timeout_s=30):
            pass

    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):  # asyncio.wait_for's, not an MCPStartupError
        await asyncio.wait_for(start(), 0.5)
    assert time.perf_counter() - t0 < 5.0
