"""`model(name)`: the one way to get a ChatModel from a catalog name, URL or GGUF path."""

from __future__ import annotations

from typing import Any

from .base import ChatModel
from .catalog import resolve
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
    if spec.backend == "embedded":
        from .embedded import EmbeddedModel

        return EmbeddedModel(spec, **opts)
    if spec.backend == "raw-completions":
        from .raw import RawCompletionModel

        return RawCompletionModel(spec, raw_format=spec.raw_format, api_key=api_key, **opts)  # type: ignore[arg-type]
    if spec.backend == "scripted":
        raise ValueError(f"{name!r} is a scripted test double: build it with ponder.testing.ScriptedModel")
    from .openai_compat import OpenAICompatModel

    return OpenAICompatModel(spec, api_key=api_key, **opts)
