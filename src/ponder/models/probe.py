"""`ponder probe`: what a live endpoint actually does, measured with small requests.

Provider docs and live APIs drift apart within months (a 400 on missing reasoning that
is no longer enforced, a preserve flag that appears). The probe asks the endpoint itself:
whether earlier reasoning must come back, is rendered, or is ignored (told apart by the
prompt-token count of the same history with and without it); whether a preserve flag
works; whether sampling overrides are rejected; which `tool_choice` values work; whether
thinking can be switched off; which `reasoning_effort` levels exist; whether streaming
reports usage (cached and reasoning tokens too); whether parallel tool calls come back
and survive ponder's streaming transport; whether images are accepted.

Acceptance checks post raw JSON (a probe must send what ponder would refuse); the
streaming tool-call checks go through ponder's own transport, which is what later runs
use. The result is a table of checks and an observed profile (only the fields a check
settled), which `save_profile` writes into the user's models.toml.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ..core.errors import ConfigError, MissingKeyError, redact
from ..core.events import ErrorEvent, ModelCallFinished
from ..core.messages import Message
from .base import ChatRequest
from .catalog import ModelSpec, _config_path, read_config
from .dialects import get_dialect, set_path
from .profiles import Profile

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PNG_1PX = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
           "ErkJggg==")
R_TOOL = "I should call get_weather for Paris, then read the result and answer the question about the weather briefly."
R_EARLIER = "The user wants a greeting, so I will answer with one short friendly word and nothing else at all."
# switches that keep earlier turns' reasoning, as seen across providers (providers-2026.md)
PRESERVE_FLAGS: list[tuple[str, Any]] = [
    ("thinking.keep", "all"), ("thinking.clear_thinking", False), ("chat_template_kwargs.preserve_thinking", True),
    ("chat_template_kwargs.clear_thinking", False), ("reasoning_history", "preserved"),
]
EFFORT_TRIES = ("low", "medium", "high", "max")


@dataclass
class Check:
    name: str
    result: str  # a short verdict: required, accepted, ignored, rejected, yes, no, unknown, ...
    detail: str = ""


@dataclass
class ProbeReport:
    model: str
    endpoint: str
    checks: list[Check] = field(default_factory=list)
    observed: dict[str, Any] = field(default_factory=dict)  # profile fields the checks settled
    saved_to: str | None = None

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "endpoint": self.endpoint, "checks": [asdict(c) for c in self.checks],
                "observed_profile": self.observed, "saved_to": self.saved_to}


@dataclass
class _Answer:
    status: int
    body: dict[str, Any] | None
    message: str  # the provider's error message, or ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def prompt_tokens(self) -> int | None:
        u = (self.body or {}).get("usage") or {}
        return u.get("prompt_tokens") if isinstance(u.get("prompt_tokens"), int) else None

    @property
    def message_obj(self) -> dict[str, Any]:
        return (((self.body or {}).get("choices") or [{}])[0] or {}).get("message") or {}

    def reasoning(self) -> str:
        m = self.message_obj
        return str(m.get("reasoning_content") or m.get("reasoning") or "")

    def why(self) -> str:
        return f"HTTP {self.status}: {self.message[:160]}" if not self.ok else "HTTP 200"


class Prober:
    """Runs the checks against `spec`'s endpoint. `max_tokens` caps every generation."""

    def __init__(self, spec: ModelSpec, *, api_key: str | None = None, timeout_s: float = 120.0, max_tokens: int = 256):
        if not spec.base_url:
            raise ConfigError(f"model {spec.name!r} has no base_url: pass --base-url to probe it")
        if spec.backend != "http":
            raise ConfigError(f"ponder probe checks HTTP chat endpoints; {spec.name!r} is {spec.backend}")
        key = api_key or (os.environ.get(spec.api_key_env) if spec.api_key_env else None)
        if spec.api_key_env and not key:
            raise MissingKeyError(spec.name, spec.api_key_env)
        self.spec = spec
        self.key = key or ""
        self.url = spec.base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {}),
                        **spec.request_headers()}
        self.secrets = [self.key, *spec.secret_header_values()]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_tokens = max_tokens
        d = get_dialect(spec.dialect).rules_default()
        p = spec.profile
        self.thinking_flag = p.thinking_flag or d.thinking_flag
        self.thinking_on = p.thinking_on if p.thinking_flag else d.thinking_on
        self.thinking_off = p.thinking_off if p.thinking_flag else d.thinking_off
        self._session: aiohttp.ClientSession | None = None

    # ---- plumbing ----------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def _payload(self, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        p: dict[str, Any] = {"model": self.spec.model_id, "messages": messages, "max_tokens": 16, "stream": False}
        p.update(extra)
        return p

    def _thinking(self, p: dict[str, Any], on: bool) -> dict[str, Any]:
        value = self.thinking_on if on else self.thinking_off
        for path in self.thinking_flag:
            if value is not None:
                set_path(p, path, value)
        return p

    async def _post(self, payload: dict[str, Any]) -> _Answer:
        assert self._session is not None
        try:
            async with self._session.post(self.url, data=json.dumps(payload), headers=self.headers) as r:
                text = await r.text(errors="replace")
                status = r.status
        except (TimeoutError, aiohttp.ClientError) as e:
            return _Answer(0, None, self._clean(f"{type(e).__name__}: {e}"))
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if 200 <= status < 300 and isinstance(body, dict):
            return _Answer(status, body, "")
        msg = text
        if isinstance(body, dict):
            err = body.get("error", body)
            msg = str(err.get("message") or err) if isinstance(err, dict) else str(err)
        return _Answer(status, None, self._clean(msg)[:500])

    async def _stream(self, payload: dict[str, Any]) -> tuple[_Answer, list[dict[str, Any]]]:
        """A raw streaming post: the answer's status and every JSON chunk, as sent."""
        assert self._session is not None
        chunks: list[dict[str, Any]] = []
        try:
            async with self._session.post(self.url, data=json.dumps(payload), headers=self.headers) as r:
                if r.status >= 400:
                    return _Answer(r.status, None, self._clean(await r.text(errors="replace"))[:500]), chunks
                async for line in r.content:
                    s = line.strip()
                    if s.startswith(b"data:") and s[5:].strip() != b"[DONE]":
                        try:
                            chunks.append(json.loads(s[5:]))
                        except ValueError:
                            pass
                return _Answer(r.status, {}, ""), chunks
        except (TimeoutError, aiohttp.ClientError) as e:
            return _Answer(0, None, self._clean(f"{type(e).__name__}: {e}")), chunks

    # ---- the checks --------------------------------------------------------------------------
    async def run(self) -> ProbeReport:
        report = ProbeReport(self.spec.name, self.spec.base_url or "")
        async with aiohttp.ClientSession(timeout=self.timeout) as self._session:
            first = await self._post(self._payload([{"role": "user", "content": "Reply with the word ok."}]))
            if not first.ok:
                raise ConfigError(f"probe of {self.spec.name} stopped: the endpoint answered {first.why()} to a plain "
                                  "request (check --base-url, the model id and the API key)")
            for step in (self._usage, self._thinking_check, self._sampling, self._tool_choice, self._replay,
                         self._effort, self._vision):
                await step(report)
        self._session = None
        await self._tool_calls(report)  # through ponder's transport
        report.observed["observed"] = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {self.spec.base_url}"
        return report

    async def _usage(self, report: ProbeReport) -> None:
        msgs = [{"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": "Reply with the word ok."}]
        payload = self._payload(msgs, stream=True, stream_options={"include_usage": True})
        usage: dict[str, Any] | None = None
        reasoning = False
        for _ in range(2):  # the second, identical request may hit the prompt cache
            ans, chunks = await self._stream(payload)
            if not ans.ok:
                report.checks.append(Check("stream_usage", "unknown", f"streaming failed: {ans.why()}"))
                return
            usage = next((c["usage"] for c in reversed(chunks) if c.get("usage")), None)
            reasoning = reasoning or any((ch.get("delta") or {}).get("reasoning_content") or (ch.get("delta") or {}).get("reasoning")
                                         for c in chunks for ch in c.get("choices") or ())
        if not usage:
            report.checks.append(Check("stream_usage", "no", "no usage chunk at the end of a stream (ponder counts deltas)"))
            report.observed["stream_usage"] = False
        else:
            ptd = usage.get("prompt_tokens_details") or {}
            ctd = usage.get("completion_tokens_details") or {}
            cached = ptd.get("cached_tokens", usage.get("cached_tokens", usage.get("prompt_cache_hit_tokens")))
            parts = [f"prompt {usage.get('prompt_tokens')}", f"completion {usage.get('completion_tokens')}",
                     "cached " + ("not reported" if cached is None else f"{cached} on the repeat"),
                     "reasoning " + ("not reported" if "reasoning_tokens" not in ctd else str(ctd["reasoning_tokens"]))]
            report.checks.append(Check("stream_usage", "yes", ", ".join(parts)))
            report.observed["stream_usage"] = True
        report.checks.append(Check("reasoning_stream", "yes" if reasoning else "no",
                                   "reasoning deltas streamed" if reasoning else "no reasoning deltas in a plain answer"))

    async def _thinking_check(self, report: ProbeReport) -> None:
        user = [{"role": "user", "content": "What is 2+2? Answer briefly."}]
        if not self.thinking_flag:
            plain = await self._post(self._payload(user))
            verdict = "unknown" if plain.reasoning() else "never"
            report.checks.append(Check("thinking", verdict, "no thinking switch in this dialect; reasoning "
                                       + ("seen" if plain.reasoning() else "not seen")))
            if verdict == "never":
                report.observed.update(thinking="never", native_thinking=False)
            else:
                report.observed["native_thinking"] = True
            return
        on = await self._post(self._thinking(self._payload(user), True))
        off = await self._post(self._thinking(self._payload(user), False))
        r_on, r_off = bool(on.ok and on.reasoning()), bool(off.ok and off.reasoning())
        if not off.ok and on.ok:
            verdict, detail = "always", f"switching it off is rejected ({off.why()})"
        elif r_on and r_off:
            verdict, detail = "always", "switching it off is accepted but reasoning still comes"
        elif r_on and off.ok:
            verdict, detail = "toggle", "reasoning with it on, none with it off"
        elif on.ok and off.ok and not r_on:
            verdict, detail = "never", "no reasoning either way"
        else:
            verdict, detail = "unknown", f"on: {on.why()}; off: {off.why()}"
        report.checks.append(Check("thinking", verdict, detail))
        if verdict != "unknown":
            report.observed["thinking"] = verdict
            report.observed["native_thinking"] = verdict != "never"

    async def _sampling(self, report: ProbeReport) -> None:
        user = [{"role": "user", "content": "Say ok."}]
        fixed, notes = [], []
        for param, value in (("temperature", 0.3), ("top_p", 0.5), ("presence_penalty", 0.5)):
            ans = await self._post(self._payload(user, **{param: value}))
            if ans.ok:
                notes.append(f"{param} accepted")
            elif 400 <= ans.status < 500:
                fixed.append(param)
                notes.append(f"{param} rejected ({ans.why()})")
            else:
                notes.append(f"{param}: {ans.why()}")
        report.checks.append(Check("sampling", "fixed: " + ", ".join(fixed) if fixed else "overridable", "; ".join(notes)))
        if len(notes) == 3 and all("accepted" in n or "rejected" in n for n in notes):
            # n and frequency_penalty go with presence_penalty on the providers that fix sampling
            if "presence_penalty" in fixed:
                fixed += ["n", "frequency_penalty"]
            report.observed["fixed_sampling"] = fixed

    async def _tool_choice(self, report: ProbeReport) -> None:
        user = [{"role": "user", "content": "What is the weather in Paris?"}]
        ok, notes = [], []
        choices: list[tuple[str, Any]] = [("auto", "auto"), ("none", "none"), ("required", "required"),
                                          ("function", {"type": "function", "function": {"name": "get_weather"}})]
        for kind, value in choices:
            ans = await self._post(self._payload(user, tools=[WEATHER], tool_choice=value))
            if ans.ok:
                ok.append(kind)
            notes.append(f"{kind}: {'accepted' if ans.ok else ans.why()}")
        report.checks.append(Check("tool_choice", ", ".join(ok) or "none accepted", "; ".join(notes)))
        report.observed["tool_choice"] = ok

    def _loop(self, reasoning: str | None) -> list[dict[str, Any]]:
        a: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
        if reasoning is not None:
            a["reasoning_content"] = reasoning
        return [{"role": "user", "content": "What is the weather in Paris? Use the tool."}, a,
                {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny, 21 C"}]

    def _turns(self, reasoning: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": "Say hi."},
                {"role": "assistant", "content": "hi", "reasoning_content": reasoning},
                {"role": "user", "content": "Now say bye."}]

    async def _replay(self, report: ProbeReport) -> None:
        tools = {"tools": [WEATHER]}
        with_r = await self._post(self._payload(self._loop(R_TOOL), **tools))
        empty = await self._post(self._payload(self._loop(""), **tools))
        absent = await self._post(self._payload(self._loop(None), **tools))
        if not with_r.ok:
            report.checks.append(Check("replay", "unknown", f"a tool loop with its reasoning was refused: {with_r.why()}"))
            return
        rendered = _more(with_r, empty)
        if not absent.ok and 400 <= absent.status < 500:
            verdict, detail = "required", f"a tool-call turn without reasoning_content is rejected ({absent.why()})"
            report.observed["strict"] = True
            if self.spec.profile.replay_required == "none":
                report.observed["replay_required"] = "tool-calls"
        else:
            verdict = "accepted" if rendered else "ignored" if rendered is False else "accepted?"
            detail = "missing reasoning_content accepted; sent reasoning " + (
                f"is rendered (+{_diff(with_r, empty)} prompt tokens)" if rendered else
                "is not rendered (same prompt tokens)" if rendered is False else "(no usage to compare)")
            if absent.ok:
                report.observed["strict"] = False
        report.checks.append(Check("replay", verdict, detail))
        # across a user turn: does earlier reasoning count by default, and does a preserve flag change it?
        base = await self._post(self._payload(self._turns("")))
        plain = await self._post(self._payload(self._turns(R_EARLIER)))
        if not (base.ok and plain.ok):
            report.checks.append(Check("preserve", "unknown", f"{base.why()} / {plain.why()}"))
            return
        by_default = _more(plain, base)
        flags = self._preserve_candidates()
        working: tuple[str, Any] | None = None
        tried = []
        if not by_default:
            for path, value in flags:
                p = self._payload(self._turns(R_EARLIER))
                set_path(p, path, value)
                ans = await self._post(p)
                tried.append(f"{path}={json.dumps(value)}: " + ("works" if ans.ok and _more(ans, plain) else
                                                                  "no effect" if ans.ok else ans.why()))
                if ans.ok and _more(ans, plain):
                    working = (path, value)
                    break
        if by_default:
            verdict, detail = "preserved", "earlier turns' reasoning is rendered by default"
            report.observed["replay"] = "preserved"
        elif working:
            verdict, detail = f"flag {working[0]}", "earlier turns' reasoning is rendered with " + \
                f"{working[0]}={json.dumps(working[1])}; dropped without it"
            report.observed.update(replay="interleaved" if rendered else "never", preserve=True,
                                   preserve_flag=working[0], preserve_on=working[1])
        elif by_default is None:
            verdict, detail = "unknown", "no usage to compare"
        else:
            verdict = "interleaved" if rendered else "never"
            detail = "earlier turns' reasoning is dropped" + (f" ({'; '.join(tried)})" if tried else "")
            report.observed.update(replay=verdict, preserve=False)
        report.checks.append(Check("preserve", verdict, detail))

    def _preserve_candidates(self) -> list[tuple[str, Any]]:
        p = self.spec.profile
        first = [(p.preserve_flag, p.preserve_on)] if p.preserve_flag else []
        return first + [f for f in PRESERVE_FLAGS if f[0] != p.preserve_flag]

    async def _effort(self, report: ProbeReport) -> None:
        user = [{"role": "user", "content": "Say ok."}]
        levels = list(dict.fromkeys([*(self.spec.profile.effort_levels or []), *EFFORT_TRIES]))
        ok, notes = [], []
        for level in levels:
            ans = await self._post(self._payload(user, reasoning_effort=level))
            if ans.ok:
                ok.append(level)
            notes.append(f"{level}: {'accepted' if ans.ok else ans.why()}")
        bogus = await self._post(self._payload(user, reasoning_effort="no-such-level"))
        if bogus.ok:
            report.checks.append(Check("effort", "unchecked", "any reasoning_effort value is accepted (or ignored)"))
            return
        report.checks.append(Check("effort", ", ".join(ok) or "none", "; ".join(notes)))
        report.observed["effort_levels"] = ok

    async def _vision(self, report: ProbeReport) -> None:
        msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_1PX}},
                                             {"type": "text", "text": "What colour is this pixel? One word."}]}]
        ans = await self._post(self._payload(msgs))
        report.checks.append(Check("vision", "yes" if ans.ok else "no", "a 1x1 PNG data URL: " + ans.why()))
        report.observed["vision"] = ans.ok

    async def _tool_calls(self, report: ProbeReport) -> None:
        """Parallel tool calls and streamed tool calls, through ponder's own transport, with the
        profile amended by what was just observed (so nothing the endpoint rejects is sent)."""
        from .openai_compat import OpenAICompatModel

        prof = self.spec.profile.model_copy(update={k: v for k, v in report.observed.items()
                                                     if k in ("fixed_sampling", "tool_choice")})
        spec = self.spec.model_copy(update={"profile": Profile.model_validate(prof.model_dump())})
        session = aiohttp.ClientSession(timeout=self.timeout)  # its own pool: nothing shared is closed after
        m = OpenAICompatModel(spec, api_key=self.key or None, max_retries=0, client=session)
        allowed = report.observed.get("tool_choice") or ["auto"]
        try:
            choice = "required" if "required" in allowed else "auto" if "auto" in allowed else None
            fin = await self._complete(m, "Get the weather in Paris and in Tokyo: call get_weather for both cities at "
                                          "once, in parallel, in this one reply.", choice)
            if isinstance(fin, str):
                report.checks.append(Check("parallel_tool_calls", "unknown", fin))
            else:
                n = len(fin.message.tool_calls)
                verdict = "yes" if n >= 2 else "no" if n == 1 else "unknown"
                report.checks.append(Check("parallel_tool_calls", verdict, f"{n} tool call(s) in one reply"
                                           + ("" if n else " (the model called no tool)")))
                if n:
                    report.observed["parallel_tool_calls"] = n >= 2
            # one call by name, streamed and not: the streamed one must come out the same
            named = {"type": "function", "function": {"name": "get_weather"}}
            choice2: Any = named if "function" in allowed else choice
            streamed = await self._complete(m, "What is the weather in Paris?", choice2)
            await self._check_stream_names(report, streamed, choice2)
        finally:
            await session.close()

    async def _complete(self, m: Any, prompt: str, choice: Any) -> ModelCallFinished | str:
        req = ChatRequest(messages=[Message.user(prompt)], tools=[WEATHER], tool_choice=choice, max_tokens=self.max_tokens)
        final: ModelCallFinished | str = "no answer"
        async for ev in m.stream(req):
            if isinstance(ev, ModelCallFinished):
                final = ev
            elif isinstance(ev, ErrorEvent):
                final = ev.message[:200]
        return final

    async def _check_stream_names(self, report: ProbeReport, streamed: ModelCallFinished | str, choice: Any) -> None:
        if isinstance(streamed, str):
            report.checks.append(Check("tool_call_stream", "unknown", streamed))
            return
        names = [tc.name for tc in streamed.message.tool_calls]
        if not names:
            report.checks.append(Check("tool_call_stream", "unknown", "the model called no tool"))
            return
        bad = [n for n in names if n != "get_weather"]
        if bad:
            report.checks.append(Check("tool_call_stream", "garbled",
                                       f"streamed tool name came out as {bad[0][:80]!r}, not 'get_weather': the server "
                                       "repeats the name in every delta and ponder's transport joined them"))
        else:
            args = streamed.message.tool_calls[0].arguments
            report.checks.append(Check("tool_call_stream", "ok", f"get_weather({json.dumps(args)[:60]}) intact"))


