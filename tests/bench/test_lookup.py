"""lookup-wide and lookup-chain: deterministic, answerable through their tools, graded right,
and measured by the runner (with scripted test doubles standing in for a model)."""

from __future__ import annotations

import re
from pathlib import Path

from ponder.bench.graders import grade, parse_pairs
from ponder.bench.runner import CompareConfig, Runner
from ponder.bench.store import CompareStore
from ponder.bench.suites import load_suite
from ponder.core.messages import ToolCall
from ponder.models.base import ChatRequest
from ponder.testing import Reply, ScriptedModel


def _lines(task) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{r['entity']} {task.meta['phrase']} {r['value']}" for r in task.answer.rows]


def test_lookup_wide_is_deterministic_and_sized() -> None:
    a, b = load_suite("lookup-wide", n=6, seed=4), load_suite("lookup-wide", n=6, seed=4)
    assert [(t.question, t.answer.rows) for t in a.tasks] == [(t.question, t.answer.rows) for t in b.tasks]
    assert [t.question for t in load_suite("lookup-wide", n=6, seed=5).tasks] != [t.question for t in a.tasks]
    assert all(8 <= t.features["width"] <= 50 for t in a.tasks)
    demo = load_suite("lookup-wide", n=6, seed=4, demo=True)
    assert all(8 <= t.features["width"] <= 10 for t in demo.tasks)
    assert {t.meta["attribute"] for t in a.tasks} == {"founded", "born", "population"}
    for t in a.tasks:  # every entity is named in the question, every value is a number
        assert all(r["entity"] in t.question and r["value"].isdigit() for r in t.answer.rows)


async def test_lookup_wide_tool_reads_names_as_a_search_box_and_keeps_the_runs_table() -> None:
    suite = load_suite("lookup-wide", n=1, seed=0, demo=True)
    task = suite.tasks[0]
    tool = suite.tools()[0]
    assert "enum" not in tool.parameters["properties"]["entity"]
    first, second = task.answer.rows[0], task.answer.rows[1]
    ok, content, _ = await tool.run({"entity": first["entity"]})
    fact = f"{first['entity']} {task.meta['phrase']} {first['value']}"
    assert ok and content == fact  # one lookup so far: the fact alone
    ok, content, _ = await tool.run({"entity": f"2. {second['entity'].lower()}"})  # list numbering, case
    assert ok and "so far (2" in content and content.splitlines()[-1].startswith(second["entity"])
    assert content.splitlines()[2] == fact  # this call's fact first, then the agent's table, oldest first
    # the table is the calling agent's: a swarm sub-agent sees only its own lookups
    res = await tool.result(ToolCall(id="c1", name="lookup", arguments={"entity": second["entity"]}), agent="agent-7")
    assert res.ok and "so far" not in res.content and res.content.startswith(second["entity"])
    ok, content, _ = await tool.run({"entity": "1954"})
    assert not ok and "is a number" in content
    ok, content, _ = await tool.run({"entity": second["entity"][:-1]})  # one close spelling
    assert ok and content.startswith(second["entity"])
    ok, content, _ = await tool.run({"entity": "Nowhere Town"})
    assert not ok and "no entity named" in content
    event = next(e for e in suite_entities(suite) if re.match(r"\d{4} ", e))
    ok, content, _ = await tool.run({"entity": event})
    assert not ok and "is an event" in content and "city, company, person" in content
    ok, content, _ = await suite.tools()[0].run({"entity": first["entity"]})  # a new run starts a new table
    assert "so far" not in content and content.startswith(first["entity"])


def suite_entities(suite) -> list[str]:
    from ponder.bench.suites.kb import build_kb
    from ponder.bench.suites.lookup import FactIndex

    return sorted(FactIndex.from_kb(build_kb(0)).entities)


