"""The run viewer: a read-only web view of the run store, served by `ponder serve`.

Pages (plain HTML, CSS and JS under `static/`, no CDN: they work offline):

* `/` — the runs list (status, mode, model, started, wall time, tokens, cost, critical
  steps), filtered and searched through `/api/runs`;
* `/runs/{id}` — one run: a timeline with a row per agent, the critical path, parallelism
  over time, the agent tree, each step's reasoning, content and tool calls, shared memory.

The page is drawn from the view `runview.RunView` folds out of the journal (the critical
path is computed here, from the swarm's metrics module). A running run is followed live:
`/api/runs/{id}/stream` polls the journal (`RunStore.event_objects(after=seq)`) every 150 ms
and sends what changed as one SSE `patch` event, until the run's `run_finished` arrives or
the store reports it is no longer running (interrupted); then it sends `end`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from ..core.events import event_to_json
from ..core.store import RunStore, decode_object
from .discovery import viewer_url
from .runview import RunView

__all__ = ["POLL_S", "viewer_router", "viewer_url"]

POLL_S = 0.15  # how often a live stream reads the journal
HEARTBEAT_S = 1.0  # a patch at least this often while running (elapsed times, in-flight bars)
STATUS_EVERY_S = 1.0  # how often a quiet stream asks the store whether the run is still running
STATUSES = ("running", "ok", "budget", "cancelled", "error", "interrupted")
_STATIC = resources.files("ponder.server") / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type="application/json")


def _list_row(r: dict[str, Any], now: float) -> dict[str, Any]:
    m = r.get("metrics") or {}
    u = m.get("usage") or {}
    end = r.get("finished") or (r.get("updated") if r["status"] != "running" else None)
    wall = m.get("wall_s") if m.get("wall_s") else max((end or now) - r["started"], 0.0)
    return {"id": r["id"], "status": r["status"], "mode": r["mode"], "model": r["model"],
            "task": (r["task"] or "")[:300], "started": r["started"], "finished": r.get("finished"), "wall_s": wall,
            "tokens": int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) if m else None,
            "cost_usd": m.get("cost_usd") if m else None, "steps": m.get("steps") if m else None,
            "critical_steps": m.get("critical_steps") if m else None, "agents": m.get("agents") if m else None,
            "attempts": r.get("attempts") or 1, "reason": r.get("reason"), "session": r.get("session")}


def viewer_router(store: RunStore) -> APIRouter:
    """The viewer's routes over `store` (the server's own run store)."""
    router = APIRouter()

    def page(name: str) -> HTMLResponse:
        return HTMLResponse((_STATIC / name).read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})

    def find(run_id: str) -> dict[str, Any]:
        try:
            return store.run(run_id)
        except KeyError as e:
            raise HTTPException(404, str(e.args[0])) from None

    @router.get("/", include_in_schema=False)
    async def runs_page() -> HTMLResponse:
        return page("runs.html")

    @router.get("/runs/{run_id}", include_in_schema=False)
    async def run_page(run_id: str) -> HTMLResponse:
        return page("run.html")

    @router.get("/static/viewer/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        f = _STATIC / name
        ext = os.path.splitext(name)[1]
        if "/" in name or "\\" in name or name.startswith(".") or ext not in _TYPES or not f.is_file():
            raise HTTPException(404, f"no viewer asset {name!r}")
        return Response(f.read_bytes(), media_type=_TYPES[ext], headers={"Cache-Control": "no-cache"})

    @router.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @router.get("/api/info")
    async def info() -> dict[str, Any]:
        return {"db": str(store.path.resolve()), "pid": os.getpid()}

    @router.get("/api/runs")
    async def list_runs(status: str | None = None, mode: str | None = None, q: str | None = None,
                        limit: int = 200) -> Response:
        if status and status not in STATUSES:
            raise HTTPException(400, f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        rows = store.runs(limit=max(1, min(limit, 2000)), status=status or None, mode=mode or None,
                          search=(q or "").strip() or None)
        now = time.time()
        return _json([_list_row(r, now) for r in rows])

    @router.get("/api/runs/{run_id}/summary")
    async def run_summary(run_id: str) -> Response:
        return _json(_list_row(find(run_id), time.time()))

    @router.get("/api/runs/{run_id}/events")
    async def run_events(run_id: str, after: int = -1) -> Response:
        """The journal itself, as the typed events (`event_to_json`) in order, with their seq."""
        row = find(run_id)
        calls: dict[int, Any] = {}
        parts = []
        for seq, obj in store.event_objects(row["id"]):
            try:
                ev = decode_object(obj, calls)
            except ValueError as e:
                raise HTTPException(500, f"journal row {seq} of run {row['id']} cannot be read: {e}") from None
            if ev.type == "model_call_finished":
                calls[seq] = ev.message
            if seq > after:
                parts.append(f'{{"seq":{seq},"event":{event_to_json(ev)}}}')
        return Response("[" + ",".join(parts) + "]", media_type="application/json")

    @router.get("/api/runs/{run_id}")
    async def run_view(run_id: str) -> Response:
        row = find(run_id)
        rows = list(store.event_objects(row["id"]))
        view = await asyncio.to_thread(_build, row, rows)
        return _json(view)

    @router.get("/api/runs/{run_id}/stream")
    async def run_stream(run_id: str, request: Request, after: int = -1) -> StreamingResponse:
        row = find(run_id)
        last = request.headers.get("last-event-id")
        if last and last.lstrip("-").isdigit():
            after = max(after, int(last))
        return StreamingResponse(_follow(store, row, after, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


def _build(row: dict[str, Any], rows: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    view = RunView(row)
    view.feed_rows(rows)
    return view.snapshot()


def _sse(event: str, data: dict[str, Any], seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return head.encode() + f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def _follow(store: RunStore, row: dict[str, Any], after: int, request: Request) -> AsyncIterator[bytes]:
    """Patches of a run from the journal row `after` on, until it ends (module docstring)."""
    view = RunView(row)
    run_id = row["id"]
    rows = list(store.event_objects(run_id))
    if after >= 0:  # the page has everything up to `after` (a reconnect says where it got to)
        view.feed_rows(r for r in rows if r[0] <= after)
        view.patch()
    view.feed_rows(r for r in rows if r[0] > after)
    yield b"retry: 1000\n\n"
    yield _sse("patch", view.patch(), view.seq)
    sent = checked = time.monotonic()
    while True:
        if view.finished is not None:
            yield _sse("end", {"status": view.status(), "seq": view.seq})
            return
        if view.row.get("status") != "running":
            yield _sse("end", {"status": view.status(), "seq": view.seq})
            return
        await asyncio.sleep(POLL_S)
        if await request.is_disconnected():
            return
        rows = list(store.event_objects(run_id, after=view.seq))
        now = time.monotonic()
        if not rows and now - checked >= STATUS_EVERY_S:
            checked = now
            try:
                status = store.run(run_id)["status"]
            except KeyError:
                status = "interrupted"
            if status != "running":
                rows = list(store.event_objects(run_id, after=view.seq))  # what was written before it stopped
                view.row = {**view.row, "status": status}
        if rows or now - sent >= HEARTBEAT_S or view.row.get("status") != "running":
            view.feed_rows(rows)
            yield _sse("patch", view.patch(), view.seq)
            sent = now
