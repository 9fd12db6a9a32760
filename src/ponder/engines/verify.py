"""Verify before execute: check model-written code before the python tool runs it.

Two stages, cheapest first:

1. **Policy** (always, no model call): the code must parse (`ast`; a syntax error is
   returned with its line and column so the model can fix it) and must not import a
   forbidden module, call a forbidden builtin, or touch the dunder attributes used to
   escape a restricted namespace. This is a first line, not the security boundary:
   the sandbox tool (separate process, limits) is. Its purpose is to catch mistakes and
   obvious escapes early and to tell the model *why*, so it rewrites rather than retries.
2. **Self-check** (opt-in, one model call): the model is shown the task and the code
   and answers a constrained `{"ok": bool, "reason": str}`. It fails *open*: an
   unparseable answer or a model error lets the code run (the policy already passed,
   and a weak model that cannot produce the JSON must not stall the run); the reason
   says so and the VerificationEvent records it.

Defaults (documented in docs/engines.md):
* forbidden modules: process/OS/network/filesystem/introspection escapes (`os`, `sys`,
  `subprocess`, `socket`, `shutil`, `ctypes`, `multiprocessing`, `signal`, `pathlib`,
  `importlib`, `urllib`, `http`, `requests`, `httpx`, `ftplib`, `smtplib`, `pty`,
  `pickle`, `marshal`, `builtins`, `tempfile`, `glob`, `threading`, `asyncio`);
  submodules are covered (`os.path` is `os`).
* forbidden calls: `eval`, `exec`, `compile`, `__import__`, `open`, `input`,
  `breakpoint`, `globals`, `locals`, `vars`, `exit`, `quit`, `help`.
* forbidden attributes: `__subclasses__`, `__globals__`, `__builtins__`, `__code__`,
  `__closure__`, `__getattribute__`, `__dict__`, `__bases__`, `__mro__`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.events import ErrorEvent, Event, ModelCallFinished
from ..core.messages import Message
from ..models.base import ChatModel, ChatRequest
from . import prompts

DEFAULT_FORBIDDEN_MODULES = frozenset(
    {
        "os", "sys", "subprocess", "socket", "shutil", "ctypes", "multiprocessing", "signal", "pathlib",
        "importlib", "urllib", "http", "requests", "httpx", "ftplib", "smtplib", "pty", "pickle", "marshal",
        "builtins", "tempfile", "glob", "threading", "asyncio",
    }
)
DEFAULT_FORBIDDEN_CALLS = frozenset(
    {"eval", "exec", "compile", "__import__", "open", "input", "breakpoint", "globals", "locals", "vars",
     "exit", "quit", "help"}
)
DEFAULT_FORBIDDEN_ATTRIBUTES = frozenset(
    {"__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__getattribute__", "__dict__",
     "__bases__", "__mro__"}
)


@dataclass(frozen=True)
class CodePolicy:
    """What model-written code may not do. Pass your own sets to loosen or tighten it."""

    forbidden_modules: frozenset[str] = DEFAULT_FORBIDDEN_MODULES
    forbidden_calls: frozenset[str] = DEFAULT_FORBIDDEN_CALLS
    forbidden_attributes: frozenset[str] = DEFAULT_FORBIDDEN_ATTRIBUTES
    max_chars: int = 20_000

    def __init__(
        self,
        forbidden_modules: Iterable[str] = DEFAULT_FORBIDDEN_MODULES,
        forbidden_calls: Iterable[str] = DEFAULT_FORBIDDEN_CALLS,
        forbidden_attributes: Iterable[str] = DEFAULT_FORBIDDEN_ATTRIBUTES,
        max_chars: int = 20_000,
    ):
        object.__setattr__(self, "forbidden_modules", frozenset(forbidden_modules))
        object.__setattr__(self, "forbidden_calls", frozenset(forbidden_calls))
        object.__setattr__(self, "forbidden_attributes", frozenset(forbidden_attributes))
        object.__setattr__(self, "max_chars", max_chars)

    @classmethod
    def permissive(cls) -> CodePolicy:
        """Syntax check only."""
        return cls(forbidden_modules=(), forbidden_calls=(), forbidden_attributes=())


@dataclass
class CodeCheck:
    ok: bool
    reason: str | None = None
    stage: str = "policy"
    problems: list[str] = field(default_factory=list)
    fix: str | None = None  # runnable code the message proposes (`suggest_fix`), when one fits


def _module_root(name: str | None) -> str:
    return (name or "").split(".")[0]


def check_code(code: object, policy: CodePolicy | None = None) -> CodeCheck:
    """Policy stage: parse, then walk the tree for forbidden imports, calls and attributes."""
    policy = policy or CodePolicy()
    if not isinstance(code, str) or not code.strip():
        return CodeCheck(False, "the 'code' argument must be a non-empty string of Python source")
    if len(code) > policy.max_chars:
        return CodeCheck(False, f"code is {len(code)} characters, over the limit of {policy.max_chars}; shorten it")
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as e:
        where = f"line {e.lineno}, column {e.offset}" if e.lineno else "unknown position"
        line = (e.text or "").rstrip("\n")
        return CodeCheck(False, f"SyntaxError at {where}: {e.msg}" + (f" in `{line.strip()}`" if line.strip() else ""),
                         fix=suggest_fix(code))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _module_root(alias.name) in policy.forbidden_modules:
                    problems.append(f"line {node.lineno}: import of forbidden module {alias.name!r}")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _module_root(node.module) in policy.forbidden_modules:
                problems.append(f"line {node.lineno}: import from forbidden module {node.module!r}")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else None
            if name in policy.forbidden_calls:
                problems.append(f"line {node.lineno}: call of forbidden builtin {name!r}")
        elif isinstance(node, ast.Attribute):
            if node.attr in policy.forbidden_attributes:
                problems.append(f"line {node.lineno}: access to forbidden attribute {node.attr!r}")
        elif isinstance(node, ast.Name) and node.id in policy.forbidden_attributes:
            problems.append(f"line {node.lineno}: use of forbidden name {node.id!r}")
    if problems:
        allowed_hint = "use only the standard library's computational modules (math, statistics, itertools, json, re, ...)"
        return CodeCheck(False, "; ".join(problems[:5]) + f" — {allowed_hint}", problems=problems)
    return CodeCheck(True)


_CLAIM = re.compile(r"^\s*(?P<expr>[^=\n]+?)\s*=\s*(?P<claim>[^=\n]*)$")


def suggest_fix(code: str) -> str | None:
    """For code that states a result instead of computing it (`17*23 = 312`: an expression
    "assigned" a value), the program that computes it: `print(17*23)`. Small models write
    the claim they are unsure of as if it were code; the verifier's message then shows the
    runnable form, and the model decides whether to send it. None when no such form fits."""
    lines = [ln for ln in code.strip().splitlines() if ln.strip()]
    if len(lines) != 1 or (m := _CLAIM.match(lines[0])) is None:
        return None
    expr = m.group("expr").strip()
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Starred)):
        return None  # a valid assignment target: not this mistake
    return f"print({expr})"


_JSON_OBJ = re.compile(r"\{.*\}", re.S)


def parse_self_check(text: str | None) -> CodeCheck:
    """Read the model's {"ok", "reason"}; anything else fails open (see the module docstring)."""
    raw = (text or "").strip()
    m = _JSON_OBJ.search(raw)
    if m:
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("ok"), bool):
            reason = str(obj.get("reason") or ("looks right" if obj["ok"] else "the reviewer rejected the code"))
            return CodeCheck(obj["ok"], reason, stage="self_check")
    return CodeCheck(True, "self-check answer was not valid JSON; allowed (fail-open)", stage="self_check")


