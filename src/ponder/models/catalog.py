"""The model catalog: name → where it lives, how it speaks, what it costs, which rules it has.

The built-in entries and each wire dialect's default profile are data
(`data/catalog.toml`, see `profiles.py`). Users add or override entries, field by field, in
a TOML file of the same shape (`$PONDER_MODELS`, else `~/.config/ponder/models.toml`):

    [models.my-qwen]
    base_url = "http://10.0.0.5:8000/v1"
    model_id = "Qwen/Qwen3-32B"
    dialect = "vllm"
    headers = { "X-Team" = "research", "X-Gateway-Key" = "${GATEWAY_KEY}" }

    [models.my-qwen.profile]
    native_thinking = true
    vision = true

`backend` (how ponder reaches the model: http, raw-completions, embedded, scripted) is
separate from `dialect` (how the JSON is written). A bad file is a one-line `ConfigError`
naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import ConfigError, UnknownModelError
from ..core.messages import Usage
from .profiles import WIRE_FIELDS, Capabilities, Profile, dialect_defaults, shipped_data

Dialect = Literal["kimi", "glm", "deepseek", "vllm", "sglang", "llamacpp", "openai", "embedded", "scripted"]
Backend = Literal["http", "raw-completions", "embedded", "scripted"]


def base_url_problem(url: str, what: str = "base URL") -> str | None:
    """What is wrong with an endpoint URL, in words (None: nothing). Checked where a URL comes
    in (the catalog, `--base-url`, `DIALECT:URL#ID`), so that a typo is a one-line error
    before any request, not an HTTP client's traceback at the first call."""
    example = "e.g. http://127.0.0.1:8000/v1"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or outside 0-65535
        return f"{what} {url!r} has a bad port: use a number from 1 to 65535, {example}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{what} {url!r} is not an http(s) URL with a host; give one like {example[5:]}"
    if port == 0:
        return f"{what} {url!r} has port 0: use a number from 1 to 65535, {example}"
    return None
WIRE_DIALECTS = ("kimi", "glm", "deepseek", "vllm", "sglang", "llamacpp", "openai")
# Older names that also chose a backend: still accepted wherever a dialect is.
LEGACY_DIALECTS: dict[str, tuple[str, str]] = {
    "glm-raw": ("glm", "raw-completions"),
    "kimi-raw": ("kimi", "raw-completions"),
    "embedded": ("embedded", "embedded"),
    "scripted": ("scripted", "scripted"),
}


