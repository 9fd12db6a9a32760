"""`ponder serve`: start runs over HTTP and stream their events as Server-Sent Events.

The server is a consumer of the event stream like the CLI: `POST /v1/runs` starts an
Interleaved or Swarm run and answers with `text/event-stream`, one SSE event per ponder
event (`event: <type>`, `data: <event JSON>`), ending with `run_finished`. Every run is
stored in the SQLite run store, so `GET /v1/runs/{id}/events` replays it later. A client
that disconnects cancels its run (the engine ends cleanly with status `cancelled`).
Bind it to 127.0.0.1 unless you put an authenticating proxy in front: runs execute tools.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..core.errors import PonderError
from ..core.events import RunFinished, event_to_json
from ..core.store import RunStore
from ..engines.base import Budgets
from ..models.base import ChatModel
from ..models.catalog import catalog
from ..models.registry import model as default_model_factory
from ..tools import named_tools


class RunRequest(BaseModel):
    task: str = Field(min_length=1)
    mode: Literal["interleaved", "swarm"] = "interleaved"
    model: str = "smollm2"
    sub_model: str | None = None
    thinking: Literal["on", "off", "auto"] = "auto"
    preserve_reasoning: bool = True
    tools: list[str] = Field(default_factory=lambda: ["calculator", "search"])
    max_steps: int = Field(default=12, ge=1, le=200)
    max_tool_calls: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    max_parallel: int = Field(default=100, ge=1, le=100)


def create_app(*, db: Path | str | None = None, model_factory: Callable[[str], ChatModel] | None = None) -> FastAPI:
    make_model = model_factory or default_model_factory
    store = RunStore(db)
    app = FastAPI(title="ponder", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> list[dict[str, Any]]:
        return [{"name": s.name, "dialect": s.dialect, "model_id": s.model_id, "key_set": s.key_is_set(),
                 "price_input": s.price_input, "price_cached_input": s.price_cached_input,
                 "price_output": s.price_output, "context_window": s.context_window} for s in catalog().values()]

    @app.get("/v1/runs")
    async def runs(limit: int = 50) -> list[dict[str, Any]]:
        return store.runs(limit=limit)

    @app.get("/v1/runs/{run_id}/events")
    async def run_events(run_id: str) -> list[dict[str, Any]]:
        evs = store.events(run_id)
        if not evs:
            raise HTTPException(404, f"no run {run_id!r}; GET /v1/runs lists the stored runs")
        return [json.loads(event_to_json(e)) for e in evs]

    @app.post("/v1/runs")
    async def start_run(req: RunRequest) -> StreamingResponse:
        try:
            engine = _engine(req, make_model)
        except (PonderError, ValueError) as e:  # unknown model, missing key, unknown tool
            raise HTTPException(400, str(e)) from None
        return StreamingResponse(_sse(engine, req, store), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app


def _engine(req: RunRequest, make_model: Callable[[str], ChatModel]) -> Any:
    m = make_model(req.model)
    tools = named_tools(req.tools)
    budgets = Budgets(max_steps=req.max_steps, max_tool_calls=req.max_tool_calls, max_cost_usd=req.max_cost_usd,
                      wall_timeout_s=req.timeout_s)
    if req.mode == "swarm":
        from ..engines.swarm import Swarm

        sub = make_model(req.sub_model) if req.sub_model else None
        return Swarm(m, tools, sub_model=sub, max_parallel=req.max_parallel, thinking=req.thinking,
                     budgets=budgets.model_copy(update={"max_steps": min(req.max_steps, 15)}))
    from ..engines.interleaved import Interleaved

    return Interleaved(m, tools, thinking=req.thinking, preserve_reasoning=req.preserve_reasoning, budgets=budgets)


async def _sse(engine: Any, req: RunRequest, store: RunStore) -> AsyncIterator[bytes]:
    cancel = asyncio.Event()
    events = []
    try:
        async for ev in engine.stream(req.task, cancel=cancel):
            events.append(ev)
            yield f"event: {ev.type}\ndata: {event_to_json(ev)}\n\n".encode()
    finally:
        cancel.set()  # client gone (or done): stop the engine
        if events:
            final = next((e for e in reversed(events) if isinstance(e, RunFinished)), None)
            store.record_run(task=req.task, mode=req.mode, model=req.model, events=events, finished=final)
