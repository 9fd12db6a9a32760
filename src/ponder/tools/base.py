"""The tool protocol: a typed tool, a toolbox, and the message a result becomes.

A tool never raises into an engine. Whatever goes wrong (the model wrote bad arguments,
the tool crashed, it ran too long) becomes a `ToolResult(ok=False)` whose text tells the
model what to change, because the model, not the engine, is the one who can fix it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..core.events import Event, ToolResult, ToolStarted
from ..core.messages import Message, ToolCall

DEFAULT_MAX_CHARS = 20_000

# The agent whose call is running: set around every tool call so that a tool keeping state
# per agent (a scratchpad, a running table) can tell a swarm's sub-agents apart without the
# engine passing anything new through `fn`'s signature.
_AGENT: contextvars.ContextVar[str] = contextvars.ContextVar("ponder_tool_agent", default="main")


def current_agent() -> str:
    """The id of the agent whose tool call is running ("main" outside any engine)."""
    return _AGENT.get()


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or limit <= 0 or len(text) <= limit:
        return text
    return text[:limit] + f"\n[truncated: showing the first {limit} of {len(text)} characters]"


def _to_text(value: Any) -> str:
    """str as is; anything else JSON (pydantic models and dataclasses included)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        return str(value)


def _json_default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def _short_validation_error(tool_name: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(arguments)"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    more = "" if err.error_count() <= 5 else f" (+{err.error_count() - 5} more)"
    return f"invalid arguments for tool {tool_name!r}: " + "; ".join(parts) + more


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _check_against_schema(tool_name: str, schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    """A shallow check for tools built from a bare JSON schema (MCP, hand-written): required
    keys present, unknown keys rejected when the schema forbids them, top-level types right.
    The server or function behind the tool still validates in depth."""
    props: dict[str, Any] = schema.get("properties") or {}
    problems = []
    for req in schema.get("required") or []:
        if req not in args:
            problems.append(f"{req}: Field required")
    if schema.get("additionalProperties") is False:
        for k in args:
            if k not in props:
                problems.append(f"{k}: unknown argument (expected one of {sorted(props)})")
    for k, v in args.items():
        t = (props.get(k) or {}).get("type")
        types = [t] if isinstance(t, str) else (t or [])
        if not types:
            continue
        ok = False
        for name in types:
            py = _JSON_TYPES.get(name)
            if py is None:
                ok = True
                break
            if isinstance(v, bool) and name in ("integer", "number"):
                continue
            if isinstance(v, py):
                ok = True
                break
        if not ok:
            problems.append(f"{k}: expected {'/'.join(types)}, got {type(v).__name__}")
    if problems:
        return f"invalid arguments for tool {tool_name!r}: " + "; ".join(problems[:5])
    return None


@dataclass
class Tool:
    """A function the model may call. `parameters` is the JSON schema (type "object") the
    model sees; `arg_model`, when present (the `@tool` decorator sets it), validates and
    coerces the arguments before `fn` runs.

    `idempotent` is the tool's declared resume policy: a call that was running when the
    process stopped is re-run on `resume` only when running it twice does no harm (a pure
    computation, a read); otherwise the model is told the outcome is unknown, and the
    engine makes the call durable in the journal before it starts."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout_s: float = 30.0
    max_output_chars: int = DEFAULT_MAX_CHARS
    idempotent: bool = False
    arg_model: type[BaseModel] | None = field(default=None, repr=False)
    _is_async: bool = field(init=False, repr=False, compare=False, default=False)
    _schema: tuple[tuple[Any, ...], dict[str, Any]] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self._is_async = inspect.iscoroutinefunction(self.fn)  # once, not per call

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool schema. The same dict on every call (rebuilt only if the
        name, description or parameters were replaced), so that backends encode it once
        however many agents share the tool. Treat it as read-only."""
        key = (self.name, self.description, id(self.parameters))
        cached = self._schema
        if cached is None or cached[0] != key:
            cached = self._schema = (key, {
                "type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
            })
        return cached[1]

    def _validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self.arg_model is not None:
            return dict(self.arg_model.model_validate(arguments).__dict__)  # the fields, validated
        problem = _check_against_schema(self.name, self.parameters, arguments)
        if problem:
            raise _ArgumentProblem(problem)
        return dict(arguments)

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if self._is_async:
            return await self.fn(**kwargs)
        out = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(out):
            out = await out
        return out

    async def run(self, arguments: dict[str, Any]) -> tuple[bool, str, str | None]:
        """(ok, content, error): the result without the events around it."""
        if not isinstance(arguments, dict):
            msg = f"invalid arguments for tool {self.name!r}: expected a JSON object, got {type(arguments).__name__}"
            return False, msg, msg
        try:
            kwargs = self._validate(arguments)
        except ValidationError as e:
            msg = _short_validation_error(self.name, e)
            return False, msg, msg
        except _ArgumentProblem as e:
            return False, str(e), str(e)
        try:
            async with asyncio.timeout(self.timeout_s):  # no extra task, unlike wait_for in 3.11
                value = await self._call(kwargs)
        except TimeoutError:
            msg = f"tool {self.name!r} timed out after {self.timeout_s:g}s; try a smaller input or a simpler request"
            return False, msg, msg
        except asyncio.CancelledError:
            raise
        except ToolFailure as e:
            reason = str(e)
            return False, _truncate(e.content if e.content is not None else reason, self.max_output_chars), reason
        except Exception as e:  # noqa: BLE001 - the model must see the failure, not the engine
            msg = _truncate(f"tool {self.name!r} failed: {type(e).__name__}: {e}", self.max_output_chars)
            return False, msg, msg
        return True, _truncate(_to_text(value), self.max_output_chars), None

    async def result(self, call: ToolCall, agent: str = "main") -> ToolResult:
        """Run the call and return its ToolResult. Never raises (except on cancel)."""
        t0 = time.perf_counter()
        if call.parse_error:
            # The model's arguments were not JSON: say so (and echo them) instead of running on {}.
            raw = (call.raw_arguments or "")[:300]
            error = f"invalid arguments for {self.name}: {call.parse_error}. You sent: {raw}"
            ok, content = False, error
        else:
            token = _AGENT.set(agent)
            try:
                ok, content, error = await self.run(call.arguments)
            finally:
                _AGENT.reset(token)
        return ToolResult(agent=agent, call_id=call.id, name=self.name, ok=ok, content=content, error=error,
                          duration_s=time.perf_counter() - t0)

    async def execute(self, call: ToolCall, *, agent: str = "main") -> AsyncIterator[Event]:
        """Yields ToolStarted, then ToolResult (always last). Never raises (except on cancel)."""
        yield ToolStarted(agent=agent, call_id=call.id, name=self.name, arguments=call.arguments)
        yield await self.result(call, agent)


class ToolFailure(Exception):
    """Raise inside a tool to report a failure whose message is shown to the model verbatim
    (no "tool X failed: ExceptionType" prefix): for reasons written for the model.
    `content`, when given, is the fuller text the model sees (e.g. the reason plus the
    program's output); the short reason stays in `ToolResult.error`."""

    def __init__(self, reason: str, content: str | None = None):
        super().__init__(reason)
        self.content = content


class _ArgumentProblem(Exception):
    pass


# ---- the @tool decorator ------------------------------------------------------------------
_SECTION_RE = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns|Return|Raises|Yields|Examples?|Notes?)\s*:?\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^\s*(\w+)\s*(:.*)?$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google- or numpy-style docstring into (summary, {arg: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    i = 0
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    numpy_style = False
    while i < len(lines):
        line = lines[i]
        m = _SECTION_RE.match(line)
        numpy_header = m is not None and i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1])
        if m and (line.rstrip().endswith(":") or numpy_header):
            section = m.group(1).lower()
            numpy_style = bool(numpy_header)
            current, base_indent = None, None
            i += 2 if numpy_header else 1
            continue
        if section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters", "params"):
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if base_indent is None:
                base_indent = indent
            if indent <= base_indent:
                gm = None if numpy_style else _ARG_LINE.match(line)
                nm = _NUMPY_ARG.match(line)
                if gm:
                    current = gm.group(1).lstrip("*")
                    args[current] = gm.group(3).strip()
                elif nm:
                    current = nm.group(1)
                    args[current] = ""
                else:
                    current = None
            elif current is not None:
                args[current] = (args[current] + " " + line.strip()).strip()
        i += 1
    text = "\n".join(summary).strip()
    return text, args


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's auto-titles: noise in every prompt, and some providers reject them."""
    schema = dict(schema)
    schema.pop("title", None)
    props = {}
    for k, v in (schema.get("properties") or {}).items():
        v = dict(v)
        v.pop("title", None)
        props[k] = v
    schema["properties"] = props
    schema.setdefault("required", [])
    schema["type"] = "object"
    return schema


def _build_arg_model(fn: Callable[..., Any], name: str, arg_docs: dict[str, str]) -> type[BaseModel]:
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)  # keep Annotated[..., Field(...)] constraints
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to Any
        hints = {}
    fields: dict[str, Any] = {}

    for pname, p in sig.parameters.items():
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        ann = hints.get(pname, Any)
        desc = arg_docs.get(pname) or None
        if p.default is inspect.Parameter.empty:
            fields[pname] = (ann, Field(..., description=desc))
        else:
            fields[pname] = (ann, Field(p.default, description=desc))
    model_name = "".join(part.capitalize() for part in re.split(r"\W+", name) if part) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)  # type: ignore[call-overload]


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 30.0,
    max_output_chars: int = DEFAULT_MAX_CHARS,
    idempotent: bool = False,
) -> Any:
    """Turn a typed function into a Tool; usable as `@tool` or `@tool(name=..., timeout_s=...)`.
    Say `idempotent=True` when running a call twice does no harm (see `Tool`).
    The argument schema comes from the type hints, per-argument descriptions from the
    docstring's "Args:" section, the tool description from the docstring's summary."""

    def wrap(f: Callable[..., Any]) -> Tool:
        summary, arg_docs = parse_docstring(f.__doc__)
        tname = name or f.__name__
        model = _build_arg_model(f, tname, arg_docs)
        params = _clean_schema(model.model_json_schema())
        return Tool(
            name=tname,
            description=description or summary or tname,
            parameters=params,
            fn=f,
            timeout_s=timeout_s,
            max_output_chars=max_output_chars,
            arg_model=model,
            idempotent=idempotent,
        )

    if fn is not None:
        return wrap(fn)
    return wrap