class ModelSpec(BaseModel):
    """One catalog entry. `profile` holds the provider's rules (the dialect's defaults with
    the entry's overrides applied); engines read `capabilities` and `backend`, never
    `dialect` (`dialect == "embedded"` still works while engines move over)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    model_id: str
    dialect: Dialect
    backend: str = "http"  # a name in models.registry.BACKENDS (built in: http, raw-completions, embedded, scripted)
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # sent on every request (gateways, routers)
    context_window: int | None = None  # None: not published
    price_input: float | None = None  # USD per 1M uncached prompt tokens; None: not published
    price_cached_input: float | None = None
    price_output: float | None = None
    path: str | None = None  # embedded: a GGUF file (None = the bundled SmolLM2)
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    profile: Profile = Field(default_factory=Profile)

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        """Legacy dialect names → (dialect, backend); the profile = dialect defaults + overrides;
        a top-level `native_thinking` (the old field) is a profile override."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        d = data.get("dialect")
        if isinstance(d, str) and d in LEGACY_DIALECTS:
            data["dialect"], backend = LEGACY_DIALECTS[d]
            data.setdefault("backend", backend)
        if data.get("dialect") == "embedded" or data.get("backend") == "embedded":
            data["dialect"], data["backend"] = "embedded", "embedded"
        elif data.get("dialect") == "scripted":
            data.setdefault("backend", "scripted")
        prof = data.get("profile")
        if not isinstance(prof, Profile):
            over = dict(prof) if isinstance(prof, dict) else {}
            if "native_thinking" in data:  # the old top-level field: it wins, as it did before profiles
                over["native_thinking"] = data.pop("native_thinking")
            data["profile"] = {**dialect_defaults(str(data.get("dialect"))), **over}
        else:
            data.pop("native_thinking", None)
        return data

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None and (problem := base_url_problem(v)):
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _check_backend(self) -> ModelSpec:
        if self.backend == "raw-completions" and self.dialect not in ("glm", "kimi"):
            raise ValueError(f"backend 'raw-completions' renders the GLM or Kimi template: dialect must be glm or kimi, "
                             f"not {self.dialect!r}")
        return self

    # ---- what engines read ------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        p = self.profile
        # ponder renders raw-completions prompts itself, as text: no image parts there
        return Capabilities(native_thinking=p.native_thinking, constrained_decoding=p.constrained_decoding,
                            vision=p.vision and self.backend == "http")

    @property
    def native_thinking(self) -> bool:
        return self.profile.native_thinking

    @property
    def raw_format(self) -> str:
        """The client-side template of a raw-completions backend."""
        return "glm47" if self.dialect == "glm" else "kimi_k2"

    @property
    def prices_known(self) -> bool:
        return None not in (self.price_input, self.price_cached_input, self.price_output)

    def cost(self, usage: Usage) -> float:
        """USD for `usage`; an unpublished price counts as 0 (see `prices_known`)."""
        cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
        return (
            (usage.prompt_tokens - cached) * (self.price_input or 0.0)
            + cached * (self.price_cached_input or 0.0)
            + usage.completion_tokens * (self.price_output or 0.0)
        ) / 1e6

    def key_is_set(self) -> bool:
        return self.api_key_env is None or bool(os.environ.get(self.api_key_env))

    def request_headers(self) -> dict[str, str]:
        """`headers` with `${VAR}` replaced from the environment (keys stay out of the file)."""
        return {k: _expand(self.name, k, v) for k, v in self.headers.items()}

    def secret_header_values(self) -> list[str]:
        """Header values that came from the environment: redacted from every error message."""
        return [_expand(self.name, k, v) for k, v in self.headers.items() if "${" in v]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(model: str, key: str, value: str) -> str:
    def sub(m: re.Match[str]) -> str:
        v = os.environ.get(m.group(1))
        if v is None:
            raise ConfigError(f"header {key!r} of model {model!r} uses ${{{m.group(1)}}}: set the environment variable "
                              f"{m.group(1)}")
        return v

    return _VAR.sub(sub, value)


# ---- the raw catalog: dicts, merged field by field ------------------------------------------------

_ENTRY_KEYS = (set(ModelSpec.model_fields) - {"name"}) | {"native_thinking"}
_PROFILE_KEYS = set(Profile.model_fields)


def _config_path() -> Path:
    env = os.environ.get("PONDER_MODELS")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "ponder" / "models.toml"


def _nearest(key: str, valid: set[str]) -> str:
    near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(sorted(valid))}"


def read_config(path: Path) -> dict[str, Any]:
    """A user's model TOML as a dict, or a one-line `ConfigError` naming the file and the fix."""
    fix = "fix the file or unset PONDER_MODELS"
    if path.is_dir():
        raise ConfigError(f"model config {path} is a directory; point PONDER_MODELS at a .toml file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"model config {path} cannot be read ({e.strerror or e}); {fix}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"model config {path} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"model config {path} is not valid TOML: {e}. Fix the file or unset PONDER_MODELS.") from None
    for key in data:
        if key != "models":
            raise ConfigError(f"model config {path}: unknown table {key!r}{_nearest(key, {'models'})} "
                              "(entries go under [models.NAME])")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"model config {path}: `models` must be a table of entries ([models.NAME] with base_url, "
                          f"model_id, dialect, ...), not {type(models).__name__}; {fix}")
    for name, entry in models.items():
        check_entry(path, name, entry)
    return models


def check_entry(path: Path | str, name: str, entry: Any) -> None:
    where = f"model config {path}: models.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table ([models.{_q(name)}] with base_url = ..., model_id = ...), "
                          f"not a {type(entry).__name__}")
    for key, value in entry.items():
        if key not in _ENTRY_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}{_nearest(key, _ENTRY_KEYS)}")
        if key == "profile":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.profile must be a table ([models.{_q(name)}.profile]), "
                                  f"not a {type(value).__name__}")
            for pk in value:
                if pk not in _PROFILE_KEYS:
                    raise ConfigError(f"{where}.profile: unknown key {pk!r}{_nearest(pk, _PROFILE_KEYS)}")


