"""Report statistics and the router, on hand-built records."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from ponder.bench.html import render_html
from ponder.bench.report import aggregate, render_terminal, wilson
from ponder.bench.router import Router, evaluate_router, fit_router, task_features
from ponder.bench.store import CompareStore, TaskRecord
from ponder.bench.suites import load_suite


def test_wilson_interval_hand_checked() -> None:
    lo, hi = wilson(8, 10)  # p=.8, n=10: the textbook Wilson interval is [0.490, 0.943]
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0


def _rec(task: str, mode: str, *, width: float, solved: bool, wall: float, cost: float = 0.001,
         suite: str = "wide", crit: int = 3, steps: int = 5) -> TaskRecord:
    return TaskRecord("c1", suite, task, mode, "m", mode, "ok", score=float(solved), solved=solved, wall_s=wall,
                      cost_usd=cost, steps=steps, critical_steps=crit, prompt_tokens=100, completion_tokens=50,
                      features={"width": width, "hops": 1.0})


def _records() -> list[TaskRecord]:
    recs = []
    for i in range(30):
        w = float(1 + i % 10)
        wide = w >= 5
        # wide tasks: swarm better; narrow tasks: interleaved better
        recs.append(_rec(f"t{i}", "swarm", width=w, solved=wide, wall=1.0))
        recs.append(_rec(f"t{i}", "interleaved", width=w, solved=not wide, wall=2.0))
    return recs


def test_fitted_router_learns_the_width_threshold_and_beats_fixed_policies() -> None:
    recs = _records()
    r = fit_router(recs)
    assert r.feature == "width" and r.above and r.threshold == 5.0 and r.train_accuracy == 1.0
    router, scores = evaluate_router(recs)
    by = {s.policy: s for s in scores}
    assert by["auto"].accuracy == 1.0 == by["oracle"].accuracy
    assert by["auto"].accuracy > by["always-swarm"].accuracy and by["auto"].accuracy > by["always-interleaved"].accuracy
    assert by["auto"].n < 30  # evaluated on held-out tasks only


def test_router_features_come_from_the_question_text() -> None:
    wide = load_suite("wide", n=1, seed=1, demo=True).tasks[0]
    deep = load_suite("deep", n=3, seed=1).tasks
    assert task_features(wide.question)["width"] == len(wide.answer.rows)
    assert all(task_features(t.question)["width"] == 1 for t in deep)  # "the 1952 Summit" is not a width
    rules = Router()
    expected = "swarm" if len(wide.answer.rows) >= 4 else "interleaved"
    assert rules.choose(wide.question) == expected
    assert rules.choose("For each of the following 12 companies, find the CEO: A; B; C.") == "swarm"
    assert rules.choose("What is 17 * 3?") == "interleaved"


def test_report_aggregates_and_renders(tmp_path: Path) -> None:
    recs = _records()
    recs.append(TaskRecord("c1", "wide", "tx", "single", "m", "single", "error", error="boom", wall_s=0.1))
    rows = {(r.mode): r for r in aggregate(recs)}
    assert rows["swarm"].n == 30 and rows["swarm"].solved == 18  # widths 5..10 of 1..10
    assert rows["swarm"].cost_per_solved == pytest.approx(0.03 / 18)
    assert rows["single"].errors == 1 and rows["single"].cost_per_solved is None
    console = Console(record=True, width=200)
    render_terminal(recs, "c1", console)
    out = console.export_text()
    assert "verdict" in out and "60% [" in out and "1 task(s) errored" in out
    html = render_html(recs, "c1")
    assert html.count("<svg") == 3 and "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "always-swarm" in html and "Pareto" in html


def test_store_roundtrip(tmp_path: Path) -> None:
    s = CompareStore(tmp_path / "x.db")
    cid = s.new_comparison({"n": 1})
    rec = _rec("t1", "swarm", width=3, solved=True, wall=1.5)
    rec.comparison_id = cid
    rec.detail = {"row_f1": 1.0}
    s.record(rec)
    s.record(rec)  # same key: replaced, not duplicated
    (back,) = s.results(cid)
    assert back.solved is True and back.features["width"] == 3 and back.detail == {"row_f1": 1.0}
    assert s.done_keys(cid) == {("wide", "t1", "swarm", "m")}
    with pytest.raises(KeyError, match="no comparison 'nope'"):
        s.config("nope")


def test_ratios_are_stated_one_way_in_words_and_cut_runs_stay_out_of_wall_clock() -> None:
    from ponder.bench.report import ratio_words, speedups, summary_dict

    assert ratio_words(3.5, "critical steps") == "swarm used 3.50× the critical steps of interleaved"
    assert ratio_words(0.29, "wall-clock time") == "swarm used 0.29× the wall-clock time of interleaved"
    assert "about the same" in ratio_words(1.02, "critical steps")
    recs = [_rec("a", "swarm", width=8, solved=True, wall=2.0, crit=4), _rec("a", "interleaved", width=8, solved=False,
                                                                             wall=8.0, crit=12),
            _rec("b", "swarm", width=8, solved=False, wall=99.0, crit=9), _rec("b", "interleaved", width=8,
                                                                               solved=False, wall=5.0, crit=9)]
    recs[2].status = "budget"  # cut: task b is left out of the swarm/interleaved ratios
    (sp,) = speedups(recs)
    assert sp.tasks == 1 and sp.excluded == 1 and sp.wall_ratio == 0.25 and sp.critical_ratio == 4 / 12
    rows = {r.mode: r for r in aggregate(recs)}
    assert rows["swarm"].cut == 1 and rows["swarm"].wall_mean_s == 2.0  # the 99 s cut run is not a speed
    v = summary_dict(recs)["verdicts"]["wide"]
    assert "swarm used 0.25× the wall-clock time of interleaved" in v and "1 run(s) were cut" in v


def test_item_level_intervals_and_the_design_fit_verdict() -> None:
    from ponder.bench.report import shape_verdict

    recs = []
    for i in range(4):
        sw = _rec(f"w{i}", "swarm", width=10, solved=False, wall=1.0, suite="lookup-wide")
        sw.detail = {"items_correct": 9, "items_gold": 10, "grounding": {"fraction": 1.0}}
        il = _rec(f"w{i}", "interleaved", width=10, solved=False, wall=3.0, suite="lookup-wide")
        il.detail = {"items_correct": 1, "items_gold": 10, "grounding": {"fraction": 0.5}}
        ch_sw = _rec(f"c{i}", "swarm", width=1, solved=False, wall=1.0, suite="lookup-chain")
        ch_il = _rec(f"c{i}", "interleaved", width=1, solved=i < 2, wall=1.0, suite="lookup-chain")
        for r in (ch_sw, ch_il):
            r.features = {"width": 1, "suite_hops": 3}
        recs += [sw, il, ch_sw, ch_il]
    rows = {(r.suite, r.mode): r for r in aggregate(recs)}
    w = rows[("lookup-wide", "swarm")]
    assert (w.items_correct, w.items_gold) == (36, 40) and w.item_ci is not None and w.item_ci[0] > 0.7
    assert w.grounded == 1.0 and rows[("lookup-wide", "interleaved")].grounded == 0.5
    lines = shape_verdict(aggregate(recs), recs)
    assert lines[0].startswith("wide work") and "swarm fits it better" in lines[0]
    assert lines[1].startswith("deep work") and "lookup-chain" in lines[1] and "intervals overlap" in lines[1]