def _diff(a: _Answer, b: _Answer) -> int:
    return (a.prompt_tokens or 0) - (b.prompt_tokens or 0)


def _more(a: _Answer, b: _Answer) -> bool | None:
    """Whether `a` rendered more prompt tokens than `b`; None when usage is missing."""
    if a.prompt_tokens is None or b.prompt_tokens is None:
        return None
    return a.prompt_tokens > b.prompt_tokens


async def probe(spec: ModelSpec, **kw: Any) -> ProbeReport:
    return await Prober(spec, **kw).run()


# ---- saving ----------------------------------------------------------------------------------------


def save_name(spec: ModelSpec, catalog: dict[str, dict[str, Any]]) -> str:
    """The catalog name to save under: the model's own, or for an ad-hoc endpoint
    `MODELID-DIALECT`; never an existing entry that points elsewhere."""
    if spec.name in catalog:
        return spec.name
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{spec.model_id}-{spec.dialect}").strip("-") or "probed"
    if name in catalog and catalog[name].get("base_url") != spec.base_url:
        raise ConfigError(f"a model named {name!r} already exists in the catalog; pass --save-as NAME (or --no-save)")
    return name


def save_profile(report: ProbeReport, spec: ModelSpec, name: str, path: Path | None = None) -> Path:
    """Write the observed profile under [models."NAME".profile] in the user's models.toml (an
    entry for an ad-hoc endpoint gets its base_url, model_id and dialect too). The rest of the
    file, comments included, is kept; the write is atomic."""
    import tomlkit

    path = path or _config_path()
    if path.exists():
        read_config(path)  # a broken file is reported, not overwritten
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("ponder models (see `ponder models`); `ponder probe` writes observed profiles here"))
    models = doc.setdefault("models", tomlkit.table(is_super_table=True))
    entry = models.get(name)
    if entry is None:
        entry = tomlkit.table()
        models[name] = entry
    from .catalog import raw_catalog

    known = name in raw_catalog(path)
    if not known or spec.base_url != raw_catalog(path)[name].get("base_url"):
        entry["base_url"] = spec.base_url
        entry["model_id"] = spec.model_id
        entry["dialect"] = spec.dialect
    prof = entry.get("profile")
    if prof is None:
        prof = tomlkit.table()
        entry["profile"] = prof
    for k, v in report.observed.items():
        prof[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".models.", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(tomlkit.dumps(doc))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    report.saved_to = str(path)
    return path
