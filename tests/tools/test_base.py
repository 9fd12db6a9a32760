"""The tool protocol: schema from signatures, validation, errors as results, truncation."""

from __future__ import annotations

import asyncio

from ponder.core.events import ToolResult, ToolStarted
from ponder.core.messages import ToolCall
from ponder.tools import Tool, Toolbox, ToolFailure, parse_docstring, result_message, tool


@tool
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: the first number.
        b: the second number,
            continued on a second line.
    """
    return a + b


async def _events(t: Tool | Toolbox, call: ToolCall) -> list:
    return [ev async for ev in t.execute(call, agent="sub-1")]


def test_schema_from_signature_and_docstring() -> None:
    s = add.schema()
    assert s["type"] == "function"
    f = s["function"]
    assert f["name"] == "add" and f["description"] == "Add two numbers."
    p = f["parameters"]
    assert p["type"] == "object" and p["required"] == ["a"]
    assert p["properties"]["a"] == {"type": "integer", "description": "the first number."}
    assert p["properties"]["b"]["default"] == 2
    assert p["properties"]["b"]["description"] == "the second number, continued on a second line."


def test_numpy_docstring() -> None:
    summary, args = parse_docstring(
        """Summary line.

        Parameters
        ----------
        x : int
            The x value.
        """
    )
    assert summary == "Summary line."
    assert args == {"x": "The x value."}


async def test_execute_yields_started_then_result() -> None:
    evs = await _events(add, ToolCall(id="c1", name="add", arguments={"a": 1, "b": 5}))
    assert isinstance(evs[0], ToolStarted) and isinstance(evs[-1], ToolResult)
    assert len(evs) == 2
    r = evs[-1]
    assert r.ok and r.content == "6" and r.agent == "sub-1" and r.call_id == "c1"


async def test_invalid_arguments_become_error_results() -> None:
    for args, needle in [({}, "a: Field required"), ({"a": "x"}, "valid integer"), ({"a": 1, "zz": 2}, "zz")]:
        r = (await _events(add, ToolCall(id="c", name="add", arguments=args)))[-1]
        assert not r.ok and needle in r.error and r.content == r.error
        assert "invalid arguments for tool 'add'" in r.error


async def test_exception_and_timeout_become_error_results() -> None:
    @tool(timeout_s=0.2)
    async def slow() -> str:
        """Sleeps."""
        await asyncio.sleep(5)
        return "never"

    @tool
    def broken(x: str) -> str:
        """Raises."""
        raise RuntimeError("disk on fire")

    @tool
    def refuses() -> str:
        """Refuses."""
        raise ToolFailure("try again with a shorter query", content="ERROR: long text for the model")

    r = (await _events(slow, ToolCall(id="1", name="slow")))[-1]
    assert not r.ok and "timed out after 0.2s" in r.error
    r = (await _events(broken, ToolCall(id="2", name="broken", arguments={"x": "y"})))[-1]
    assert not r.ok and "RuntimeError: disk on fire" in r.error
    r = (await _events(refuses, ToolCall(id="3", name="refuses")))[-1]
    assert not r.ok and r.error == "try again with a shorter query" and r.content.startswith("ERROR: long")


async def test_non_string_results_are_json_and_truncated() -> None:
    @tool(max_output_chars=50)
    def data() -> dict:
        """Data."""
        return {"k": "v" * 100}

    @tool
    def small() -> list:
        """Small."""
        return [1, {"a": None}]

    r = (await _events(small, ToolCall(id="1", name="small")))[-1]
    assert r.content == '[1, {"a": null}]'
    r = (await _events(data, ToolCall(id="1", name="data")))[-1]
    assert r.ok and r.content.startswith('{"k": "vvv') and "[truncated: showing the first 50 of" in r.content


async def test_toolbox_unknown_tool_lists_available() -> None:
    box = Toolbox([add])
    assert box.names() == ["add"] and len(box) == 1 and box.get("add") is add and box.get("x") is None
    assert box.schemas() == [add.schema()]
    evs = await _events(box, ToolCall(id="9", name="nope", arguments={}))
    assert isinstance(evs[0], ToolStarted)
    r = evs[-1]
    assert not r.ok and "unknown tool 'nope'" in r.error and "Available tools: add" in r.error


def test_toolbox_rejects_duplicates_and_wraps_functions() -> None:
    def mul(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    box = Toolbox([add, mul])
    assert box.names() == ["add", "mul"]
    try:
        box.add(add)
    except ValueError as e:
        assert "duplicate tool name 'add'" in str(e)
    else:
        raise AssertionError("duplicate accepted")


async def test_plain_schema_tool_is_checked_shallowly() -> None:
    t = Tool(
        name="echo",
        description="echo",
        parameters={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": False},
        fn=lambda text: text,
    )
    r = (await _events(t, ToolCall(id="1", name="echo", arguments={"text": 3})))[-1]
    assert not r.ok and "text: expected string" in r.error
    r = (await _events(t, ToolCall(id="1", name="echo", arguments={"text": "hi"})))[-1]
    assert r.ok and r.content == "hi"


def test_result_message() -> None:
    ok = ToolResult(call_id="c", name="add", ok=True, content="6")
    m = result_message(ok)
    assert m.role == "tool" and m.tool_call_id == "c" and m.name == "add" and m.content == "6"
    bad = ToolResult(call_id="c", name="add", ok=False, content="boom", error="boom")
    assert result_message(bad).content == "ERROR: boom"
    already = ToolResult(call_id="c", name="add", ok=False, content="ERROR: x", error="x")
    assert result_message(already).content == "ERROR: x"


async def test_unparseable_arguments_come_back_as_a_tool_error_without_running():
    from ponder.core.events import ToolResult as _TR
    from ponder.core.messages import ToolCall as _TC
    from ponder.tools.base import tool as _tool

    ran = []

    @_tool
    def echo(text: str) -> str:
        """Echo."""
        ran.append(text)
        return text

    call = _TC(id="c1", name="echo", arguments={}, raw_arguments='{"text": "hi', parse_error="arguments are not valid JSON")
    evs = [ev async for ev in echo.execute(call)]
    res = evs[-1]
    assert isinstance(res, _TR) and not res.ok
    assert "not valid JSON" in res.error and '{"text": "hi' in res.content and ran == []
