"""`model(name)`: the one way to get a ChatModel from a catalog name, URL or GGUF path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import ChatModel
from .catalog import ModelSpec, resolve
from .profiles import check_spec


def model(name: str, *, base_url: str | None = None, dialect: str | None = None, api_key: str | None = None,
          headers: dict[str, str] | None = None, **opts: Any) -> ChatModel:
    """Return a ready backend for `name`, chosen by the spec's `backend`.

    Embedded models (the bundled SmolLM2, any `.gguf` path) run in-process; raw-completions
    models render their chat template client-side; everything else speaks HTTP through
    `OpenAICompatModel` in the model's wire dialect. `headers` are added to every request
    (after the catalog's own). Problems known before any request are raised here: an unknown
    model or dialect, a model retired on the endpoint it points at (naming the successor),
    a missing API key (naming the variable to set).
    """
    spec = resolve(name, base_url=base_url, dialect=dialect, headers=headers)
    check_spec(spec)
    make = BACKENDS.get(spec.backend)
    if make is None:
        raise ValueError(f"model {name!r} has backend {spec.backend!r}, which no backend is registered for "
                         f"(registered: {', '.join(BACKENDS)})")
    return make(spec, name, api_key, opts)


def _embedded(spec: ModelSpec, name: str, api_key: str | None, opts: dict[str, Any]) -> ChatModel:
    from .embedded import EmbeddedModel

    return EmbeddedModel(spec, **opts)


def _raw(spec: ModelSpec, name: str, api_key: str | None, opts: dict[str, Any]) -> ChatModel:
    from .raw import RawCompletionModel

    return RawCompletionModel(spec, raw_format=spec.raw_format, api_key=api_key, **opts)  # type: ignore[arg-type]


def _scripted(spec: ModelSpec, name: str, api_key: str | None, opts: dict[str, Any]) -> ChatModel:
    raise ValueError(f"{name!r} is a scripted test double: build it with ponder.testing.ScriptedModel")


def _http(spec: ModelSpec, name: str, api_key: str | None, opts: dict[str, Any]) -> ChatModel:
    from .openai_compat import OpenAICompatModel

    return OpenAICompatModel(spec, api_key=api_key, **opts)


Backend = Callable[[ModelSpec, str, "str | None", dict[str, Any]], ChatModel]
BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, make: Backend) -> None:
    """Make a backend available to catalog entries that name it (`backend = "NAME"`)."""
    BACKENDS[name] = make


for _name, _make in (("embedded", _embedded), ("raw-completions", _raw), ("scripted", _scripted), ("http", _http)):
    register_backend(_name, _make)