def _q(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = {**base, **over}
    if "profile" in base or "profile" in over:
        out["profile"] = {**(base.get("profile") or {}), **(over.get("profile") or {})}
    return out


def raw_catalog(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Built-in entries with the user's file merged over them, still as dicts."""
    out = {name: dict(entry) for name, entry in shipped_data()["models"].items()}
    path = path or _config_path()
    if path.exists() or path.is_symlink():
        for name, entry in read_config(path).items():
            base = out.get(name) or {"model_id": name, "dialect": "openai"}
            out[name] = _merge(base, entry)
    return out


def _with_dialect(entry: dict[str, Any], dialect: str) -> dict[str, Any]:
    """`entry` spoken to in another dialect: its profile keeps what the model is (thinking,
    vision, replay policy, effort levels, retirement) and drops what the old provider's wire
    enforced (flags, fixed sampling, tool_choice limits: `WIRE_FIELDS`)."""
    d, backend = LEGACY_DIALECTS.get(dialect, (dialect, "http"))
    old = str(entry.get("dialect"))
    out = {**entry, "dialect": d, "backend": backend}
    if d != old:
        own = {k: v for k, v in (entry.get("profile") or {}).items() if k not in WIRE_FIELDS}
        # a Kimi/GLM/DeepSeek model thinks natively whoever serves it (a dialect default)
        own.setdefault("native_thinking", dialect_defaults(old).get("native_thinking", False))
        out["profile"] = own
    return out


def build_spec(name: str, entry: dict[str, Any], where: str = "the catalog") -> ModelSpec:
    try:
        return ModelSpec.model_validate({**entry, "name": name})
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        msg = str(err["msg"]).removeprefix("Value error, ")
        if loc == "base_url":  # the message names the URL and the fix
            raise ConfigError(f"model {name!r}{'' if where.startswith('--') else ' in ' + where}: {msg}") from None
        raise ConfigError(f"model {name!r} in {where} is invalid: {loc}: {msg}{got}") from None


def catalog(path: Path | None = None) -> dict[str, ModelSpec]:
    where = str(path or _config_path())
    return {name: build_spec(name, entry, where) for name, entry in raw_catalog(path).items()}


def check_dialect(dialect: str) -> str:
    """`dialect` if ponder knows it, else a one-line ConfigError listing the valid ones."""
    if dialect in WIRE_DIALECTS or dialect in LEGACY_DIALECTS:
        return dialect
    near = difflib.get_close_matches(dialect, [*WIRE_DIALECTS, *LEGACY_DIALECTS], n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"unknown dialect {dialect!r}{hint}; choose one of {', '.join(sorted(WIRE_DIALECTS))}, or glm-raw / "
                      "kimi-raw for raw completions")


_PREFIX_DIALECTS = (*WIRE_DIALECTS, "glm-raw", "kimi-raw")


def resolve(name: str, *, base_url: str | None = None, dialect: str | None = None, path: Path | None = None,
            headers: dict[str, str] | None = None) -> ModelSpec:
    """Find a model by name.

    Also accepts `DIALECT:URL#MODEL_ID` (e.g. `vllm:http://h:8000/v1#qwen3`; `glm-raw:` and
    `kimi-raw:` render the chat template client-side over /v1/completions), a path to a
    `.gguf` file (embedded), and any name together with `base_url` (an ad-hoc
    OpenAI-compatible endpoint). `headers` are added to the entry's own.
    """
    if dialect is not None:
        check_dialect(dialect)
    raw = raw_catalog(path)
    where = str(path or _config_path())
    extra = {"headers": headers} if headers else {}
    entry: dict[str, Any] | None = None
    if name in raw:
        entry = raw[name]
        if base_url:
            entry = {**entry, "base_url": base_url}
            where = "--base-url"
        if dialect:
            entry = _with_dialect(entry, dialect)
    elif name.endswith(".gguf"):
        stem = Path(name).stem
        entry = {"model_id": stem, "dialect": "embedded", "path": name, "price_input": 0.0, "price_cached_input": 0.0,
                 "price_output": 0.0}
    else:
        head, sep, rest = name.partition(":")
        if sep and head in _PREFIX_DIALECTS and rest.startswith("http"):
            url, _, model_id = rest.partition("#")
            entry = {"model_id": model_id or "default", "dialect": dialect or head, "base_url": url}
            where = "--model"
        elif base_url:
            entry = {"model_id": name, "dialect": dialect or "openai", "base_url": base_url}
            where = "--base-url"
    if entry is None:
        raise UnknownModelError(name, list(raw))
    if extra:
        entry = {**entry, "headers": {**(entry.get("headers") or {}), **headers}}  # type: ignore[dict-item]
    return build_spec(name, entry, where)
