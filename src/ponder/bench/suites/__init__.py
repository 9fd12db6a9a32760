"""Offline benchmark suites: deep (multi-hop search), wide (table filling), reason
(reasoning-gym), lookup-wide / lookup-chain (structured lookups, fanned out or chained),
and user JSONL files."""

from __future__ import annotations

from collections.abc import Callable

from .base import BenchTask, Suite, corpus_tools
from .jsonl import SuiteFileError, jsonl_suite

SuiteFactory = Callable[[int, int, bool], Suite]  # (n, seed, demo) -> Suite
SUITES: dict[str, SuiteFactory] = {}


def register_suite(name: str, factory: SuiteFactory) -> None:
    """Make a suite available by name (`ponder compare --suite NAME`). Its tasks declare
    their grader by name (`BenchTask.grader`, a name in `graders.GRADERS`)."""
    SUITES[name] = factory


def _deep(n: int, seed: int, demo: bool) -> Suite:
    from .deep import deep_suite

    return deep_suite(n, seed)


def _wide(n: int, seed: int, demo: bool) -> Suite:
    from .wide import wide_suite

    return wide_suite(n, seed, width=(3, 4) if demo else (20, 50))


def _reason(n: int, seed: int, demo: bool) -> Suite:
    from .reason import reason_suite

    return reason_suite(n, seed)


def _lookup_wide(n: int, seed: int, demo: bool) -> Suite:
    from .lookup import lookup_wide_suite

    return lookup_wide_suite(n, seed, width=(8, 10) if demo else (8, 50))


def _lookup_chain(n: int, seed: int, demo: bool) -> Suite:
    from .lookup import lookup_chain_suite

    return lookup_chain_suite(n, seed)


for _name, _factory in (("deep", _deep), ("wide", _wide), ("reason", _reason), ("lookup-wide", _lookup_wide),
                        ("lookup-chain", _lookup_chain)):
    register_suite(_name, _factory)
BUILTIN_SUITES = tuple(SUITES)


def load_suite(name: str, *, n: int, seed: int, demo: bool = False) -> Suite:
    """A registered suite by name. `demo` shrinks wide tasks to a few entities."""
    factory = SUITES.get(name)
    if factory is None:
        raise ValueError(f"unknown suite {name!r}; use one of {', '.join(SUITES)} or --jsonl FILE")
    return factory(n, seed, demo)


__all__ = ["BUILTIN_SUITES", "SUITES", "register_suite", "BenchTask", "Suite", "SuiteFileError", "corpus_tools", "jsonl_suite", "load_suite"]
