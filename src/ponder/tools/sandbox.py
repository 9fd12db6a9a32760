"""The `python` tool: model-written code in a separate, limited, throw-away process.

Layers (see docs/tools.md for the threat model and what each one stops):
  kernel   - a fresh user + network + PID namespace (`unshare`), where the machine allows it:
             no network interfaces but a downed loopback, and killing the namespace's first
             process kills every process the code started;
           - when ponder runs as root, the child drops to uid/gid 65534 (nobody) first, so
             file permissions apply and RLIMIT_NPROC is not bypassed;
           - rlimits: CPU seconds, address space, file size, open files, process count;
           - a wall-clock timeout that kills the whole process group.
  python   - an isolated interpreter (`-I -S`: no site-packages, no PYTHON* variables), an
             empty environment, and an audit hook that refuses sockets, new processes,
             ctypes, and files outside the working directory (reads of the stdlib allowed).
The audit hook is defence in depth, not a boundary: it lives in the same process as the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Tool, ToolFailure, _truncate

_CHILD_SOURCE = (Path(__file__).with_name("_sandbox_child.py")).read_text(encoding="utf-8")
NOBODY = 65534
_UNSHARE_ARGS = ["--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"]


@dataclass(frozen=True)
class Isolation:
    """What the probe found works on this machine (computed once per process)."""

    unshare: list[str] | None  # the unshare prefix, or None: no namespaces
    drop_to_nobody: bool  # running as root and the interpreter is usable by nobody
    interpreter: str
    notes: tuple[str, ...] = ()

    @property
    def network_namespace(self) -> bool:
        return self.unshare is not None

    def describe(self) -> dict[str, Any]:
        return {
            "network": "network namespace (kernel)" if self.unshare else "audit hook only (in-process)",
            "processes": (
                "PID namespace + RLIMIT_NPROC" if self.unshare else "RLIMIT_NPROC + audit hook"
            ) + (" as uid 65534" if self.drop_to_nobody else (" (root: RLIMIT_NPROC bypassed)" if os.geteuid() == 0 else "")),
            "files": ("uid 65534 file permissions + audit hook" if self.drop_to_nobody else "audit hook only (in-process)"),
            "interpreter": self.interpreter,
            "notes": list(self.notes),
        }


_ISOLATION: Isolation | None = None

_PROBE = (
    "import socket,os\n"
    "try:\n"
    "    s=socket.socket(); s.settimeout(0.5); s.connect(('127.0.0.1', 9)); print('NET')\n"
    "except OSError as e:\n"
    "    print('NONET' if e.errno in (101, 99) else 'NET')\n"
)


def _same_version_interpreters() -> list[str]:
    v = f"python{sys.version_info.major}.{sys.version_info.minor}"
    out = [sys.executable]
    for d in ("/usr/bin", "/usr/local/bin", "/bin"):
        p = os.path.join(d, v)
        if os.path.exists(p) and p not in out:
            out.append(p)
    return out


def _try(prefix: list[str] | None, interp: str, drop: bool) -> str | None:
    cmd = [*(prefix or []), interp, "-I", "-S", "-c", _PROBE]
    kw: dict[str, Any] = {}
    if drop:
        kw = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd="/", env={}, **kw)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def probe_isolation(refresh: bool = False) -> Isolation:
    """Find the strongest isolation this machine supports; cached."""
    global _ISOLATION
    if _ISOLATION is not None and not refresh:
        return _ISOLATION
    notes: list[str] = []
    unshare = shutil.which("unshare")
    is_root = os.geteuid() == 0
    prefixes: list[list[str] | None] = [[unshare, *_UNSHARE_ARGS]] if unshare else []
    prefixes.append(None)
    if not unshare:
        notes.append("util-linux `unshare` not found: no namespaces")
    found: Isolation | None = None
    for prefix in prefixes:
        for drop in ([True, False] if is_root else [False]):
            for interp in _same_version_interpreters():
                out = _try(prefix, interp, drop)
                if out is None:
                    continue
                if prefix is not None and out != "NONET":
                    notes.append("unshare ran but the network was still reachable; not trusted")
                    continue
                found = Isolation(prefix, drop, interp)
                break
            if found:
                break
            if drop:
                notes.append(f"{'namespaces' if prefix else 'plain'}: could not run a python as uid 65534")
        if found:
            break
        if prefix is not None:
            notes.append("`unshare --user --net --pid` is not permitted here; using rlimits + audit hook")
    if found is None:
        found = Isolation(None, False, sys.executable)
    _ISOLATION = Isolation(found.unshare, found.drop_to_nobody, found.interpreter, tuple(notes))
    return _ISOLATION


@dataclass
class SandboxResult:
    ok: bool
    stdout: str
    stderr: str
    returncode: int | None
    duration_s: float
    reason: str | None = None  # why it failed, written for the model
    truncated: bool = False

    def text(self) -> str:
        parts = []
        if self.reason:
            parts.append(f"ERROR: {self.reason}")
        if self.stdout:
            parts.append(self.stdout if not self.reason else "[stdout]\n" + self.stdout)
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr)
        return "\n".join(parts) if parts else "(no output)"


@dataclass
class Sandbox:
    """Runs one piece of code per `run()` call, each in a fresh working directory."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_size_mb: int = 16
    max_procs: int = 16
    max_output_chars: int = 8000
    use_namespaces: bool = True
    audit_hook: bool = True  # off only in tests that check the kernel layers alone
    read_roots: list[str] = field(default_factory=list)

    def isolation(self) -> Isolation:
        iso = probe_isolation()
        if not self.use_namespaces and iso.unshare is not None:
            return Isolation(None, iso.drop_to_nobody, iso.interpreter, iso.notes)
        return iso

    async def run(self, code: str) -> SandboxResult:
        if _ISOLATION is None:  # the probe starts processes: keep it off the event loop
            await asyncio.to_thread(probe_isolation)
        iso = self.isolation()
        t0 = time.perf_counter()
        workdir = tempfile.mkdtemp(prefix="ponder-sbx-")
        proc: asyncio.subprocess.Process | None = None
        try:
            kw: dict[str, Any] = {}
            if iso.drop_to_nobody:
                os.chown(workdir, NOBODY, NOBODY)
                kw = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
            cfg = {
                "code": code,
                "workdir": workdir,
                "cpu_s": self.cpu_s,
                "memory_mb": self.memory_mb,
                "file_size_mb": self.file_size_mb,
                "max_procs": self.max_procs,
                "userns": iso.unshare is not None,
                "audit_hook": self.audit_hook,
                "read_roots": [p for p in self.read_roots],
            }
            cmd = [*(iso.unshare or []), iso.interpreter, "-I", "-S", "-c", _CHILD_SOURCE]
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
                start_new_session=True,
                **kw,
            )
            return await self._communicate(proc, json.dumps(cfg).encode(), t0)
        finally:
            if proc is not None and proc.returncode is None:
                _kill_group(proc.pid)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
            shutil.rmtree(workdir, ignore_errors=True)

    async def _communicate(self, proc: asyncio.subprocess.Process, stdin: bytes, t0: float) -> SandboxResult:
        keep = self.max_output_chars * 4 + 1024  # bytes kept per stream (UTF-8 worst case)
        hard_cap = max(keep * 50, 2_000_000)  # a print loop is killed past this
        bufs = {"out": bytearray(), "err": bytearray()}
        total = {"out": 0, "err": 0}
        flooded = asyncio.Event()

        async def pump(stream: asyncio.StreamReader | None, key: str) -> None:
            if stream is None:
                return
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                total[key] += len(chunk)
                room = keep - len(bufs[key])
                if room > 0:
                    bufs[key] += chunk[:room]
                if total[key] > hard_cap:
                    flooded.set()
                    _kill_group(proc.pid)

        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        timed_out = False
        pumps = asyncio.gather(pump(proc.stdout, "out"), pump(proc.stderr, "err"), proc.wait())
        try:
            await asyncio.wait_for(asyncio.shield(pumps), self.timeout_s)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pumps, 5)
        rc = proc.returncode
        out = bufs["out"].decode("utf-8", "replace")
        err = bufs["err"].decode("utf-8", "replace")
        truncated = False
        if total["out"] > len(bufs["out"]) or len(out) > self.max_output_chars:
            out = _truncate(out[: self.max_output_chars + 1], self.max_output_chars).replace(
                f"of {min(len(out), self.max_output_chars + 1)} characters", f"of {total['out']} bytes"
            )
            truncated = True
        if total["err"] > len(bufs["err"]) or len(err) > self.max_output_chars:
            # the end of stderr (the exception) matters more than its start
            tail = err[-self.max_output_chars :]
            err = f"[truncated: showing the last {len(tail)} characters of {total['err']} bytes]\n" + tail
            truncated = True
        reason = self._reason(rc, timed_out, flooded.is_set(), err)
        return SandboxResult(reason is None, out, err, rc, time.perf_counter() - t0, reason, truncated)

    def _reason(self, rc: int | None, timed_out: bool, flooded: bool, err: str) -> str | None:
        if timed_out:
            return f"the code ran longer than the {self.timeout_s:g} s wall-clock limit and was killed"
        if flooded:
            return "the code printed too much output and was killed; print less (summaries, not raw data)"
        if rc == 0:
            return None
        if rc is not None and rc < 0:
            sig = -rc
            if sig == signal.SIGXCPU or sig == signal.SIGKILL and "CPU" in err:
                return f"the code used more than {self.cpu_s} s of CPU time and was killed"
            if sig == signal.SIGXFSZ:
                return f"the code wrote a file larger than the {self.file_size_mb} MB limit"
            if sig == signal.SIGSEGV or sig == signal.SIGABRT:
                return f"the process crashed (signal {signal.Signals(sig).name}); possibly the {self.memory_mb} MB memory limit"
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return f"the process was killed by signal {name}"
        last = _last_error_line(err)
        if "sandbox: CPU time limit" in err:
            return f"the code used more than {self.cpu_s} s of CPU time and was killed"
        if "MemoryError" in last:
            return f"the code exceeded the {self.memory_mb} MB memory limit (MemoryError)"
        if "File too large" in last or "EFBIG" in last:
            return f"the code tried to write a file larger than the {self.file_size_mb} MB limit"
        if "BlockingIOError" in last or "Resource temporarily unavailable" in last:
            return f"the code tried to start too many processes (limit {self.max_procs})"
        if last:
            return f"the code raised {last}"
        return f"the process exited with status {rc}"


