"""Provider profiles: each model's rules on the wire, as data.

Providers change their rules within months (which reasoning must come back, whether
sampling may be overridden, which `tool_choice` values work, whether thinking can be
switched off), so the rules are not code. A `Profile` holds them; the defaults per wire
dialect and the built-in catalog's per-model values ship in `data/catalog.toml`; a
user's `models.toml` overrides any field; `ponder probe` measures them against a live
endpoint and saves what it saw. Dialect code reads a profile; engines read only
`ModelSpec.capabilities` (native thinking, constrained decoding, vision).

Two things happen here before a request leaves: `check_request` refuses a request the
profile says the provider will reject (naming the rule and the fix), and `check_spec`
refuses a model retired on the endpoint it points at (naming the successor). After a
provider answers 4xx, `translate_error` turns a message that matches a known rule into
the same kind of message.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict

from ..core.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from .base import ChatRequest
    from .catalog import ModelSpec

ReplayPolicy = Literal["never", "interleaved", "preserved"]
SAMPLING_PARAMS = ("temperature", "top_p", "n", "presence_penalty", "frequency_penalty")
TOOL_CHOICES = ("auto", "none", "required", "function")


class Profile(BaseModel):
    """One model's rules as served by one provider. Every field can be overridden in TOML
    under `[models."NAME".profile]`. Vocabulary for replay (see docs/architecture.md):
    never (no earlier reasoning goes back), interleaved (the current tool loop's, since the
    last user message), preserved (every earlier turn's, verbatim, in order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- capabilities: what engines read (through ModelSpec.capabilities) ----------------------
    native_thinking: bool = False  # emits reasoning by itself (no elicitation needed)
    constrained_decoding: bool = False  # the backend enforces a JSON schema/grammar on output
    vision: bool = False  # accepts image_url content parts

    # -- thinking -----------------------------------------------------------------------------
    thinking: Literal["toggle", "always", "never"] = "toggle"  # always: cannot be switched off
    thinking_default: Literal["on", "off"] | None = None  # sent when a request leaves it unset
    thinking_flag: list[str] = []  # dotted body paths carrying on/off, e.g. "thinking.type"
    thinking_on: Any = None
    thinking_off: Any = None
    effort_levels: list[str] | None = None  # accepted reasoning_effort values; None: not checked
    effort_default: str | None = None  # the provider's default (informational)
    effort_flag: str = "reasoning_effort"

    # -- replay -------------------------------------------------------------------------------
    replay: ReplayPolicy = "never"  # what goes back when a request does not ask to preserve
    preserve: bool = True  # whether a request may raise replay to "preserved"
    preserve_flag: str | None = None  # dotted path of the switch, e.g. "thinking.keep"
    preserve_on: Any = None  # its value when preserving
    preserve_off: Any = None  # its value otherwise (unset: not sent)
    # which turns must carry the reasoning field (sent empty when a turn has none)
    replay_required: Literal["none", "tool-calls", "all"] = "none"
    reasoning_format: Literal["field", "tags"] = "field"  # tags: <think>…</think> in the content
    strict: bool = False  # last seen: a missing required reasoning field is answered with a 400

    # -- sampling and tools -------------------------------------------------------------------
    fixed_sampling: list[str] = []  # the provider fixes these: sending any value is an error
    recommended_sampling: dict[str, float] = {}  # sent when a request gives none
    recommended_sampling_instant: dict[str, float] = {}  # the same with thinking off
    tool_choice: list[str] | None = None  # accepted: auto, none, required, function; None: any
    parallel_tool_calls: bool | None = None  # observed by `ponder probe`
    stream_usage: bool | None = None  # observed: usage arrives at the end of a stream

    # -- lifecycle ----------------------------------------------------------------------------
    retired_on: list[str] = []  # hosts where this model id no longer answers
    retired_since: str | None = None
    successor: str | None = None
    observed: str | None = None  # when and where `ponder probe` measured this profile

    def allows_tool_choice(self, choice: str | dict[str, Any] | None) -> bool:
        """Whether this provider accepts `choice` (None, the provider's default, always)."""
        return choice is None or self.tool_choice is None or _choice_kind(choice) in self.tool_choice

    def sampling_allowed(self, param: str) -> bool:
        return param not in self.fixed_sampling

    def replay_key(self) -> tuple[Any, ...]:
        """Everything the per-message replay decision depends on (a wire-cache key part)."""
        return (self.replay, self.preserve, self.replay_required, self.reasoning_format)


# Fields that describe the provider's wire rather than the model: dropped when a catalog
# model is pointed at another dialect (self-hosted weights do not inherit the vendor's API).
WIRE_FIELDS = frozenset({
    "constrained_decoding", "thinking_default", "thinking_flag", "thinking_on", "thinking_off", "effort_flag", "preserve_flag",
    "preserve_on", "preserve_off", "recommended_sampling", "recommended_sampling_instant", "fixed_sampling",
    "tool_choice", "strict", "parallel_tool_calls", "stream_usage", "observed",
})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine may rely on. Engines read these, never a dialect or backend name."""

    native_thinking: bool
    constrained_decoding: bool
    vision: bool


class RequestRefused(ModelError):
    """A request the provider would reject, refused before it was sent. `rule` names it."""

    def __init__(self, message: str, rule: str):
        super().__init__(message, retryable=False)
        self.rule = rule


# ---- the shipped data ----------------------------------------------------------------------------


@cache
def shipped_data() -> dict[str, Any]:
    """`data/catalog.toml`: default profiles per dialect and the built-in catalog."""
    text = resources.files("ponder.models").joinpath("data/catalog.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def dialect_defaults(dialect: str) -> dict[str, Any]:
    """The default profile fields of a wire dialect (an unknown one: the plain OpenAI API's)."""
    d = shipped_data()["dialects"]
    return dict(d.get(dialect) or d["openai"])


# ---- checks before a request --------------------------------------------------------------------


def _choice_kind(choice: str | dict[str, Any]) -> str:
    return "function" if isinstance(choice, dict) else str(choice)


def _flag(param: str) -> str:
    return "--" + param.replace("_", "-")


def check_request(spec: ModelSpec, request: ChatRequest) -> None:
    """Raise `RequestRefused` for a request the profile says the provider will reject."""
    p = spec.profile
    name = spec.name
    for param in p.fixed_sampling:
        if getattr(request, param, None) is not None or param in request.extra_body:
            raise RequestRefused(f"{name} fixes {param}; drop {_flag(param)} (the provider rejects any value set by "
                                 "the caller)", "fixed_sampling")
    if request.tools and not p.allows_tool_choice(request.tool_choice):
        kind = _choice_kind(request.tool_choice)  # type: ignore[arg-type]
        allowed = ", ".join(p.tool_choice or [])
        raise RequestRefused(
            f"{name} rejects tool_choice={kind!r} (accepted: {allowed}); use tool_choice='auto'", "tool_choice")
    if p.thinking == "always" and request.thinking == "off":
        raise RequestRefused(f"{name} always thinks (thinking cannot be switched off); drop --thinking off", "thinking")
    effort = request.reasoning_effort
    if effort is not None and p.effort_levels is not None and effort not in p.effort_levels:
        if p.effort_levels:
            raise RequestRefused(f"{name} accepts reasoning_effort {', '.join(p.effort_levels)}; "
                                 f"got {effort!r}: choose one of those", "effort_levels")
        raise RequestRefused(f"{name} takes no reasoning_effort; drop --effort", "effort_levels")
    if not spec.capabilities.vision:
        for m in request.messages:
            if m.images:
                raise RequestRefused(
                    f"{name} does not accept image inputs (its profile has vision = false); drop --image, or set "
                    f'vision = true under [models."{name}".profile] in models.toml if the endpoint does', "vision")


def check_spec(spec: ModelSpec) -> None:
    """Raise `ConfigError` when the model is retired on the host its base_url points at."""
    p = spec.profile
    if not p.retired_on or not spec.base_url:
        return
    host = (urlparse(spec.base_url).hostname or "").lower()
    if host in {h.lower() for h in p.retired_on}:
        since = f" on {p.retired_since}" if p.retired_since else ""
        succ = f"; use {p.successor} (--model {p.successor})" if p.successor else ""
        raise ConfigError(f"{spec.name} was retired on {host}{since} (calls answer 404){succ}, or point --base-url at a "
                          f"self-hosted endpoint that still serves it")


def adapt(spec: ModelSpec, request: ChatRequest) -> ChatRequest:
    """For engines: the request without the optional settings this provider refuses (fixed
    sampling values, `thinking="off"` on an always-thinking model). A user's explicit choice
    should go through `check_request` instead, so the user hears about it."""
    p = spec.profile
    upd: dict[str, Any] = {}
    for param in p.fixed_sampling:
        if getattr(request, param, None) is not None:
            upd[param] = None
    if any(k in request.extra_body for k in p.fixed_sampling):
        upd["extra_body"] = {k: v for k, v in request.extra_body.items() if k not in p.fixed_sampling}
    if p.thinking == "always" and request.thinking == "off":
        upd["thinking"] = None
    return request.model_copy(update=upd) if upd else request


# ---- translating a provider's 4xx -------------------------------------------------------------

_SAMPLING_RE = re.compile(r"\b(temperature|top_p|presence_penalty|frequency_penalty)\b")


def translate_error(spec: ModelSpec, status: int, provider_message: str) -> str | None:
    """A provider error that matches a known rule, said the way `check_request` says it
    (with the provider's own words kept); None when nothing matches."""
    if status < 400 or status >= 500:
        return None
    low = provider_message.lower()
    name = spec.name
    probe = f"; `ponder probe {name}` records the rule in the profile"
    rule: str | None = None
    if "reasoning_content" in low and any(w in low for w in ("missing", "must", "required", "require")):
        rule = (f"{name} requires earlier reasoning back (reasoning_content on assistant turns); keep each turn's "
                "reasoning verbatim in the history (preserve_reasoning, no edits, no turns from another model)")
    elif "reasoning_effort" in low:
        rule = f"{name} rejected this reasoning_effort; choose a level the provider lists"
    elif "tool_choice" in low:
        rule = f"{name} rejected this tool_choice; use tool_choice='auto'"
    elif (m := _SAMPLING_RE.search(low)) is not None:
        rule = f"{name} fixes {m.group(1)}; drop {_flag(m.group(1))}"
    elif "thinking" in low and any(w in low for w in ("disabled", "disable", "cannot", "not support", "always")):
        rule = f"{name} always thinks (thinking cannot be switched off); drop --thinking off"
    elif any(w in low for w in ("image", "vision", "multimodal")):
        rule = f"{name} does not accept image inputs; drop --image"
    elif status == 404 and spec.profile.successor:
        rule = f"{name} may be retired on this endpoint; try {spec.profile.successor}"
    if rule is None:
        return None
    return f"{rule}{probe} (HTTP {status}: {provider_message})"
