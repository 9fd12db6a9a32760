"""Offline benchmark suites: deep (multi-hop search), wide (table filling), reason
(reasoning-gym), lookup-wide / lookup-chain (structured lookups, fanned out or chained),
and user JSONL files."""

from __future__ import annotations

from .base import BenchTask, Suite, corpus_tools
from .jsonl import SuiteFileError, jsonl_suite

BUILTIN_SUITES = ("deep", "wide", "reason", "lookup-wide", "lookup-chain")


def load_suite(name: str, *, n: int, seed: int, demo: bool = False) -> Suite:
    """A built-in suite by name. `demo` shrinks wide tasks to 3-4 entities."""
    if name == "deep":
        from .deep import deep_suite

        return deep_suite(n, seed)
    if name == "wide":
        from .wide import wide_suite

        return wide_suite(n, seed, width=(3, 4) if demo else (20, 50))
    if name == "lookup-wide":
        from .lookup import lookup_wide_suite

        return lookup_wide_suite(n, seed, width=(8, 10) if demo else (8, 50))
    if name == "lookup-chain":
        from .lookup import lookup_chain_suite

        return lookup_chain_suite(n, seed)
    if name == "reason":
        from .reason import reason_suite

        return reason_suite(n, seed)
    raise ValueError(f"unknown suite {name!r}; use one of {', '.join(BUILTIN_SUITES)} or --jsonl FILE")


__all__ = ["BUILTIN_SUITES", "BenchTask", "Suite", "SuiteFileError", "corpus_tools", "jsonl_suite", "load_suite"]