async def self_check(model: ChatModel, task: str, code: str, *, agent: str = "main") -> tuple[CodeCheck, list[Event]]:
    """One constrained model call reviewing `code` against `task`. Returns the verdict and the
    call's usage/timing/finish events (so the engine can count its tokens and cost)."""
    req = ChatRequest(
        messages=[Message.system(prompts.SELF_CHECK_SYSTEM),
                  Message.user(prompts.SELF_CHECK_USER.format(task=task, code=code))],
        response_schema=prompts.SELF_CHECK_SCHEMA,
        thinking="off",
        max_tokens=200,
        temperature=0.0,
    )
    kept: list[Event] = []
    verdict = CodeCheck(True, "self-check produced no answer; allowed (fail-open)", stage="self_check")
    try:
        async for ev in model.stream(req, agent=agent):
            if isinstance(ev, ModelCallFinished):
                kept.append(ev)
                verdict = parse_self_check(ev.message.content)
            elif isinstance(ev, ErrorEvent):  # not forwarded: the run itself did not fail
                verdict = CodeCheck(True, f"self-check call failed ({ev.message}); allowed (fail-open)", stage="self_check")
    except Exception as e:  # noqa: BLE001 - a reviewer failure must not end the run
        verdict = CodeCheck(True, f"self-check call failed ({type(e).__name__}); allowed (fail-open)", stage="self_check")
    return verdict, kept
