"""The runner: resumable, records errors and goes on, stores every measured field."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ponder.bench.runner import CompareConfig, Runner
from ponder.bench.store import CompareStore

from .conftest import counting_double


def _suite_file(tmp_path: Path, n: int = 8) -> Path:
    p = tmp_path / "arith.jsonl"
    p.write_text("\n".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {4 - i}?", "answer": "4",
                                       "grader": "number"}) for i in range(n)) + "\n")
    return p


def _cfg(path: Path, **kw: object) -> CompareConfig:
    base = dict(suites=[], modes=["single"], models=["counting-double"], jsonl=[str(path)], n=50, concurrency=1)
    base.update(kw)
    return CompareConfig(**base)  # type: ignore[arg-type]


async def test_interrupted_comparison_resumes_without_redoing_finished_tasks(tmp_path: Path) -> None:
    path = _suite_file(tmp_path, 8)
    store = CompareStore(tmp_path / "c.db")
    first = counting_double()
    finished: list[str] = []
    three_done = asyncio.Event()

    def on_record(rec: object) -> None:
        finished.append(rec.task_id)  # type: ignore[attr-defined]
        if len(finished) == 3:
            three_done.set()

    runner = Runner(_cfg(path), store, model_factory=lambda name: first, progress=False, on_record=on_record)
    cid = store.new_comparison(runner.cfg.to_dict(), "resume-test")
    job = asyncio.create_task(runner.run(cid))
    await three_done.wait()
    job.cancel()  # killed midway: the 4th task is in flight
    with pytest.raises(asyncio.CancelledError):
        await job
    assert len(store.results(cid)) == 3
    assert dict(store.comparisons())[cid] == "interrupted"

    second = counting_double()
    resumed = Runner(CompareConfig.from_dict(store.config(cid)), store, model_factory=lambda name: second,
                     progress=False)
    assert await resumed.run(cid) == cid
    asked = [r.messages[-1].content for r in second.requests]
    assert len(second.requests) == 8 - 3  # only the unfinished tasks were run again
    assert not any(f"What is {int(t[1:])} +" in (q or "") for t in finished for q in asked)
    results = store.results(cid)
    assert sorted(r.task_id for r in results) == [f"q{i}" for i in range(8)]
    assert all(r.solved and r.status == "ok" for r in results)
    assert dict(store.comparisons())[cid] == "done"
    # a third run has nothing left to do
    third = counting_double()
    await Runner(CompareConfig.from_dict(store.config(cid)), store, model_factory=lambda n: third,
                 progress=False).run(cid)
    assert third.requests == []


async def test_a_failing_task_is_recorded_and_the_comparison_goes_on(tmp_path: Path) -> None:
    path = _suite_file(tmp_path, 4)
    store = CompareStore(tmp_path / "c.db")
    model = counting_double(fail_on="What is 2 +")
    cid = await Runner(_cfg(path, concurrency=2), store, model_factory=lambda n: model, progress=False).run()
    by_id = {r.task_id: r for r in store.results(cid)}
    assert len(by_id) == 4
    assert by_id["q2"].status == "error" and "scripted failure" in (by_id["q2"].error or "")
    assert all(by_id[t].solved for t in ("q0", "q1", "q3"))


async def test_single_mode_records_tokens_cost_and_timing(tmp_path: Path) -> None:
    path = _suite_file(tmp_path, 2)
    store = CompareStore(tmp_path / "c.db")
    model = counting_double(answer="Let me think.\nAnswer: 4")
    model.spec.price_output = 2.0  # USD per 1M output tokens: cost must be non-zero
    cid = await Runner(_cfg(path), store, model_factory=lambda n: model, progress=False).run()
    r = store.results(cid)[0]
    assert r.steps == r.critical_steps == r.model_calls == 1
    assert r.prompt_tokens > 0 and r.completion_tokens > 0 and r.cost_usd > 0
    assert r.ttft_s is not None and r.wall_s >= 0.01 and r.extracted == "4"


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        CompareConfig(modes=["fast"]).validate()
    with pytest.raises(ValueError, match="unknown suite 'hard'"):
        CompareConfig(suites=["hard"]).validate()
    from ponder.bench.suites import SuiteFileError, jsonl_suite

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(SuiteFileError, match="bad.jsonl:1"):
        jsonl_suite(bad)


async def test_time_budget_leaves_the_rest_resumable(tmp_path: Path) -> None:
    path = _suite_file(tmp_path, 6)
    store = CompareStore(tmp_path / "c.db")
    model = counting_double(delay_s=0.05)
    runner = Runner(_cfg(path, time_budget_s=0.12), store, model_factory=lambda n: model, progress=False)
    cid = await runner.run()
    done = len(store.results(cid))
    assert 1 <= done < 6 and runner.skipped == 6 - done
    assert dict(store.comparisons())[cid] == "partial"
    again = Runner(_cfg(path), store, model_factory=lambda n: model, progress=False)
    await again.run(cid)
    assert len(store.results(cid)) == 6 and dict(store.comparisons())[cid] == "done"


async def test_cut_tasks_are_counted_apart_from_errors_and_kept_out_of_wall_clock(tmp_path: Path) -> None:
    from ponder.bench.report import aggregate, speedups

    path = _suite_file(tmp_path, 3)
    store = CompareStore(tmp_path / "c.db")
    slow = counting_double(delay_s=0.6)
    cfg = _cfg(path, modes=["interleaved"], task_timeout_s=0.2, max_steps=3)
    cid = await Runner(cfg, store, model_factory=lambda n: slow, progress=False).run()
    recs = store.results(cid)
    assert {r.status for r in recs} == {"budget"} and not any(r.error for r in recs)  # the engine's wall budget
    (row,) = aggregate(recs)
    assert row.cut == 3 and row.errors == 0 and row.wall_mean_s is None  # no finished task: no wall figure
    assert speedups(recs) == []


async def test_the_runners_hard_timeout_is_a_cut_not_an_error(tmp_path: Path) -> None:
    path = _suite_file(tmp_path, 1)
    store = CompareStore(tmp_path / "c.db")
    runner = Runner(_cfg(path, task_timeout_s=0.05), store, model_factory=lambda n: counting_double(delay_s=5.0),
                    progress=False)
    runner.hard_margin_s = 0.0  # a single-mode call has no engine budget: the runner's limit cuts it
    cid = await runner.run()
    (rec,) = store.results(cid)
    assert rec.status == "timeout" and rec.error is None and "hard limit" in rec.detail["reason"]


async def test_time_budget_lists_what_did_not_run(tmp_path: Path) -> None:
    from rich.console import Console

    from ponder.bench.html import render_html
    from ponder.bench.report import NotRun, render_terminal

    path = _suite_file(tmp_path, 5)
    store = CompareStore(tmp_path / "c.db")
    runner = Runner(_cfg(path, time_budget_s=0.05), store, model_factory=lambda n: counting_double(delay_s=0.04),
                    progress=False)
    cid = await runner.run()
    pending = runner.pending_keys(cid)
    assert pending and sorted(pending) == sorted(runner.not_run)
    assert len(pending) + len(store.results(cid)) == 5
    not_run = NotRun(pending, f"ponder compare --resume {cid}")
    console = Console(record=True, width=200)
    render_terminal(store.results(cid), cid, console, config=runner.cfg.to_dict(), not_run=not_run)
    out = console.export_text()
    assert f"{len(pending)} task(s) did not run (arith/single: {len(pending)})" in out
    assert f"ponder compare --resume {cid}" in out
    assert "time limit per task (s)" in out and "{'" not in out  # a table of the configuration, not a dict
    html = render_html(store.results(cid), cid, runner.cfg.to_dict(), not_run)
    assert f"Did not run ({len(pending)})" in html and "--resume" in html and "<th>tasks per suite</th>" in html


def test_engine_settings_reach_the_engines() -> None:
    from ponder.bench.runner import default_engine_factory

    model = counting_double()
    cfg = CompareConfig(thinking="off", first_tool_choice="required", max_steps=7, sub_max_steps=3)
    il = default_engine_factory("interleaved", model, [], cfg)
    assert il.thinking == "off" and il.first_tool_choice == "required" and il.budgets.max_steps == 7  # type: ignore[attr-defined]
    sw = default_engine_factory("swarm", model, [], cfg)
    c = sw.config  # type: ignore[attr-defined]
    assert c.thinking == "off" and c.sub_budgets.max_steps == 3 and sw.budgets.max_steps == 7
    assert c.first_tool_choice == "required"
    with pytest.raises(ValueError, match="thinking must be"):
        CompareConfig(thinking="maybe").validate()


def test_jsonl_suites_search_the_given_corpus(tmp_path: Path) -> None:
    import asyncio

    from ponder.bench.runner import build_suites

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "spec.md").write_text("# Packaging spec\n\nA source package is built with dpkg-buildpackage.")
    path = _suite_file(tmp_path, 2)
    (suite,) = build_suites(_cfg(path, corpus=str(docs)))
    tools = {t.name: t for t in suite.tools()}
    assert set(tools) == {"search", "open_document"}
    ok, content, _ = asyncio.run(tools["search"].run({"query": "dpkg source package"}))
    assert ok and str(docs) in content and "spec" in content
    (bare,) = build_suites(_cfg(path))
    assert bare.tools() == []
    with pytest.raises(ValueError, match="does not exist"):
        build_suites(_cfg(path, corpus=str(tmp_path / "missing")))
