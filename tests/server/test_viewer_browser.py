"""The viewer in a real browser: Playwright driving Debian's chromium (`make test` installs it).

Stored runs and a live one are made with the scripted test doubles (tests/server/viewer_runs.py)
and served by `create_app` on 127.0.0.1. Screenshots go to reports/viewer/ (not committed).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from tests.server.viewer_runs import (
    CRITICAL_AGENTS,
    CRITICAL_ORCH_STEPS,
    REASONING_A,
    SUB_AGENTS,
    run_in_thread,
    run_sync,
    serve,
    store_demo_swarm,
    store_interleaved,
    wait_for_row,
)

from ponder.core.store import RunStore

pytestmark = pytest.mark.timeout(180)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "reports" / "viewer"


@pytest.fixture(autouse=True)
def _close_pooled_http_sessions():
    """Overrides the suite's async fixture of this name: Playwright's sync API holds the main
    thread's event loop, and these tests open no pooled HTTP session (the runs are made with
    the scripted model, in threads of their own)."""
    yield


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if exe is None:
        pytest.fail("the viewer's browser tests need Debian's chromium: `make test` installs it "
                    "(or run `apt-get install -y chromium`)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.errors_seen = errors  # type: ignore[attr-defined]  # a test that expects one removes it
    yield pg
    ctx.close()
    assert not errors, f"the page reported errors: {errors}"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    db = tmp_path_factory.mktemp("viewer") / "runs.db"

    async def make():
        return await store_demo_swarm(db), await store_interleaved(db), await store_interleaved(db, error=True)

    swarm, ok, bad = run_sync(make)
    with serve(db) as base:
        yield base, swarm, ok, bad


def _bars(page, selector: str) -> list[tuple[str, int, bool]]:
    return page.eval_on_selector_all(
        selector, "els => els.map(e => [e.dataset.agent, +e.dataset.step, e.classList.contains('crit')])")


def test_runs_list_filters_and_links(page, stored):
    base, swarm, ok, bad = stored
    page.goto(base + "/")
    page.wait_for_selector("#runs tbody tr[data-id]")
    ids = page.eval_on_selector_all("#runs tbody tr[data-id]", "els => els.map(e => e.dataset.id)")
    assert ids == [bad.run_id, ok.run_id, swarm.run_id]
    row = page.locator(f'tr[data-id="{swarm.run_id}"]')
    assert row.locator("td.crit").inner_text() == "5" and row.locator(".badge").inner_text() == "ok"
    page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
    page.select_option("#status", "error")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr[data-id]').length === 1")
    assert page.locator("#runs tbody tr[data-id]").get_attribute("data-id") == bad.run_id
    page.select_option("#status", "")
    page.fill("#q", "Orvan")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr[data-id]').length === 2")
    page.select_option("#mode", "swarm")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr[data-id]').length === 1")
    page.click(f'tr[data-id="{swarm.run_id}"] a')
    page.wait_for_url(f"**/runs/{swarm.run_id}")
    page.wait_for_selector("body[data-loaded='1']")


def test_stored_swarm_timeline_critical_path_and_steps(page, stored):
    base, swarm, _ok, _bad = stored
    page.goto(f"{base}/runs/{swarm.run_id}")
    page.wait_for_selector("body[data-loaded='1']")
    # one timeline row per agent, the orchestrator first
    rows = page.eval_on_selector_all(".tl-row", "els => els.map(e => e.dataset.agent)")
    assert rows[0] == "orchestrator" and sorted(rows[1:]) == sorted(SUB_AGENTS)
    # a bar per model call; the critical path marks O1, O3 and every call of a and b
    calls = _bars(page, ".bar.model")
    assert len(calls) == swarm.metrics.model_calls == 10
    crit = {(a, s) for a, s, c in calls if c}
    assert crit == {("orchestrator", s) for s in CRITICAL_ORCH_STEPS} | {("a", 1), ("a", 2), ("b", 1)}
    assert {a for a, _, c in calls if c} - {"orchestrator"} == CRITICAL_AGENTS
    assert page.locator(".bar.model > i").count() == 10  # TTFT shaded apart from decode
    tools = page.eval_on_selector_all(".bar.tool", "els => els.map(e => e.dataset.tool)")
    assert sorted(tools) == sorted(["plan", "wait", "finish", "lookup", "memory_write", "python", "python", "lookup",
                                    "lookup"])
    assert page.locator("#crit-steps").inner_text() == "5"
    # verification and budget marks on their agents' rows; parallelism drawn
    assert page.locator('.tl-row[data-agent="c"] .mark.verification.bad').count() == 1
    assert page.locator('.tl-row[data-agent="c"] .mark.verification.ok').count() == 1
    assert page.locator('.tl-row[data-agent="d"] .mark.budget').count() == 1
    assert page.locator(".tl-par svg path").count() == 2
    # the agent tree: the orchestrator and its four sub-agents with instructions and status
    tree = page.eval_on_selector_all("ul.tree.root > li > ul > li > .node",
                                     "els => els.map(e => [e.dataset.agent, e.dataset.status])")
    assert sorted(tree) == [["a", "ok"], ["b", "ok"], ["c", "ok"], ["d", "budget"]]
    assert page.locator('.node[data-agent="b"] .meta').inner_text().endswith("after a")
    page.click('.node[data-agent="a"] details summary')
    assert page.locator('.node[data-agent="a"] details pre').inner_text() == "You do a."
    # select a, expand its first step, read the reasoning, open a tool call
    page.click('.node[data-agent="a"] .name')
    page.wait_for_selector('#steps details.step[data-agent="a"]')
    assert page.locator("#steps details.step.crit").count() == 2
    page.click('#steps details.step[data-step="1"] > summary')
    body = page.locator('#steps details.step[data-step="1"] .step-body')
    assert body.locator("pre.reasoning").inner_text() == REASONING_A
    body.locator('details.tool summary:has-text("lookup")').click()
    assert "Orvan population" in body.locator("pre.args").first.inner_text()
    assert body.locator("pre.result").first.inner_text() == "fact: Orvan population is 48,200"
    # shared memory with provenance
    mem = page.locator('#memory tr[data-key="orvan.population"]')
    assert "48,200" in mem.inner_text() and mem.locator(".agent-link").inner_text() == "a"
    page.screenshot(path=str(SHOTS / "swarm.png"), full_page=True)
    # a bar opens its step: c's first call shows both verifications
    page.click('.bar.model[data-agent="c"][data-step="1"]')
    step = page.locator('#steps details.step[data-agent="c"][data-step="1"]')
    step.wait_for()
    assert step.get_attribute("open") is not None
    assert step.locator(".badge.ver-bad").count() == 1 and step.locator(".badge.ver-ok").count() == 1
    assert "forbidden module 'os'" in step.locator(".step-body").inner_text()


def test_interleaved_and_error_runs(page, stored):
    base, _swarm, ok, bad = stored
    page.goto(f"{base}/runs/{ok.run_id}")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.eval_on_selector_all(".tl-row", "els => els.map(e => e.dataset.agent)") == ["main"]
    calls = _bars(page, ".bar.model")
    assert len(calls) == 2 and all(c for _, _, c in calls)  # one agent: every step is on the path
    page.goto(f"{base}/runs/{bad.run_id}")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.locator("#summary .badge").first.inner_text() == "error"
    assert page.locator(".bar.model.err").count() == 1
    assert "upstream broke" in page.locator("#summary").inner_text()
    page.goto(f"{base}/runs/no-such-run")
    page.wait_for_selector("body[data-loaded='error']")
    assert "no run 'no-such-run'" in page.locator("#error").inner_text()
    page.errors_seen.remove("Failed to load resource: the server responded with a status of 404 (Not Found)")


def test_live_swarm_updates_while_it_runs(page, tmp_path):
    db = tmp_path / "runs.db"
    RunStore(db).close()  # create the store first: two connections creating one race on its schema
    gate = threading.Event()
    writer = run_in_thread(lambda: store_demo_swarm(db, run_id="live-swarm", delay=0.25, decode=0.1, gate=gate))
    try:
        with serve(db) as base:
            wait_for_row(db, "live-swarm", events=4)  # started, system + user message, step 1 (held by the gate)
            page.goto(f"{base}/runs/live-swarm")
            page.wait_for_selector("body[data-loaded='1']", timeout=30_000)
            assert page.locator("#live .live").is_visible()
            assert page.locator("#summary .badge").first.inner_text() == "running"
            assert page.locator(".bar.model:not(.running)").count() == 0
            assert page.locator('.tl-row[data-agent="orchestrator"] .bar.model.running').count() == 1  # in flight
            gate.set()
            # sub-agents appear and their calls land while the run is still going
            page.wait_for_function("document.querySelectorAll('.tl-row').length === 5"
                                   " && document.querySelectorAll('.tl-row[data-agent=\"a\"] .bar.model:not(.running)').length >= 1",
                                   timeout=30_000)
            mid = page.evaluate("({live: !!document.querySelector('#live .live'),"
                                " status: document.querySelector('#summary .badge').textContent})")
            assert mid == {"live": True, "status": "running"}
            page.screenshot(path=str(SHOTS / "swarm-live.png"), full_page=True)
            page.wait_for_selector("body[data-stream-ended='ok']", timeout=60_000)
            page.wait_for_function("document.querySelector('#summary .badge').textContent === 'ok'")
            assert not page.locator("#live .live").count()
            calls = _bars(page, ".bar.model")
            assert len(calls) == 10
            assert {(a, s) for a, s, c in calls if c} == ({("orchestrator", s) for s in CRITICAL_ORCH_STEPS}
                                                        | {("a", 1), ("a", 2), ("b", 1)})
            assert page.locator("#crit-steps").inner_text() == "5"
            page.screenshot(path=str(SHOTS / "swarm-live-done.png"), full_page=True)
    finally:
        gate.set()
        writer.join(timeout=60)
