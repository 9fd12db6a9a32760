# ruff: noqa: E402
"""Runs inside the sandbox process (passed to `python -I -S -c`; it imports nothing from
ponder). Reads its configuration and the code from stdin, applies resource limits, installs
an audit hook, then executes the code.

Order matters: limits and the hook go in before a single line of model code runs, and the
hook is installed last so that the runner itself may still read what it needs.
"""

import ast
import builtins
import json
import os
import resource
import signal
import sys
import traceback

_cfg = json.loads(sys.stdin.read())
_fd = os.open(os.devnull, os.O_RDONLY)
os.dup2(_fd, 0)
os.close(_fd)
_wd = os.path.realpath(_cfg["workdir"])
os.chdir(_wd)


def _limit(res, soft, hard=None):
    hard = soft if hard is None else hard
    try:
        cur_soft, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        resource.setrlimit(res, (soft, hard))
    except (ValueError, OSError):
        pass


def _tasks_of_uid(uid):
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                uid_line = threads = None
                for line in f:
                    if line.startswith("Uid:"):
                        uid_line = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
            if uid_line == uid:
                n += threads or 1
        except (OSError, ValueError):
            continue
    return n


def _on_xcpu(signum, frame):
    os.write(2, f"\nsandbox: CPU time limit of {_cfg['cpu_s']} s exceeded\n".encode())
    os._exit(124)


signal.signal(signal.SIGXCPU, _on_xcpu)
_cpu = int(_cfg["cpu_s"])
_limit(resource.RLIMIT_CPU, _cpu, _cpu + 1)
_limit(resource.RLIMIT_AS, int(_cfg["memory_mb"]) * 1024 * 1024)
_limit(resource.RLIMIT_FSIZE, int(_cfg["file_size_mb"]) * 1024 * 1024)
_limit(resource.RLIMIT_NOFILE, 64)
_limit(resource.RLIMIT_CORE, 0)
# In a fresh user namespace the kernel counts only that namespace's processes; outside one
# the count is per user across the whole machine, so allow what exists plus the budget.
_nproc = int(_cfg["max_procs"])
if not _cfg.get("userns"):
    _nproc += _tasks_of_uid(os.getuid())
_limit(resource.RLIMIT_NPROC, _nproc)

_env = {"PATH": "/usr/bin:/bin", "HOME": _wd, "TMPDIR": _wd, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
os.environ.clear()
os.environ.update(_env)

if _cfg.get("audit_hook", True):
    _SEP = os.sep
    _rw_roots = (_wd,)
    _ro_roots = tuple(
        {os.path.realpath(p) for p in sys.path if p and os.path.exists(p)}
        | {os.path.realpath(p) for p in _cfg.get("read_roots", ())}
    )
    _devices = frozenset({"/dev/null", "/dev/urandom", "/dev/random", "/dev/zero"})
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    _realpath, _fsdecode, _startswith = os.path.realpath, os.fsdecode, str.startswith
    _BLOCKED = {
        "os.fork": "starting processes",
        "os.forkpty": "starting processes",
        "os.posix_spawn": "starting processes",
        "os.exec": "starting processes",
        "os.spawn": "starting processes",
        "os.system": "starting processes",
        "subprocess.Popen": "starting processes",
        "os.kill": "sending signals",
        "os.killpg": "sending signals",
        "ctypes.dlopen": "loading native code (ctypes)",
        "ctypes.dlsym": "loading native code (ctypes)",
        "ctypes.call_function": "calling native code (ctypes)",
        "sys.addaudithook": "changing the sandbox",
    }
    _PATH_EVENTS = {
        "os.listdir": (0,),
        "os.scandir": (0,),
        "os.remove": (0,),
        "os.rmdir": (0,),
        "os.mkdir": (0,),
        "os.rename": (0, 1),
        "os.link": (0, 1),
        "os.symlink": (1,),
        "os.chmod": (0,),
        "os.chown": (0,),
        "os.truncate": (0,),
        "os.utime": (0,),
        "os.chdir": (0,),
        "shutil.rmtree": (0,),
    }
    _WRITE_EVENTS = frozenset(
        {"os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.link", "os.symlink", "os.chmod",
         "os.chown", "os.truncate", "os.utime", "shutil.rmtree"}
    )

    def _inside(p, roots):
        for r in roots:
            if p == r or _startswith(p, r + _SEP):
                return True
        return False

    def _check_path(path, write, what):
        if path is None or isinstance(path, int):
            return
        try:
            p = _realpath(_fsdecode(path))
        except (TypeError, ValueError):
            return
        if _inside(p, _rw_roots) or p in _devices:
            return
        if not write and _inside(p, _ro_roots):
            return
        raise PermissionError(
            f"sandbox: {what} {_fsdecode(path)!r} is not allowed: only files inside the working "
            "directory (the current directory) may be used"
        )

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            write = bool(mode and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            _check_path(path, write, "writing" if write else "reading")
        elif _startswith(event, "socket."):
            raise PermissionError("sandbox: network access is disabled (no sockets)")
        elif event in _BLOCKED:
            raise PermissionError(f"sandbox: {_BLOCKED[event]} is not allowed")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args):
                    _check_path(args[i], event in _WRITE_EVENTS, "access to")
        elif event == "import" and args and args[0] in ("_ctypes", "ctypes"):
            raise ImportError("sandbox: ctypes is not available")

    sys.addaudithook(_hook)
    del _hook


def _main(code):
    g = {"__name__": "__main__", "__builtins__": builtins}
    try:
        tree = ast.parse(code, "<code>", "exec")
    except SyntaxError:
        traceback.print_exc(limit=0)
        return 1
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    try:
        exec(compile(tree, "<code>", "exec"), g)
        if last is not None:
            value = eval(compile(last, "<code>", "eval"), g)
            if value is not None:
                print(repr(value))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except MemoryError:
        sys.stderr.write(f"MemoryError: the memory limit of {_cfg['memory_mb']} MB was reached\n")
        return 1
    except BaseException as e:
        # Keep only the model's frames and the library's, not the runner's or the hook's.
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != "<string>"]
        lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
        lines += traceback.format_exception_only(type(e), e)
        sys.stderr.write("".join(lines))
        return 1
    return 0


_rc = _main(_cfg["code"])
try:
    sys.stdout.flush()
    sys.stderr.flush()
except Exception:
    pass
os._exit(_rc if isinstance(_rc, int) else 1)
