"""The harness measures what it claims: with a test double that fans out per entity, the
swarm's critical steps on *wide* are far below interleaved's, and the report says so."""

from __future__ import annotations

from pathlib import Path

from ponder.bench.html import write_html
from ponder.bench.report import aggregate, speedups, summary_dict
from ponder.bench.runner import CompareConfig, Runner
from ponder.bench.store import CompareStore
from ponder.bench.suites import load_suite

from .conftest import facts_of, fanout_double

WIDTH = 10


async def test_swarm_critical_steps_far_below_interleaved_on_wide(tmp_path: Path, monkeypatch) -> None:
    import ponder.bench.suites.wide as wide_mod

    real = wide_mod.wide_suite
    monkeypatch.setattr(wide_mod, "wide_suite", lambda n, seed, width=(0, 0): real(n, seed, width=(WIDTH, WIDTH)))
    suite = load_suite("wide", n=2, seed=3)
    facts: dict[str, dict[str, str]] = {}
    for t in suite.tasks:
        facts.update(facts_of(t))
    model = fanout_double(facts, delay_s=0.08)  # model latency dominates, as with real models
    store = CompareStore(tmp_path / "c.db")
    cfg = CompareConfig(suites=["wide"], modes=["swarm", "interleaved"], models=["fanout-double"], n=2, seed=3,
                        concurrency=1, max_steps=WIDTH + 4, max_parallel=WIDTH, task_timeout_s=60)
    cid = await Runner(cfg, store, model_factory=lambda n: model, progress=False).run()
    recs = store.results(cid)
    assert len(recs) == 4 and all(r.status == "ok" for r in recs), [(r.mode, r.status, r.error) for r in recs]
    assert all(r.solved and r.score == 1.0 for r in recs), [(r.mode, r.score, r.answer) for r in recs]

    rows = {r.mode: r for r in aggregate(recs)}
    sw, il = rows["swarm"], rows["interleaved"]
    # interleaved: one search per entity, one step each, plus the answer step
    assert il.critical_steps == WIDTH + 1
    assert sw.critical_steps <= 0.5 * il.critical_steps, (sw.critical_steps, il.critical_steps)
    # the swarm did at least as much total work, spread over agents
    assert sw.steps >= il.steps * 0.8 and all(r.agents >= WIDTH for r in recs if r.mode == "swarm")
    (sp,) = speedups(recs)  # swarm relative to interleaved
    assert sp.critical_ratio is not None and sp.critical_ratio <= 0.5
    assert sp.wall_ratio is not None and sp.wall_ratio < 1 / 1.2, sp  # parallel sub-agents ran at the same time
    summary = summary_dict(recs)
    words = f"swarm used {sp.critical_ratio:.2f}× the critical steps of interleaved"
    assert "swarm" in summary["verdicts"]["wide"] and words in summary["verdicts"]["wide"]
    html = write_html(recs, cid, tmp_path / "r.html").read_text()
    assert html.count("<svg") == 3 and "Critical vs total steps" in html
