"""Scripted test-double models for the compare harness (never product backends)."""

from __future__ import annotations

import re
from typing import Any

from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.testing import Reply, ScriptedModel

ENTITY_LIST = re.compile(r"companies, [^:]*: (.+?)\.\n", re.S)


def entities_in(question: str) -> list[str]:
    m = ENTITY_LIST.search(question)
    assert m, "not a wide question"
    return [s.strip() for s in m.group(1).split(";")]


def _tool_names(req: ChatRequest) -> set[str]:
    return {t["function"]["name"] for t in req.tools}


def _text(msgs: list[Message]) -> str:
    return "\n".join(m.content or "" for m in msgs if m.role in ("system", "user"))


def fanout_double(facts: dict[str, dict[str, str]], delay_s: float = 0.02) -> ScriptedModel:
    """A scripted test double that solves wide tasks by fanning out when it orchestrates a
    swarm (one sub-agent per entity, each runs one search) and by looking entities up one
    per step when it drives an Interleaved loop. Answers come from `facts` (the test's
    ground truth): the point is the shape of the work, not the model's wits."""

    def row(name: str) -> str:
        f = facts[name]
        return f"| {name} | {f['founded']} | {f['headquarters']} | {f['ceo']} |"

    def table(names: list[str]) -> str:
        return "| company | founded | headquarters | ceo |\n|---|---|---|---|\n" + "\n".join(row(n) for n in names)

    def script(req: ChatRequest, n: int) -> Reply:
        names = _tool_names(req)
        tool_msgs = [m for m in req.messages if m.role == "tool"]
        if "plan" in names or ("finish" in names and "search" not in names):  # the swarm orchestrator
            question = next(m.content for m in req.messages if m.role == "user")
            ents = entities_in(question or "")
            if not tool_msgs and "plan" in names:
                subtasks = [{"name": f"agent-{i}", "task": f"Look up the company {e}", "tools": ["search"]}
                            for i, e in enumerate(ents)]
                return Reply(reasoning="one sub-agent per company", tool_calls=[("plan", {"subtasks": subtasks})],
                             delay_s=delay_s)
            if tool_msgs and tool_msgs[-1].name == "plan" and "wait" in names:
                return Reply(reasoning="collect", tool_calls=[("wait", {})], delay_s=delay_s)
            return Reply(reasoning="assemble", tool_calls=[("finish", {"answer": table(ents)})], delay_s=delay_s)
        text = _text(req.messages)
        if "For each of the following" in text:  # an Interleaved run over the whole table
            ents = entities_in(text)
            if len(tool_msgs) < len(ents):
                return Reply(reasoning=f"look up {ents[len(tool_msgs)]}",
                             tool_calls=[("search", {"query": ents[len(tool_msgs)]})], delay_s=delay_s)
            return Reply(reasoning="done", content=table(ents), delay_s=delay_s)
        # a sub-agent: one search, then its row
        ent = next((e for e in facts if f"company {e}" in text), None)
        assert ent is not None, f"sub-agent task names no known company: {text[-300:]}"
        if not tool_msgs:
            return Reply(reasoning=f"search {ent}", tool_calls=[("search", {"query": ent})], delay_s=delay_s)
        return Reply(reasoning="found", content=row(ent), delay_s=delay_s)

    return ScriptedModel(script, name_="fanout-double")


def counting_double(answer: str = "Answer: 4", delay_s: float = 0.01, fail_on: str | None = None) -> ScriptedModel:
    """Answers every call the same way; `len(model.requests)` counts the calls. Calls whose
    prompt contains `fail_on` end in an error event."""

    def script(req: ChatRequest, n: int) -> Reply:
        if fail_on and fail_on in _text(req.messages):
            return Reply(error="scripted failure", delay_s=delay_s)
        return Reply(content=answer, delay_s=delay_s)

    return ScriptedModel(script, name_="counting-double")


def facts_of(task: Any) -> dict[str, dict[str, str]]:
    return {r["company"]: r for r in task.answer.rows}
