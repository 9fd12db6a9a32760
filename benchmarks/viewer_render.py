"""Viewer render benchmark: how long a 100-agent, 600-call swarm run takes to show in a real browser.

Makes the run with the scripted test-double model through `ponder.runs.execute` (the
orchestrator plans 100 sub-agents; sub-agent i makes 2 + i mod 7 tool calls, 5 on average,
and answers: 598 model calls, 498 tool calls), serves the store with `create_app` on 127.0.0.1, and opens the
run page in Debian's chromium through Playwright, `--repeats` times in fresh pages. For each:

* `page_ms`: from navigation start to the end of the first full render, layout included
  (the HTML, scripts, `/api/runs/{id}` with the server-side fold, JSON parse, DOM);
* `painted_ms`: to the next animation frame after it (the page is on screen);
* `render_ms`: the page's own drawing only (timeline, tree, steps, memory).

It also times `/api/runs/{id}` alone over HTTP and reports its size. Goal: painted < 1 s.

    .venv/bin/python benchmarks/viewer_render.py [--agents 100] [--steps 5] [--repeats 7] [--reasoning-chars 400] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ponder import runs
from ponder.core.messages import ToolCall
from ponder.engines.base import Budgets
from ponder.engines.swarm import Swarm
from ponder.models.base import ChatRequest
from ponder.server import create_app
from ponder.testing import Reply, ScriptedModel
from ponder.tools.base import tool

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOREM = ("Let me check the figure against the table before I commit to it; the previous step's result "
         "suggests the range is narrower than the question implies, so I will verify one more item. ")


@tool
def work(item: int = 0) -> str:
    """Do one unit of work (a benchmark double)."""
    return f"item {item} ok: " + "x" * 200


def script(agents: int, steps: int, reasoning_chars: int) -> Any:
    text = (LOREM * (reasoning_chars // len(LOREM) + 1))[:reasoning_chars]
    ids = iter(range(10**9))

    def tc(name: str, **args: Any) -> ToolCall:
        return ToolCall(id=f"c{next(ids)}", name=name, arguments=args)

    plan = [{"name": f"w{i:03d}", "instructions": f"You are worker {i}.", "task": f"process block {i}",
             "tools": ["work"]} for i in range(agents)]

    def reply(req: ChatRequest, n: int) -> Reply:
        names = {t["function"]["name"] for t in req.tools}
        turn = sum(1 for m in req.messages if m.role == "assistant")
        if "plan" in names or "finish" in names:
            if turn == 0:
                return Reply(reasoning=text, tool_calls=[tc("plan", subtasks=plan)])
            if turn == 1:
                return Reply(reasoning=text, tool_calls=[tc("wait", task_ids=[], mode="all")])
            return Reply(reasoning=text, tool_calls=[tc("finish", answer="all blocks processed")])
        worker = next((int(m.content.split()[-1]) for m in req.messages if m.role == "user"), 0)
        if turn < 2 + worker % (2 * steps - 3):  # 2..8 tool steps, 5 on average
            return Reply(reasoning=text, tool_calls=[tc("work", item=turn)])
        return Reply(reasoning=text, content=f"block done after {steps} items")

    return reply


async def make_run(db: Path, agents: int, steps: int, reasoning_chars: int) -> Any:
    sw = Swarm(ScriptedModel(script(agents, steps, reasoning_chars), price_output=2.0), [work], max_parallel=100,
               max_agents=max(100, agents), budgets=Budgets(max_steps=6, max_tool_calls=100_000),
               sub_budgets=Budgets(max_steps=2 * steps + 2))
    return await runs.execute(sw, "Process every block.", lambda ev: None, db=db)


def serve(db: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(db=db), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    while not srv.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", srv, t


_MEASURE = """async () => {
  const b = document.body;
  await new Promise((r) => { const t = setInterval(() => { if (b.dataset.loaded) { clearInterval(t); r(); } }, 2); });
  const done = performance.now();
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  return {loaded: b.dataset.loaded, page_ms: +b.dataset.pageMs, painted_ms: performance.now(), poll_ms: done,
          render_ms: +b.dataset.renderMs, rows: document.querySelectorAll('.tl-row').length,
          model_bars: document.querySelectorAll('.bar.model').length,
          critical_bars: document.querySelectorAll('.bar.model.crit').length,
          tool_bars: document.querySelectorAll('.bar.tool').length};
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5, help="mean tool steps per sub-agent (plus one answer step)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--reasoning-chars", type=int, default=400, help="reasoning text per call")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        t0 = time.perf_counter()
        fin = asyncio.run(make_run(db, a.agents, a.steps, a.reasoning_chars))
        make_s = time.perf_counter() - t0
        base, srv, thread = serve(db)
        try:
            api = []
            with httpx.Client(timeout=60) as c:
                for _ in range(a.repeats):
                    t = time.perf_counter()
                    r = c.get(f"{base}/api/runs/{fin.run_id}")
                    api.append((time.perf_counter() - t) * 1000)
                size = len(r.content)
                events = len(c.get(f"{base}/api/runs/{fin.run_id}/events").json())
            samples = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=a.chromium, args=CHROMIUM_ARGS)
                for i in range(a.repeats + 1):  # the first load warms the browser's caches; not counted
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(f"{base}/runs/{fin.run_id}", wait_until="commit")
                    m = page.evaluate(_MEASURE)
                    page.close()
                    if m["loaded"] != "1":
                        raise SystemExit(f"the page did not load: {m}")
                    if i:
                        samples.append(m)
                browser.close()
        finally:
            srv.should_exit = True
            thread.join(timeout=10)

    def med(key: str) -> float:
        return round(statistics.median(s[key] for s in samples), 1)

    out = {"agents": fin.metrics.agents, "model_calls": fin.metrics.model_calls, "tool_calls": fin.metrics.tool_calls,
           "journal_events": events, "critical_steps": fin.metrics.critical_steps, "make_run_s": round(make_s, 2),
           "api_view_ms_median": round(statistics.median(api), 1), "api_view_kib": round(size / 1024, 1),
           "page_ms_median": med("page_ms"), "painted_ms_median": med("painted_ms"),
           "render_ms_median": med("render_ms"), "painted_ms_max": round(max(s["painted_ms"] for s in samples), 1),
           "repeats": len(samples), "timeline_rows": samples[-1]["rows"], "model_bars": samples[-1]["model_bars"],
           "critical_bars": samples[-1]["critical_bars"], "tool_bars": samples[-1]["tool_bars"],
           "goal_painted_ms": 1000, "ok": med("painted_ms") < 1000}
    if a.json:
        print(json.dumps(out))
        return
    print(f"run: {out['agents']} sub-agents, {out['model_calls']} model calls, {out['tool_calls']} tool calls, "
          f"{events} journal events (made in {out['make_run_s']} s)")
    print(f"/api/runs/ID: {out['api_view_ms_median']} ms median over HTTP, {out['api_view_kib']} KiB")
    print(f"browser (chromium, {out['repeats']} fresh pages): first full render {out['page_ms_median']} ms, "
          f"painted {out['painted_ms_median']} ms median (max {out['painted_ms_max']} ms); "
          f"page drawing alone {out['render_ms_median']} ms")
    print(f"drawn: {out['timeline_rows']} timeline rows, {out['model_bars']} model-call bars "
          f"({out['critical_bars']} on the critical path), {out['tool_bars']} tool bars")
    print(f"goal: painted < 1000 ms -> {'met' if out['ok'] else 'NOT met'}")


if __name__ == "__main__":
    main()
