"""`ponder serve`: start runs over HTTP and stream their events as Server-Sent Events.

The server is a consumer of the event stream like the CLI: `POST /v1/runs` starts an
Interleaved or Swarm run and answers with `text/event-stream`, one SSE event per ponder
event (`event: <type>`, `data: <event JSON>`), from `run_started` (the run id) to `run_finished`.
Every run is journaled in the SQLite run store as it happens (the same `ponder.runs` path
as the CLI), so `GET /v1/runs/{id}/events` reads it, live or later. A client
that disconnects cancels its run (the engine ends cleanly with status `cancelled`).
The OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models` are
`openai_api.py`'s router; with a token every path but /healthz needs it (`auth.py`), and
`ponder serve` refuses a non-loopback address without one: runs execute tools.
`POST /v1/runs` passes the OpenAI endpoint's gate: a body over `--max-request-mb` is 413, a
model that is not in the catalog (an inline `DIALECT:URL#ID` the operator did not allow with
`--allow-endpoint`, a `.gguf` path) is 403, a blank task or a bad field is 422 (one line).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError, field_validator

from .. import runs as runs_api
from ..core.errors import PonderError
from ..core.events import event_to_json
from ..core.store import RunStore
from ..engines.build import EngineConfig, build_engine
from ..models.base import ChatModel
from ..models.registry import model as default_model_factory
from .auth import BearerAuth
from .openai_api import OpenAIOptions, OpenAIService
from .openai_api import router as openai_router
from .openai_schema import APIError, validation_message
from .viewer import viewer_router


class RunRequest(BaseModel):
    task: str = Field(min_length=1, max_length=1_000_000)
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

    @field_validator("task")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the task is blank: send the question as text")
        return v

    def engine_config(self) -> EngineConfig:
        return EngineConfig(mode=self.mode, model=self.model, sub_model=self.sub_model, thinking=self.thinking,
                            preserve_reasoning=self.preserve_reasoning, tools=self.tools,
                            max_steps=min(self.max_steps, 15) if self.mode == "swarm" else self.max_steps,
                            max_tool_calls=self.max_tool_calls, max_cost_usd=self.max_cost_usd,
                            timeout_s=self.timeout_s, max_parallel=self.max_parallel)


def parse_run_request(body: bytes) -> RunRequest:
    """The body of `POST /v1/runs`, or a one-line APIError (400 not JSON, 422 invalid)."""
    try:
        return RunRequest.model_validate_json(body)
    except ValidationError as e:
        errors = e.errors()
        if errors and errors[0].get("type") == "json_invalid":
            raise APIError(400, "the request body is not valid JSON; send a JSON object with task, mode, model, ...") from None
        raise APIError(422, validation_message(errors)[0]) from None


def create_app(*, db: Path | str | None = None, model_factory: Callable[[str], ChatModel] | None = None,
               token: str | None = None, openai: OpenAIOptions | None = None) -> FastAPI:
    """`token`: every request but /healthz needs `Authorization: Bearer <token>` (auth.py);
    `openai`: the OpenAI-compatible endpoints' options (openai_api.py)."""
    make_model = model_factory or default_model_factory
    store = RunStore(db)
    app = FastAPI(title="ponder", version="0.1.0")
    service = OpenAIService(store, model_factory, openai or OpenAIOptions())
    app.include_router(openai_router(service))
    if token:
        app.add_middleware(BearerAuth, token=token)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/runs")
    async def runs(limit: int = Query(50, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return store.runs(limit=limit)

    @app.get("/v1/runs/{run_id}/events")
    async def run_events(run_id: str) -> list[dict[str, Any]]:
        evs = store.events(run_id)
        if not evs:
            raise HTTPException(404, f"no run {run_id!r}; GET /v1/runs lists the stored runs")
        return [json.loads(event_to_json(e)) for e in evs]

    @app.post("/v1/runs")
    async def start_run(request: Request) -> StreamingResponse:
        try:  # the same gate as the OpenAI endpoint: size cap, then catalog models only
            req = parse_run_request(await service.read_body(request))
            for name in filter(None, (req.model, req.sub_model)):
                service.check_served(name)
        except APIError as e:
            raise HTTPException(e.status, e.message) from None
        try:
            engine = build_engine(req.engine_config(), model_factory=lambda name, _cfg: make_model(name))
        except (PonderError, ValueError) as e:  # unknown model, missing key, unknown tool
            raise HTTPException(400, str(e)) from None
        return StreamingResponse(_sse(engine, req.task, store), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    app.include_router(viewer_router(store))  # the run viewer: /, /runs/{id}, /api/runs (server/viewer.py)
    return app


async def _sse(engine: Any, task: str, store: RunStore) -> AsyncIterator[bytes]:
    """The run's events as SSE; the journal records the run whatever the client does (a
    client that goes away cancels the run, which is stored as cancelled)."""
    cancel = asyncio.Event()
    try:
        async for ev in runs_api.stream(engine, task, store=store, cancel=cancel):
            yield f"event: {ev.type}\ndata: {event_to_json(ev)}\n\n".encode()
    finally:
        cancel.set()
