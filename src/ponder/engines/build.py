"""One builder: `build_engine(EngineConfig)`, used by the CLI, the server, `ponder compare`,
`ponder resume` and the Python API, so that an option means the same in every entry point
and in both modes.

`EngineConfig` is the serialisable description of an engine (no secrets: API keys come from
the environment when the engine is built); it goes into every run's first event, which is
how `ponder resume` rebuilds the very engine that was running. Engines register by name
(`register_engine`): a new engine adds one builder here, and every entry point has it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core.errors import ConfigError
from ..models.base import ChatModel
from ..tools.base import Tool
from .base import Budgets, Engine

ModelFactory = Callable[..., ChatModel]
Builder = Callable[["EngineConfig", ChatModel, ModelFactory, list[Tool]], Engine]
DEFAULT_TOOLS = ("python", "calculator", "search")


class EngineConfig(BaseModel):
    """Everything that configures a run's engine. Every field reaches both modes where it
    means something there (`sub_*` and `max_parallel` only in a swarm)."""

    model_config = ConfigDict(extra="forbid")

    mode: str = "interleaved"
    model: str = "smollm2"
    sub_model: str | None = None  # swarm: the sub-agents' model (default: `model`)
    base_url: str | None = None
    dialect: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every request (gateways, routers)
    idle_timeout_s: float | None = Field(default=None, gt=0)  # HTTP: the longest silence within a stream
    threads: int | None = Field(default=None, ge=1)  # embedded: llama.cpp threads
    model_options: dict[str, Any] = Field(default_factory=dict)  # backend options (e.g. embedded max_tokens)
    thinking: Literal["on", "off", "auto"] = "auto"
    first_tool_choice: Literal["auto", "required", "none"] | None = None  # the first step of each (sub-)agent's turn
    preserve_reasoning: bool = True
    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    corpus: str | None = None  # a directory or a built index for the search tools
    verify_code: bool = True
    self_check: bool = False
    max_steps: int | None = Field(default=None, ge=1)  # the main agent (the orchestrator in a swarm)
    sub_max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)  # wall clock of the whole run
    max_parallel: int = Field(default=100, ge=1)
    max_agents: int = Field(default=100, ge=1)
    sub_timeout_s: float | None = Field(default=None, gt=0)
    guided: bool | None = None
    orch_max_tokens: int | None = Field(default=None, ge=1)
    executor: Literal["local", "ray"] = "local"  # swarm: where sub-agents run (ray: a Ray cluster)
    ray_address: str | None = None  # swarm on ray: the cluster ("auto", HOST:PORT, ray://HOST:PORT)
    ray_hosts: int | None = Field(default=None, ge=1)  # swarm on ray: actors holding sub-agents (default: one per CPU)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, v: str) -> str:
        if v not in ENGINES:
            raise ValueError(f"unknown mode {v!r}; use one of: {', '.join(ENGINES)}")
        return v

    @model_validator(mode="after")
    def _executor_needs_swarm(self) -> EngineConfig:
        if self.executor != "local" and self.mode != "swarm":
            raise ValueError(f"executor {self.executor!r} runs a swarm's sub-agents on a cluster; use mode 'swarm' "
                             f"(the {self.mode} mode runs in this process)")
        return self

    def run_budgets(self, default_steps: int, default_tool_calls: int | None = None) -> Budgets:
        return Budgets(max_steps=self.max_steps or default_steps,
                       max_tool_calls=self.max_tool_calls if self.max_tool_calls is not None else default_tool_calls,
                       max_tokens=self.max_tokens, max_cost_usd=self.max_cost_usd, wall_timeout_s=self.timeout_s)


ENGINES: dict[str, Builder] = {}


def register_engine(name: str, builder: Builder) -> None:
    """Make an engine available by name to every entry point (`--mode NAME`)."""
    ENGINES[name] = builder


def model_options(config: EngineConfig, name: str) -> dict[str, Any]:
    """The backend options a config implies for model `name` (each backend takes its own)."""
    from ..models.catalog import resolve

    opts = dict(config.model_options)
    spec = resolve(name, base_url=config.base_url, dialect=config.dialect)
    if spec.dialect == "embedded":
        if config.threads is not None:
            opts["n_threads"] = config.threads
    else:
        if config.idle_timeout_s is not None:
            opts["idle_timeout_s"] = config.idle_timeout_s
        if config.headers:
            opts["headers"] = dict(config.headers)
    return opts


def default_model_factory(name: str, config: EngineConfig) -> ChatModel:
    from ..models.registry import model

    return model(name, base_url=config.base_url, dialect=config.dialect, **model_options(config, name))


def build_tools(config: EngineConfig) -> list[Tool]:
    from ..tools import named_tools

    try:
        if config.corpus is not None:
            return named_tools(config.tools, corpus=config.corpus)  # type: ignore[call-arg]
        return named_tools(config.tools)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build_engine(config: EngineConfig | dict[str, Any], *, model_factory: Callable[[str, EngineConfig], ChatModel] | None = None,
                 tools: list[Tool] | None = None) -> Engine:
    """The engine `config` describes, with its models and tools. `model_factory(name, config)`
    replaces how models are made (tests pass scripted ones); `tools` replaces the named tools."""
    cfg = config if isinstance(config, EngineConfig) else EngineConfig.model_validate(config)
    make = model_factory or default_model_factory
    main = make(cfg.model, cfg)
    engine = ENGINES[cfg.mode](cfg, main, lambda name: make(name, cfg), tools if tools is not None else build_tools(cfg))
    engine.settings = cfg.model_dump(exclude_defaults=True) | {"mode": cfg.mode, "model": cfg.model}  # type: ignore[attr-defined]
    return engine


def _interleaved(cfg: EngineConfig, model: ChatModel, make: ModelFactory, tools: list[Tool]) -> Engine:
    from .interleaved import Interleaved

    return Interleaved(model, tools, thinking=cfg.thinking, preserve_reasoning=cfg.preserve_reasoning,
                       budgets=cfg.run_budgets(12), verify_code=cfg.verify_code, self_check=cfg.self_check,
                       first_tool_choice=cfg.first_tool_choice)


def _swarm(cfg: EngineConfig, model: ChatModel, make: ModelFactory, tools: list[Tool]) -> Engine:
    from .swarm import Swarm

    sub = make(cfg.sub_model) if cfg.sub_model else None
    return Swarm(model, tools, sub_model=sub, max_parallel=cfg.max_parallel, max_agents=cfg.max_agents,
                 budgets=cfg.run_budgets(15, 1_500), sub_budgets=Budgets(max_steps=cfg.sub_max_steps or 100),
                 thinking=cfg.thinking, preserve_reasoning=cfg.preserve_reasoning, verify_code=cfg.verify_code,
                 self_check=cfg.self_check, sub_timeout_s=cfg.sub_timeout_s, guided=cfg.guided,
                 orch_max_tokens=cfg.orch_max_tokens, first_tool_choice=cfg.first_tool_choice,
                 executor=cfg.executor, ray_address=cfg.ray_address, ray_hosts=cfg.ray_hosts)


register_engine("interleaved", _interleaved)
register_engine("swarm", _swarm)
