"""Saved KV states: an agent's conversation resumes where it stopped although other agents used
the context in between (the real model), and the cache's own bookkeeping (a named test double
standing in for a llama context)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ponder.core.messages import Message
from ponder.models import kv_states
from ponder.models.base import ChatRequest
from ponder.models.embedded import EmbeddedModel, schema_gbnf
from ponder.models.kv_states import StateCache, common_prefix
from ponder.models.registry import model

pytestmark = pytest.mark.timeout(300)

SYSTEM = ("You are a careful assistant for a travel company. Answer in one short sentence, "
          "name the place you mean, and never invent prices or dates. ") * 3


def _req(user: str, *, history: tuple[Message, ...] = ()) -> ChatRequest:
    return ChatRequest(messages=[Message.system(SYSTEM), *history, Message.user(user)], max_tokens=8,
                       temperature=0.0, seed=0)


async def test_an_agent_resumes_its_own_state_after_another_agent_used_the_context() -> None:
    cached = model("smollm2", pool_size=1)
    plain = model("smollm2", pool_size=1, kv_cache_mb=0)  # another pool: no saved states
    assert isinstance(cached, EmbeddedModel) and isinstance(plain, EmbeddedModel)
    states = cached._pool.states
    assert states is not None and plain._pool.states is None
    first = await cached.complete(_req("Where is the Eiffel Tower?"))
    await cached.complete(ChatRequest(messages=[Message.user("Count from one to five.")], max_tokens=8,
                                      temperature=0.0, seed=0))  # another agent takes the context
    history = (Message.user("Where is the Eiffel Tower?"), Message.assistant(first.message.content or ""))
    before = states.restores
    again = await cached.complete(_req("And the Colosseum?", history=history))
    assert states.restores == before + 1
    # the whole first exchange came back from the saved state, not only the shared system prompt
    assert again.usage.cached_prompt_tokens > first.usage.prompt_tokens
    fresh = await plain.complete(_req("And the Colosseum?", history=history))
    assert fresh.usage.cached_prompt_tokens < first.usage.prompt_tokens
    assert again.message.content == fresh.message.content  # greedy: the restored state is the same state


async def test_enum_values_with_quotes_and_backslashes_make_a_valid_grammar() -> None:
    """llama-cpp-python's converter escaped quotes but not backslashes: such an enum failed."""
    choices = ['lookup(entity="Vrizael")', "a \\ b", "plain"]
    schema = {"type": "object", "properties": {"pick": {"type": "string", "enum": choices}}, "required": ["pick"]}
    assert '\\"lookup(entity=\\\\\\"Vrizael\\\\\\")\\"' in schema_gbnf(json.dumps(schema))
    smol = model("smollm2")
    fin = await smol.complete(ChatRequest(messages=[Message.user("Pick one.")], response_schema=schema,
                                          max_tokens=40, temperature=0.0))
    assert json.loads(fin.message.content or "")["pick"] in choices


# ---- the cache's bookkeeping, with a test double for the llama context -------------------------
class FakeLlama:
    """Test double: the attributes StateCache reads, and a 'state' that is just the token ids."""

    def __init__(self, ids: list[int]):
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.input_ids[: len(ids)] = ids
        self.n_tokens = len(ids)

    @property
    def _input_ids(self) -> Any:
        return self.input_ids[: self.n_tokens]


@pytest.fixture
def fake_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kv_states, "_dump", lambda llm: bytes(4 * llm.n_tokens))

    def load(llm: Any, entry: Any) -> bool:
        llm.input_ids[: len(entry.ids)] = entry.ids
        llm.n_tokens = len(entry.ids)
        return True

    monkeypatch.setattr(kv_states, "_load", load)


def test_a_longer_state_of_the_same_conversation_replaces_the_shorter(fake_state: None) -> None:
    cache = StateCache(10_000)
    a1 = list(range(100))
    cache.save_from(FakeLlama(a1))
    cache.save_from(FakeLlama(a1 + [7] * 50))  # the same agent, one call later
    assert len(cache) == 1 and cache.nbytes == 4 * 150
    cache.save_from(FakeLlama([5] * 80))  # another agent
    assert len(cache) == 2


def test_the_best_prefix_is_restored_only_when_it_beats_the_context(fake_state: None) -> None:
    cache = StateCache(10_000)
    a = list(range(200))
    cache.save_from(FakeLlama(a))
    llm = FakeLlama([9] * 30)  # another agent's tokens in the context
    assert cache.restore_into(llm, a + [1, 2, 3]) == 200 and llm.n_tokens == 200
    same = FakeLlama(a[:195])  # the context already holds almost all of it: nothing to gain
    assert cache.restore_into(same, a + [1]) == 0 and same.n_tokens == 195


def test_least_recently_used_states_go_first_past_the_capacity(fake_state: None) -> None:
    cache = StateCache(4 * 250)
    cache.save_from(FakeLlama([1] * 100))
    cache.save_from(FakeLlama([2] * 100))
    cache.restore_into(FakeLlama([0]), [1] * 120)  # touch the first
    cache.save_from(FakeLlama([3] * 100))  # over capacity: the second goes
    assert cache.nbytes <= 4 * 250
    assert cache.restore_into(FakeLlama([0]), [2] * 120) == 0
    assert cache.restore_into(FakeLlama([0]), [1] * 120) == 100


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([1, 2], [1, 2, 3]) == 2
