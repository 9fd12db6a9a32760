"""The generated suites: deterministic from the seed, answerable from the corpus, graded right."""

from __future__ import annotations

import json
from pathlib import Path

from ponder.bench.graders import grade, normalize_text
from ponder.bench.suites import jsonl_suite, load_suite


def test_deep_is_deterministic_and_answerable_from_its_evidence() -> None:
    a, b = load_suite("deep", n=9, seed=7), load_suite("deep", n=9, seed=7)
    assert [(t.question, t.answer) for t in a.tasks] == [(t.question, t.answer) for t in b.tasks]
    assert [t.question for t in load_suite("deep", n=9, seed=8).tasks] != [t.question for t in a.tasks]
    assert {t.features["hops"] for t in a.tasks} == {2, 3, 4}
    docs = {d.doc_id: d for d in a.documents}
    for t in a.tasks:
        evidence = [docs[e] for e in t.meta["evidence"]]
        assert len(evidence) == t.features["hops"]
        last = evidence[-1].text.replace(",", "")
        assert normalize_text(t.answer) in normalize_text(last), (t.question, t.answer, last)
        assert grade("exact", f"...\nExact Answer: {t.answer}", t.answer).solved
    # hard negatives: near-duplicate company names and same-name cities exist
    titles = [d.title for d in a.documents]
    assert any(t.endswith(" Group") or t.startswith("New ") or t.endswith(" International") for t in titles)
    city_names = [d.title.split(" (")[0] for d in a.documents if d.doc_id.startswith("city-")]
    assert len(city_names) > len(set(city_names))


def test_wide_tables_match_the_corpus() -> None:
    full = load_suite("wide", n=3, seed=2)
    assert all(20 <= len(t.answer.rows) <= 50 for t in full.tasks)
    demo = load_suite("wide", n=2, seed=2, demo=True)
    t = demo.tasks[0]
    assert 3 <= len(t.answer.rows) <= 4
    text = " ".join(d.text for d in demo.documents)
    for row in t.answer.rows:
        assert f"{row['company']} is" in text and f"Its CEO is {row['ceo']}" in text
    table = "| company | founded | headquarters | ceo |\n|--|--|--|--|\n" + "\n".join(
        f"| {r['company']} | {r['founded']} | {r['headquarters']} | {r['ceo']} |" for r in t.answer.rows)
    assert grade("table", table, t.answer).solved


async def test_wide_corpus_search_finds_each_company() -> None:
    suite = load_suite("wide", n=1, seed=2, demo=True)
    search = {tl.name: tl for tl in suite.tools()}["search"]
    for row in suite.tasks[0].answer.rows:
        ok, content, _ = await search.run({"query": row["company"], "k": 3})
        assert ok and row["company"] in content


def test_reason_uses_reasoning_gym_scorers() -> None:
    s = load_suite("reason", n=6, seed=0)
    assert len(s.tasks) == 6 and len({t.features["generator"] for t in s.tasks}) == 6
    for t in s.tasks:
        assert grade("rg", f"work\nAnswer: {t.answer}", t.answer, t.meta).solved, t.task_id
        assert not grade("rg", "Answer: definitely-wrong-999", t.answer, t.meta).solved


def test_jsonl_suite(tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"question": "Capital of France?", "answer": ["Paris"], "grader": "exact"}) + "\n"
                 + "# a comment\n" + json.dumps({"id": "x", "question": "2+2", "answer": "4", "grader": "number"}) + "\n")
    s = jsonl_suite(p)
    assert s.name == "mine" and [t.task_id for t in s.tasks] == ["mine-0001", "x"]
    assert grade(s.tasks[0].grader, "Answer: paris", s.tasks[0].answer).solved
