"""`model(name)`: the one way to get a ChatModel from a catalog name, URL or GGUF path."""

from __future__ import annotations

from typing import Any

from .base import ChatModel
from .catalog import resolve


def model(name: str, *, base_url: str | None = None, dialect: str | None = None, api_key: str | None = None, **opts: Any) -> ChatModel:
    """Return a ready backend for `name`.

    Embedded models (the bundled SmolLM2, any `.gguf` path) run in-process; everything
    else speaks HTTP through `OpenAICompatModel` with the model's wire dialect. A
    missing API key is reported here, before any request, naming the variable to set.
    """
    spec = resolve(name, base_url=base_url, dialect=dialect)
    if spec.dialect == "embedded":
        from .embedded import EmbeddedModel

        return EmbeddedModel(spec, **opts)
    if spec.dialect in ("glm-raw", "kimi-raw"):
        from .raw import RawCompletionModel

        return RawCompletionModel(spec, raw_format="glm47" if spec.dialect == "glm-raw" else "kimi_k2", api_key=api_key, **opts)
    from .openai_compat import OpenAICompatModel

    return OpenAICompatModel(spec, api_key=api_key, **opts)