# ---- toolbox ------------------------------------------------------------------------------
class Toolbox:
    """The tools one agent may call, by name. Order is kept (it is the order in the prompt)."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()):
        self._tools: dict[str, Tool] = {}
        self._schemas: list[dict[str, Any]] | None = None
        for t in tools:
            self.add(t)

    def add(self, tool_: Tool | Callable[..., Any]) -> None:
        if not isinstance(tool_, Tool):
            if callable(tool_):
                tool_ = tool(tool_)
            else:
                raise TypeError(f"expected a Tool or a function, got {type(tool_).__name__}")
        assert isinstance(tool_, Tool)
        if tool_.name in self._tools:
            raise ValueError(f"duplicate tool name {tool_.name!r}: give one of them another name= ")
        self._tools[tool_.name] = tool_
        self._schemas = None

    def schemas(self) -> list[dict[str, Any]]:
        """The tools' schemas: one list object until a tool is added, so model backends can
        cache its JSON across an agent's steps. Treat it as read-only."""
        if self._schemas is None:
            self._schemas = [t.schema() for t in self._tools.values()]
        return self._schemas

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    async def execute(self, call: ToolCall, *, agent: str = "main") -> AsyncIterator[Event]:
        """Yields ToolStarted, then ToolResult (always last). Never raises (except on cancel)."""
        yield self._started(call, agent)
        yield await self.run(call, agent=agent)

    async def call_into(self, call: ToolCall, emit: Callable[[Event], Any], *, agent: str = "main") -> ToolResult:
        """`execute` for engines: hands ToolStarted and ToolResult to `emit` as they happen and
        returns the result (a function call per event instead of an async generator's hops)."""
        emit(self._started(call, agent))
        result = await self.run(call, agent=agent)
        emit(result)
        return result

    async def run(self, call: ToolCall, *, agent: str = "main") -> ToolResult:
        """Run the call and return only its ToolResult (for callers that need no ToolStarted);
        an unknown tool is an error result naming the available ones."""
        t = self._tools.get(call.name)
        if t is not None:
            return await t.result(call, agent)
        avail = ", ".join(self._tools) or "(none)"
        msg = f"unknown tool {call.name!r}. Available tools: {avail}"
        return ToolResult(agent=agent, call_id=call.id, name=call.name, ok=False, content=msg, error=msg)

    @staticmethod
    def _started(call: ToolCall, agent: str) -> ToolStarted:
        return ToolStarted(agent=agent, call_id=call.id, name=call.name, arguments=call.arguments)


def result_message(result: ToolResult) -> Message:
    """The `tool` message the model sees next. Errors start with "ERROR: " so that small
    models, which do not see `ok`, can still tell a failure from an answer."""
    if result.ok:
        content = result.content
    else:
        text = result.content or result.error or "tool failed"
        content = text if text.startswith("ERROR: ") else "ERROR: " + text
    return Message.tool(result.call_id, content, result.name)