def test_lookup_wide_grading_counts_values_not_restated_names() -> None:
    task = load_suite("lookup-wide", n=1, seed=0, demo=True).tasks[0]
    lines = _lines(task)
    assert grade("pairs", "\n".join(lines), task.answer, task.meta).solved
    names_only = "\n".join(f"{r['entity']}: ?" for r in task.answer.rows)
    assert grade("pairs", names_only, task.answer).score == 0.0  # restating the question earns nothing
    half = len(lines) // 2
    g = grade("pairs", "\n".join(lines[:half]), task.answer)
    assert g.detail["items_correct"] == half and g.detail["items_gold"] == len(lines)
    assert abs(g.score - 2 * half / (half + len(lines))) < 1e-9  # precision 1, recall half/len
    wrong = "\n".join(f"{r['entity']}: {int(r['value']) + 1}" for r in task.answer.rows)
    assert grade("pairs", wrong, task.answer).score == 0.0
    # markdown rows and "Name: value" lines parse too; the longest entity name wins
    rows = parse_pairs("| Velmora Systems Group | 1901 |\n- Velmora Systems: 1955\nnoise", ["Velmora Systems",
                                                                                       "Velmora Systems Group"])
    assert rows == [{"entity": "Velmora Systems Group", "value": "1901"}, {"entity": "Velmora Systems", "value": "1955"}]


async def test_lookup_chain_follows_its_cursor_to_the_gold_answer() -> None:
    suite = load_suite("lookup-chain", n=6, seed=3)
    assert [t.features["hops"] for t in suite.tasks] == [2, 3, 4, 2, 3, 4]
    again = load_suite("lookup-chain", n=6, seed=3)
    assert [(t.question, t.answer) for t in suite.tasks] == [(t.question, t.answer) for t in again.tasks]
    tool = suite.tools()[0]
    for t in suite.tasks:
        entity = re.search(r'lookup\(entity="([^"]+)"\)', t.question).group(1)  # type: ignore[union-attr]
        calls = 0
        while True:
            ok, content, _ = await tool.run({"entity": entity})
            calls += 1
            assert ok and calls <= t.features["hops"], content
            nxt = re.search(r'next: lookup\(entity="([^"]+)"\)', content)
            if nxt is None:
                break
            entity = nxt.group(1)
        assert calls == t.features["hops"] and "the chain ends here" in content
        assert content.startswith(t.answer)
        assert grade("exact", f"The chain ends.\nAnswer: {t.answer}", t.answer).solved
        assert not grade("exact", "Answer: 1066", t.answer).solved


def _follower() -> ScriptedModel:
    """A scripted test double for an Interleaved agent: calls the entity the task or the last
    tool result names, then answers with the year the chain ended on."""

    def script(req: ChatRequest, n: int) -> Reply:
        tool_msgs = [m for m in req.messages if m.role == "tool"]
        if tool_msgs:
            last = tool_msgs[-1].content or ""
            nxt = re.search(r'next: lookup\(entity="([^"]+)"\)', last)
            if nxt is None:
                return Reply(content=f"Answer: {last.split(' ')[0]}")
            return Reply(tool_calls=[("lookup", {"entity": nxt.group(1)})])
        task = next(m.content for m in req.messages if m.role == "user") or ""
        return Reply(tool_calls=[("lookup", {"entity": re.search(r'entity="([^"]+)"', task).group(1)})])  # type: ignore[union-attr]

    return ScriptedModel(script, name_="follower-double")


async def test_runner_scores_and_grounds_a_chain_run(tmp_path: Path) -> None:
    store = CompareStore(tmp_path / "c.db")
    model = _follower()
    cfg = CompareConfig(suites=["lookup-chain"], modes=["interleaved"], models=["follower-double"], n=3,
                        concurrency=1, max_steps=8)
    cid = await Runner(cfg, store, model_factory=lambda n: model, progress=False).run()
    recs = store.results(cid)
    assert len(recs) == 3 and all(r.solved and r.status == "ok" for r in recs), [(r.answer, r.status) for r in recs]
    assert [r.critical_steps for r in recs] == [3, 4, 5]  # k lookups + the answer: the chain is sequential
    assert all(r.detail["grounding"]["fraction"] == 1.0 for r in recs)  # the year came from a tool result
    assert all(r.detail["gold"] == r.extracted for r in recs)
