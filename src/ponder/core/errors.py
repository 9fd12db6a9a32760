"""Typed errors. Every message names the problem and the fix, and never carries a secret."""

from __future__ import annotations


class PonderError(Exception):
    """Base of every error ponder raises on purpose."""


class ConfigError(PonderError):
    """Bad configuration: an unknown model, a missing key, a malformed config file."""


class UnknownModelError(ConfigError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(
            f"unknown model {name!r}. Known models: {', '.join(sorted(known))}. "
            "Add one in ~/.config/ponder/models.toml (or $PONDER_MODELS), or pass --base-url."
        )


class MissingKeyError(ConfigError):
    def __init__(self, model: str, env_var: str):
        self.model = model
        self.env_var = env_var
        super().__init__(f"model {model!r} needs an API key: set the environment variable {env_var}.")


class ModelError(PonderError):
    """A model call failed. `retryable` says whether the same call may succeed later."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, provider_message: str | None = None):
        self.status = status
        self.retryable = retryable
        self.provider_message = provider_message
        super().__init__(message)


class StreamInterrupted(ModelError):
    """The stream was cut mid-way; what arrived before the cut is kept in `partial`."""

    def __init__(self, message: str, partial: object | None = None):
        super().__init__(message, retryable=True)
        self.partial = partial


class StreamDamaged(ModelError):
    """Data inside the stream was lost (a chunk that is not JSON) or repaired (invalid UTF-8
    decoded with U+FFFD): the output is not what the model sent. What arrived is kept in
    `partial`; the call does not count as a success."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class MalformedReply(ModelError):
    """The model answered, but not in the structure the engine asked for."""


class ToolError(PonderError):
    """A tool failed; engines turn this into a tool message the model can act on."""


class BudgetExceeded(PonderError):
    def __init__(self, budget: str, limit: float, value: float):
        self.budget, self.limit, self.value = budget, limit, value
        super().__init__(f"budget {budget!r} reached: {value:g} of limit {limit:g}")


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Replace any secret occurring in `text` by a fixed marker (used on every error message)."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text
