"""The model catalog: name → where it lives, how it speaks, what it costs.

Built-in entries carry the providers' published prices (USD per 1M tokens, see
`shared/reference`). Users add or override entries in a TOML file
(`$PONDER_MODELS`, else `~/.config/ponder/models.toml`):

    [models.my-qwen]
    base_url = "http://10.0.0.5:8000/v1"
    model_id = "Qwen/Qwen3-32B"
    dialect = "vllm"
    native_thinking = true
    price_input = 0.0
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from ..core.errors import ConfigError, UnknownModelError
from ..core.messages import Usage

Dialect = Literal["kimi", "glm", "deepseek", "vllm", "sglang", "llamacpp", "openai", "embedded", "scripted", "glm-raw", "kimi-raw"]


class ModelSpec(BaseModel):
    name: str
    model_id: str
    dialect: Dialect
    base_url: str | None = None
    api_key_env: str | None = None
    context_window: int = 32_768
    price_input: float = 0.0  # USD per 1M uncached prompt tokens
    price_cached_input: float = 0.0
    price_output: float = 0.0
    native_thinking: bool = False
    path: str | None = None  # embedded: a GGUF file (None = the bundled SmolLM2)
    description: str = ""

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
        return (
            (usage.prompt_tokens - cached) * self.price_input
            + cached * self.price_cached_input
            + usage.completion_tokens * self.price_output
        ) / 1e6

    def key_is_set(self) -> bool:
        return self.api_key_env is None or bool(os.environ.get(self.api_key_env))


BUILTIN: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            name="kimi-k2.5", model_id="kimi-k2.5", dialect="kimi", base_url="https://api.moonshot.ai/v1",
            api_key_env="MOONSHOT_API_KEY", context_window=262_144, price_input=0.60, price_cached_input=0.10,
            price_output=3.00, native_thinking=True, description="Moonshot Kimi K2.5 (1T MoE, 32B active)",
        ),
        ModelSpec(
            name="kimi-k2-thinking", model_id="kimi-k2-thinking", dialect="kimi", base_url="https://api.moonshot.ai/v1",
            api_key_env="MOONSHOT_API_KEY", context_window=262_144, price_input=0.60, price_cached_input=0.15,
            price_output=2.50, native_thinking=True, description="Moonshot Kimi K2 Thinking",
        ),
        ModelSpec(
            name="glm-4.7", model_id="glm-4.7", dialect="glm", base_url="https://api.z.ai/api/paas/v4",
            api_key_env="ZAI_API_KEY", context_window=200_000, price_input=0.60, price_cached_input=0.11,
            price_output=2.20, native_thinking=True, description="Z.ai GLM-4.7 (355B MoE, 32B active)",
        ),
        ModelSpec(
            name="glm-4.5-air", model_id="glm-4.5-air", dialect="glm", base_url="https://api.z.ai/api/paas/v4",
            api_key_env="ZAI_API_KEY", context_window=128_000, price_input=0.20, price_cached_input=0.03,
            price_output=1.10, native_thinking=True, description="Z.ai GLM-4.5-Air (106B MoE, 12B active)",
        ),
        ModelSpec(
            name="deepseek-reasoner", model_id="deepseek-reasoner", dialect="deepseek",
            base_url="https://api.deepseek.com/v1", api_key_env="DEEPSEEK_API_KEY", context_window=128_000,
            price_input=0.28, price_cached_input=0.028, price_output=0.42, native_thinking=True,
            description="DeepSeek V3.x thinking mode",
        ),
        ModelSpec(
            name="deepseek-chat", model_id="deepseek-chat", dialect="deepseek", base_url="https://api.deepseek.com/v1",
            api_key_env="DEEPSEEK_API_KEY", context_window=128_000, price_input=0.28, price_cached_input=0.028,
            price_output=0.42, description="DeepSeek V3.x non-thinking mode",
        ),
        ModelSpec(
            name="smollm2", model_id="SmolLM2-135M-Instruct-Q4_1", dialect="embedded", context_window=8192,
            description="embedded, offline: SmolLM2-135M-Instruct Q4_1 in-process via llama.cpp (cost 0)",
        ),
    ]
}


def _config_path() -> Path:
    env = os.environ.get("PONDER_MODELS")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "ponder" / "models.toml"


def load_user_models(path: Path | None = None) -> dict[str, ModelSpec]:
    path = path or _config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"model config {path} is not valid TOML: {e}. Fix the file or unset PONDER_MODELS.") from e
    out: dict[str, ModelSpec] = {}
    for name, entry in (data.get("models") or {}).items():
        base = BUILTIN.get(name)
        merged = {**(base.model_dump() if base else {"model_id": name, "dialect": "openai"}), **entry, "name": name}
        try:
            out[name] = ModelSpec.model_validate(merged)
        except ValidationError as e:
            raise ConfigError(f"model {name!r} in {path} is invalid: {e.errors()[0]['msg']} at {e.errors()[0]['loc']}") from e
    return out


def catalog(path: Path | None = None) -> dict[str, ModelSpec]:
    return {**BUILTIN, **load_user_models(path)}


_PREFIX_DIALECTS = ("vllm", "sglang", "llamacpp", "openai", "kimi", "glm", "deepseek", "glm-raw", "kimi-raw")


def resolve(name: str, *, base_url: str | None = None, dialect: str | None = None, path: Path | None = None) -> ModelSpec:
    """Find a model by name.

    Also accepts `DIALECT:URL#MODEL_ID` (e.g. `vllm:http://h:8000/v1#qwen3`; `glm-raw:` and
    `kimi-raw:` render the chat template client-side over /v1/completions), a path to a
    `.gguf` file (embedded), and any name together with `base_url` (an ad-hoc
    OpenAI-compatible endpoint).
    """
    cat = catalog(path)
    if name in cat and base_url is None:
        spec = cat[name]
        return spec.model_copy(update={"dialect": dialect}) if dialect else spec
    if name.endswith(".gguf"):
        return ModelSpec(name=Path(name).stem, model_id=Path(name).stem, dialect="embedded", path=name)
    head, sep, rest = name.partition(":")
    if sep and head in _PREFIX_DIALECTS and rest.startswith("http"):
        url, _, model_id = rest.partition("#")
        return ModelSpec(name=name, model_id=model_id or "default", dialect=dialect or head, base_url=url,
                         native_thinking=head in ("kimi", "glm", "deepseek", "glm-raw", "kimi-raw"))
    if base_url:
        base = cat.get(name)
        if base:
            return base.model_copy(update={"base_url": base_url, **({"dialect": dialect} if dialect else {})})
        return ModelSpec(name=name, model_id=name, dialect=dialect or "openai", base_url=base_url)
    raise UnknownModelError(name, list(cat))
