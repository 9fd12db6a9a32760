"""Escape attempts against the python tool: each one stopped, reported as a tool error,
and the host unharmed. Also the happy path."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from pathlib import Path

import pytest

from ponder.core.events import ToolResult
from ponder.core.messages import ToolCall
from ponder.tools.sandbox import Sandbox, probe_isolation, python_tool

FAKE_KEY = "sk-test-FAKE-moonshot-key-9f8e7d"


@pytest.fixture(scope="module")
def py():
    return python_tool(timeout_s=6, cpu_s=3, memory_mb=256, max_output_chars=2000)


async def run(tool_, code: str) -> ToolResult:
    evs = [ev async for ev in tool_.execute(ToolCall(id="c", name="python", arguments={"code": code}))]
    assert isinstance(evs[-1], ToolResult)
    return evs[-1]


async def test_happy_path(py) -> None:
    r = await run(py, "print('hello')\nsum(i * i for i in range(10))")
    assert r.ok, r.content
    assert r.content.splitlines() == ["hello", "285"]


async def test_files_persist_within_one_call_only(py) -> None:
    r = await run(py, "open('notes.txt', 'w').write('kept')\nprint(open('notes.txt').read())\nimport os; print(sorted(os.listdir('.')))")
    assert r.ok and "kept" in r.content and "['notes.txt']" in r.content
    r2 = await run(py, "import os; print(sorted(os.listdir('.')))\nprint(os.path.exists('notes.txt'))")
    assert r2.ok and r2.content.splitlines() == ["[]", "False"]


async def test_workdir_is_removed_afterwards(py) -> None:
    r = await run(py, "import os; print(os.getcwd())")
    wd = r.content.strip()
    assert wd.startswith(tempfile.gettempdir()) and not Path(wd).exists()  # noqa: ASYNC240


async def test_exception_is_reported_with_traceback(py) -> None:
    r = await run(py, "def f():\n    raise ValueError('bad value')\nf()")
    assert not r.ok and "ValueError: bad value" in r.error and "line 2" in r.content


async def test_reading_outside_workdir_is_blocked(py, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    secret.chmod(0o644)  # readable by anyone: only the sandbox may stop it
    for target in (str(secret), "/etc/passwd"):
        r = await run(py, f"print(open({target!r}).read())")
        assert not r.ok, r.content
        assert "PermissionError" in r.error and "not allowed" in r.error
        assert "TOP-SECRET-CONTENT" not in r.content and "root:" not in r.content
    r = await run(py, "import os; os.symlink('/etc/passwd', 'p'); print(open('p').read())")
    assert not r.ok and "root:" not in r.content
    assert secret.read_text() == "TOP-SECRET-CONTENT"


async def test_writing_outside_workdir_is_blocked(py, tmp_path: Path) -> None:
    target = tmp_path / "planted.txt"
    os.chmod(tmp_path, 0o777)
    r = await run(py, f"open({str(target)!r}, 'w').write('x')")
    assert not r.ok and not target.exists()


async def test_parent_environment_does_not_leak(py, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    r = await run(py, "import os; print(dict(os.environ))")
    assert r.ok
    assert FAKE_KEY not in r.content and "API_KEY" not in r.content
    r = await run(py, "print(open('/proc/self/environ').read()); print(open('/proc/1/environ').read())")
    assert FAKE_KEY not in r.content


async def test_socket_is_blocked_and_no_connection_arrives(py) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    try:
        r = await run(py, f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')")
        assert not r.ok and ("network access is disabled" in r.error or "unreachable" in r.error.lower())
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()


async def test_socket_blocked_by_kernel_without_audit_hook() -> None:
    """The network namespace alone (no in-process hook) must stop the connection too."""
    iso = probe_isolation()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    try:
        res = await Sandbox(timeout_s=6, audit_hook=False).run(
            f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        )
        if iso.network_namespace:
            assert not res.ok and "connected" not in res.stdout
            with pytest.raises(BlockingIOError):
                srv.accept()
        else:  # documented: without namespaces only the audit hook stops sockets
            assert res.ok
    finally:
        srv.close()


async def test_fork_bomb_is_stopped(py) -> None:
    before = len(os.listdir("/proc"))
    r = await run(py, "import os\nwhile True:\n    os.fork()")
    assert not r.ok and ("starting processes is not allowed" in r.error or "too many processes" in r.error)
    r = await run(py, "import subprocess; subprocess.run(['sh', '-c', 'echo MAR' + 'KER'])")
    assert not r.ok and "MARKER" not in r.content
    await asyncio.sleep(0.2)
    assert len(os.listdir("/proc")) < before + 10


async def test_fork_bomb_stopped_by_kernel_limits_without_audit_hook() -> None:
    iso = probe_isolation()
    if not (iso.unshare or iso.drop_to_nobody or os.geteuid() != 0):
        pytest.fail("no kernel process limit applies on this machine (root without namespaces)")
    before = len(os.listdir("/proc"))
    res = await Sandbox(timeout_s=6, cpu_s=3, max_procs=8, audit_hook=False).run(
        "import os, time\nn = 0\nwhile True:\n    os.fork()\n    n += 1"
    )
    assert not res.ok and res.reason is not None
    await asyncio.sleep(0.3)
    assert len(os.listdir("/proc")) < before + 10  # every forked child is gone


async def test_memory_bomb_is_stopped(py) -> None:
    r = await run(py, "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))")
    assert not r.ok and "memory limit" in r.error


async def test_infinite_loop_is_stopped_by_cpu_limit(py) -> None:
    r = await run(py, "while True:\n    pass")
    assert not r.ok and ("CPU time" in r.error or "wall-clock" in r.error)
    assert r.duration_s < 8


async def test_sleeping_forever_is_stopped_by_wall_clock(py) -> None:
    r = await run(py, "import time\ntime.sleep(60)")
    assert not r.ok and "wall-clock limit" in r.error
    assert r.duration_s < 10


async def test_huge_file_is_stopped(py) -> None:
    r = await run(py, "f = open('big.bin', 'wb')\nwhile True:\n    f.write(b'x' * 1024 * 1024)")
    assert not r.ok and "file larger than" in r.error


async def test_output_flood_is_truncated_and_killed(py) -> None:
    r = await run(py, "while True:\n    print('y' * 1000)")
    assert not r.ok and "printed too much" in r.error
    assert len(r.content) < 10_000


async def test_long_output_is_truncated_with_a_note(py) -> None:
    r = await run(py, "print('z' * 5000)")
    assert r.ok and "[truncated: showing the first 2000 of" in r.content and len(r.content) < 2600


async def test_ctypes_is_refused(py) -> None:
    r = await run(py, "import ctypes")
    assert not r.ok and "ctypes is not available" in r.error


async def test_concurrent_runs(py) -> None:
    rs = await asyncio.gather(*(run(py, f"print({i} * 2)") for i in range(6)))
    assert [r.content.strip() for r in rs] == [str(i * 2) for i in range(6)]


def test_probe_describes_isolation() -> None:
    d = probe_isolation().describe()
    assert set(d) >= {"network", "processes", "files", "interpreter"}
