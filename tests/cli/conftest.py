"""Fixtures for the CLI tests: a scripted model behind the real catalog, and the mock
OpenAI-compatible server (a test double on loopback) in a thread of its own, because
`CliRunner` runs each command's `asyncio.run` in the test's thread."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ponder.testing import Reply, ScriptedModel
from ponder.testing_http import MockOpenAIServer, MockReply


@dataclass
class Built:
    """What the fake `registry.model` was asked for."""

    name: str
    kwargs: dict[str, Any]
    model: ScriptedModel


def default_reply(req: Any, n: int) -> Reply:
    return Reply(reasoning="think", content="42")


@dataclass
class Scripted:
    built: list[Built] = field(default_factory=list)
    reply: Callable[[Any, int], Reply] = default_reply  # what every model built from now on says

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.built]


@pytest.fixture
def scripted(monkeypatch) -> Scripted:
    """`ponder.models.registry.model` replaced by a factory of scripted test doubles. The
    name and options still go through the real catalog (`resolve`), so a bad URL, dialect
    or TOML fails as it would for a real model; what was built is recorded."""
    from ponder.models.catalog import resolve

    rec = Scripted()

    def fake_model(name: str, *, base_url: str | None = None, dialect: str | None = None,
                   headers: dict[str, str] | None = None, **opts: Any) -> ScriptedModel:
        resolve(name, base_url=base_url, dialect=dialect, headers=headers)
        m = ScriptedModel(rec.reply, name_=name)
        rec.built.append(Built(name, {"base_url": base_url, "dialect": dialect, "headers": headers, **opts}, m))
        return m

    monkeypatch.setattr("ponder.models.registry.model", fake_model)
    monkeypatch.setattr("ponder.cli.chat.get_model", fake_model)
    return rec


@pytest.fixture
def mock_server() -> Iterator[Callable[[Callable[[dict[str, Any], int], MockReply]], MockOpenAIServer]]:
    """`start(handler)` -> a running MockOpenAIServer in its own thread and event loop."""
    with contextlib.ExitStack() as stack:
        yield lambda handler: stack.enter_context(MockOpenAIServer(handler).in_thread())