def _last_error_line(err: str) -> str:
    for line in reversed(err.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(("File ", "^", "~")):
            return line[:300]
    return ""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def python_tool(
    timeout_s: float = 10.0,
    cpu_s: int = 10,
    memory_mb: int = 512,
    max_output_chars: int = 8000,
    *,
    file_size_mb: int = 16,
    max_procs: int = 16,
    name: str = "python",
    use_namespaces: bool = True,
) -> Tool:
    """The `python` tool: runs `code` in a fresh sandboxed process and returns its output."""
    box = Sandbox(
        timeout_s=timeout_s,
        cpu_s=cpu_s,
        memory_mb=memory_mb,
        file_size_mb=file_size_mb,
        max_procs=max_procs,
        max_output_chars=max_output_chars,
        use_namespaces=use_namespaces,
    )

    async def run_python(code: str) -> str:
        res = await box.run(code)
        if not res.ok:
            raise ToolFailure(res.reason or "the code failed", res.text())
        return res.text()

    return Tool(
        name=name,
        description=(
            "Run Python 3 code (standard library only) in a fresh sandbox and return what it "
            "prints; the value of a final expression is printed too. No network, no access to "
            f"files outside the current directory, {timeout_s:g} s and {memory_mb} MB limits. "
            "Nothing persists between calls: compute and print everything in one call."
        ),
        parameters={
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source to execute."}},
            "required": ["code"],
            "additionalProperties": False,
        },
        fn=run_python,
        timeout_s=timeout_s + 10.0,  # the sandbox's own timeout fires first and says why
        max_output_chars=max_output_chars * 2 + 500,
        idempotent=True,  # a fresh sandbox per call, nothing persists: running it twice does no harm
    )


def stdlib_dirs() -> list[str]:
    """Where the interpreter's standard library lives (read-only for the sandboxed code)."""
    return sorted({p for k in ("stdlib", "platstdlib") if (p := sysconfig.get_path(k))})
