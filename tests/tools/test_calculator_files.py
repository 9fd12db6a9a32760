"""Calculator (no eval, limits) and root-confined file tools (traversal and symlink escapes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ponder.core.messages import ToolCall
from ponder.tools import Toolbox
from ponder.tools.calculator import CalcError, calculate, calculator_tool
from ponder.tools.files import file_tools


@pytest.mark.parametrize(
    "expr, value",
    [("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 // 2", 3), ("-7 % 3", 2), ("2 ** 10", 1024), ("2^8", 256),
     ("10 / 4", 2.5), ("-(3)", -3), ("sqrt(16) + floor(2.7)", 6.0), ("round(pi, 2)", 3.14), ("max(1, 5, 2)", 5)],
)
def test_calculator_values(expr: str, value: float) -> None:
    assert calculate(expr) == value


@pytest.mark.parametrize(
    "expr, needle",
    [("__import__('os').system('id')", "unsupported syntax"), ("__import__('os')", "unknown function"), ("().__class__", "unsupported syntax"),
     ("x + 1", "unknown name"), ("1 / 0", "division by zero"), ("9 ** 99999", "exponent"),
     ("2 ** 2 ** 2 ** 30", "exponent"), ("(10 ** 3000) * (10 ** 3000)", "too large"), ("1 +", "not a valid"),
     ("'a' * 3", "unsupported"), ("factorial(100000)", "too large"), ("[1, 2]", "unsupported")],
)
def test_calculator_rejects(expr: str, needle: str) -> None:
    with pytest.raises(CalcError, match=needle):
        calculate(expr)


async def test_calculator_tool() -> None:
    t = calculator_tool()
    r = await Toolbox([t]).run(ToolCall(id="1", name="calculator", arguments={"expression": "3 * (4 + 5)"}))
    assert r.ok and r.content == "27"
    r = await Toolbox([t]).run(ToolCall(id="1", name="calculator", arguments={"expression": "open('x')"}))
    assert not r.ok and "expression" in r.error  # refused by the schema's pattern before evaluation
    with pytest.raises(CalcError, match="unknown function 'open'"):  # and the evaluator refuses it too
        calculate("open(1)")


@pytest.fixture
def box(tmp_path: Path) -> tuple[Toolbox, Path, Path]:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (root / "hello.txt").write_text("hi there")
    return Toolbox(file_tools(root)), root, outside


async def call(box: Toolbox, name: str, **args):
    return await box.run(ToolCall(id="1", name=name, arguments=args))


async def test_file_tools_happy_path(box) -> None:
    tb, root, _ = box
    assert (await call(tb, "read_file", path="hello.txt")).content == "hi there"
    r = await call(tb, "write_file", path="sub/new.txt", content="abc")
    assert r.ok and (root / "sub" / "new.txt").read_text() == "abc"
    listing = (await call(tb, "list_dir")).content.splitlines()
    assert listing == ["hello.txt", "sub/"]


async def test_path_traversal_is_refused(box) -> None:
    tb, root, outside = box
    for p in ["../outside/secret.txt", str(outside / "secret.txt"), "sub/../../outside/secret.txt", "/etc/passwd"]:
        r = await call(tb, "read_file", path=p)
        assert not r.ok and "outside the allowed folder" in r.error and "SECRET" not in r.content
    r = await call(tb, "write_file", path="../outside/planted.txt", content="x")
    assert not r.ok and not (outside / "planted.txt").exists()
    r = await call(tb, "list_dir", path="..")
    assert not r.ok


async def test_symlink_escape_is_refused(box) -> None:
    tb, root, outside = box
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    r = await call(tb, "read_file", path="link.txt")
    assert not r.ok and "outside the allowed folder" in r.error and "SECRET" not in r.content
    r = await call(tb, "write_file", path="linkdir/planted.txt", content="x")
    assert not r.ok and not (outside / "planted.txt").exists()
    r = await call(tb, "write_file", path="link.txt", content="overwrite")
    assert not r.ok and (outside / "secret.txt").read_text() == "SECRET"
    r = await call(tb, "list_dir", path="linkdir")
    assert not r.ok and "secret.txt" not in r.content


async def test_calculator_schema_constrains_expressions_and_rejects_prose():
    from ponder.core.events import ToolResult as _TR
    from ponder.core.messages import ToolCall as _TC
    from ponder.tools import calculator_tool

    t = calculator_tool()
    assert "pattern" in t.schema()["function"]["parameters"]["properties"]["expression"]

    async def run(expr):
        return [ev async for ev in t.execute(_TC(id="c", name="calculator", arguments={"expression": expr}))][-1]

    ok = await run("sqrt(144) + max(2, 3) ,")
    assert isinstance(ok, _TR) and ok.ok and ok.content == "15.0"
    bad = await run("17 * 23 = 321, 23 is")
    assert not bad.ok and "pattern" in bad.error
