"""`ponder mcp`: ponder's engines as MCP tools, for desktop assistants, IDEs and agents.

Two tools, over stdio or streamable HTTP (the official `mcp` SDK's server side):

* `research(question)` — a Swarm run: an orchestrator splits the question over parallel
  sub-agents and writes the answer from their results;
* `solve(task)` — an Interleaved run: think before every act, tools, preserved reasoning.

While a run goes on, the client gets MCP progress notifications (one per step, tool call,
sub-agent started or finished; only when it asked for progress with a progress token), and
the result carries the run id: the run is journaled like every run (`ponder runs`, the
server's `/v1/runs/{id}/events`). A cancelled request cancels its run, which is stored as
`cancelled`. Only catalog models run; a failed run is an MCP tool error naming the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .. import runs as runs_api
from ..core.errors import ConfigError
from ..core.events import RunStarted, StepStarted
from ..core.store import RunStore
from ..engines.build import EngineConfig, build_engine, build_tools
from ..models.base import ChatModel
from ..models.catalog import catalog
from ..tools.base import Tool
from .live import LiveRun
from .openai_stream import progress_line, short

try:  # SDK 2.x
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # pragma: no cover - SDK 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

INSTRUCTIONS = ("ponder runs slow, careful reasoning over real models. Use `research` for broad questions that "
                "split into independent parts (a swarm of parallel sub-agents), `solve` for a problem to work "
                "through step by step with tools. Both take minutes rather than seconds and report progress; "
                "each result names its run id.")


@dataclass
class MCPOptions:
    model: str = "smollm2"  # solve's model, and research's orchestrator unless swarm_model is set
    swarm_model: str | None = None
    sub_model: str | None = None  # research's sub-agents (default: the orchestrator's model)
    tools: tuple[str, ...] = ("calculator", "search")
    max_steps: int | None = None
    timeout_s: float | None = None


class RunAnswer(BaseModel):
    """A finished run: its answer and where to find everything else."""

    answer: str | None = Field(description="the run's answer")
    run_id: str = Field(description="the journaled run (`ponder runs`, GET /v1/runs/{run_id}/events)")
    status: Literal["ok", "budget", "cancelled", "error"]
    reason: str | None = None
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
    agents: int = 0
    wall_s: float = 0.0


class _Runner:
    def __init__(self, store: RunStore, options: MCPOptions, model_factory: Callable[[str], ChatModel] | None):
        self.store = store
        self.options = options
        self.factory = model_factory
        self._tools: list[Tool] | None = None

    def _check_model(self, name: str) -> str:
        name = name.strip()
        if self.factory is not None or name in (self.options.model, self.options.swarm_model, self.options.sub_model):
            return name
        known = catalog()
        if name not in known:
            raise ToolError(f"unknown model {name!r}: this server runs catalog models ({', '.join(sorted(known))})")
        return name

    def _make(self, name: str, cfg: EngineConfig) -> ChatModel:
        if self.factory is not None:
            return self.factory(name)
        from ..engines.build import default_model_factory

        return default_model_factory(name, cfg)

    def tools(self) -> list[Tool]:
        if self._tools is None:
            self._tools = build_tools(EngineConfig(tools=list(self.options.tools)))
        return self._tools

    async def run(self, ctx: Context, cfg: dict[str, Any], task: str) -> RunAnswer:
        if not task.strip():
            raise ToolError("the task is blank: give the question as text")
        o = self.options
        cfg = {"max_steps": o.max_steps, "timeout_s": o.timeout_s, **cfg, "tools": list(o.tools)}
        try:
            engine = build_engine(EngineConfig(**{k: v for k, v in cfg.items() if v is not None}),
                                  model_factory=self._make, tools=self.tools())
        except (ConfigError, ValueError) as e:
            raise ToolError(f"cannot start the run: {e}") from None
        store = self.store
        live = LiveRun(lambda sink, cancel: runs_api.execute(engine, task, sink, store=store, cancel=cancel),
                       name="ponder-mcp-run")
        main, n, fin = engine.main_agent, 0, None
        try:
            while (ev := await live.next()) is not None:
                tp = type(ev)
                line = None
                if tp is RunStarted:
                    line = f"run {ev.run_id} started ({ev.mode}, {ev.model})"
                elif tp is StepStarted:
                    if ev.agent == main:
                        line = f"step {ev.step}"
                elif ev.type == "run_finished":
                    fin = ev
                else:
                    line = progress_line(ev, main)
                if line is not None:
                    n += 1
                    await ctx.report_progress(n, None, line)
        except BaseException:
            live.stop()  # the request was cancelled: the run ends as cancelled, and is recorded
            raise
        if fin is None:
            raise ToolError("the run ended without a result")
        m = fin.metrics
        if fin.status == "error":
            raise ToolError(f"run {fin.run_id} failed: {short(fin.reason or 'unknown error', 600)}")
        return RunAnswer(answer=fin.answer, run_id=fin.run_id or "", status=fin.status, reason=fin.reason,
                         cost_usd=round(m.cost_usd, 8), model_calls=m.model_calls, tool_calls=m.tool_calls,
                         agents=m.agents, wall_s=m.wall_s)


def build_server(*, db: Path | str | None = None, options: MCPOptions | None = None,
                 model_factory: Callable[[str], ChatModel] | None = None) -> MCPServer:
    """The MCP server with `research` and `solve`. `model_factory(name)` replaces how models
    are made (tests pass scripted ones)."""
    opts = options or MCPOptions()
    runner = _Runner(RunStore(db), opts, model_factory)
    server = MCPServer(name="ponder", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(description="Research a broad question with a swarm of parallel sub-agents (ponder's Swarm "
                             "engine). Returns the answer and the run id; reports progress while it runs.")
    async def research(question: str, ctx: Context, model: str | None = None, sub_model: str | None = None,
                       max_agents: int | None = None) -> RunAnswer:
        orch = runner._check_model(model or opts.swarm_model or opts.model)
        sub = sub_model or opts.sub_model
        cfg = {"mode": "swarm", "model": orch, "sub_model": runner._check_model(sub) if sub else None,
               "max_agents": max_agents}
        return await runner.run(ctx, cfg, question)

    @server.tool(description="Solve a problem step by step, thinking before every tool call (ponder's Interleaved "
                             "engine). Returns the answer and the run id; reports progress while it runs.")
    async def solve(task: str, ctx: Context, model: str | None = None,
                    thinking: Literal["on", "off", "auto"] = "auto") -> RunAnswer:
        cfg = {"mode": "interleaved", "model": runner._check_model(model or opts.model), "thinking": thinking}
        return await runner.run(ctx, cfg, task)

    return server


async def serve_stdio(server: MCPServer) -> None:
    await server.run_stdio_async()


def http_app(server: MCPServer, *, host: str = "127.0.0.1", token: str | None = None, path: str = "/mcp") -> Any:
    """The streamable-HTTP ASGI app (at `path`), behind bearer auth when `token` is set."""
    from .auth import protect

    try:
        app = server.streamable_http_app(streamable_http_path=path, host=host)
    except TypeError:  # pragma: no cover - SDK 1.x: the path is a setting
        server.settings.streamable_http_path = path
        app = server.streamable_http_app()
    return protect(app, token)
