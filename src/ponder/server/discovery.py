"""Finding a running `ponder serve`, so `ponder run` and `ponder view` can link to a run page.

`ponder serve` writes `$PONDER_HOME/server.json` (its pid, address and run store) while it
runs and removes it when it stops. `viewer_url(run_id)` reads that file, skips it when its
process is gone, and asks the server (and the default port, for a server started some
other way) whether it holds the run: a short HTTP GET on loopback, so a run's last line
never waits on a server that is not there (a refused connection answers at once).

Standard library only: `ponder run` calls this at the end of every run and must not pay for
importing the web stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from ..core.store import default_db_path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def server_file() -> Path:
    return default_db_path().parent / "server.json"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return DEFAULT_HOST
    return f"[{host}]" if ":" in host else host


def base_url(host: str, port: int) -> str:
    return f"http://{_url_host(host)}:{port}"


@contextlib.contextmanager
def announce(host: str, port: int, db: str | os.PathLike[str] | None) -> Iterator[Path]:
    """Write the server file for as long as the server runs (removed only if still ours)."""
    path = server_file()
    info = {"pid": os.getpid(), "host": host, "port": port, "url": base_url(host, port),
            "db": str(Path(db).resolve()) if db is not None else str(default_db_path()), "started": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: the server still runs, `ponder run` just cannot find it
        pass
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()


def announced() -> str | None:
    """The base URL in the server file, when the process that wrote it is alive."""
    try:
        info = json.loads(server_file().read_text(encoding="utf-8"))
        pid = int(info["pid"])
        os.kill(pid, 0)
        return str(info["url"])
    except PermissionError:  # alive, another user's
        return str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _has_run(base: str, run_id: str, timeout_s: float) -> str | None:
    url = f"{base}/api/runs/{urllib.parse.quote(run_id, safe='')}/summary"
    try:
        with _OPENER.open(url, timeout=timeout_s) as r:
            if r.status == 200:
                return str(json.loads(r.read()).get("id") or run_id)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return None


def viewer_url(run_id: str, *, timeout_s: float = 0.3, candidates: list[str] | None = None) -> str | None:
    """The run page's URL on a running ponder server that holds this run, else None."""
    bases = candidates if candidates is not None else [b for b in (announced(), base_url(DEFAULT_HOST, DEFAULT_PORT))
                                                       if b]
    for base in dict.fromkeys(bases):
        rid = _has_run(base, run_id, timeout_s)
        if rid is not None:
            return f"{base}/runs/{rid}"
    return None
