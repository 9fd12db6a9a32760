"""ponder: slow AI — reasoning systems that plan, think and verify before they answer.

The public API is small on purpose:

    from ponder import Interleaved, Swarm, model, tool
    run, resume = ponder.run, ponder.resume     # journaled runs (the run store), resumable

Names load lazily so that `import ponder` stays cheap (the embedded llama.cpp engine and
the engines load only when used).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "model": "ponder.models.registry",
    "ChatModel": "ponder.models.base",
    "ChatRequest": "ponder.models.base",
    "Message": "ponder.core.messages",
    "ToolCall": "ponder.core.messages",
    "Usage": "ponder.core.messages",
    "tool": "ponder.tools.base",
    "Tool": "ponder.tools.base",
    "Toolbox": "ponder.tools.base",
    "Interleaved": "ponder.engines.interleaved",
    "Swarm": "ponder.engines.swarm",
    "SwarmConfig": "ponder.engines.swarm",
    "EngineConfig": "ponder.engines.build",
    "build_engine": "ponder.engines.build",
    "run": "ponder.runs",
    "stream": "ponder.runs",
    "resume": "ponder.runs",
    "Image": "ponder.core.messages",
    "RunStore": "ponder.core.store",
    "Budgets": "ponder.engines.base",
    "RunResult": "ponder.engines.base",
    "RunMetrics": "ponder.engines.base",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'ponder' has no attribute {name!r}")
    value = getattr(import_module(mod), name)
    globals()[name] = value
    return value
