"""Render time of a huge answer in the CLI's views: linear in the output, or not.

A run whose answer is 1, 10 and 50 MB is streamed as content deltas (`--delta-chars` each)
through `ponder.cli.render.consume`, the function `ponder run` renders with, in the default
interleaved view (`RunView`), the swarm's view (`SwarmView` under `rich.live.Live`) and
`--json` (`JsonLines`), with the terminal's output going to a file (`--out`, default a
temporary file; `/dev/null` works too). The events are built before the clock starts, so
only rendering is timed. Each cell is the median of `--rounds` runs.

Linear means the seconds per MB stay flat from 1 to 50 MB ("50/1 per-MB ratio" near 1);
the issue's report was 2 MB 1.8 s, 20 MB 82 s, 50 MB over 15 min in the default view.

`--e2e` also times the whole path once per size and view: `ponder run` in a subprocess
against the mock OpenAI server (a test double in a thread here, streaming the answer in
`--delta-chars` chunks over loopback HTTP), journal included, its terminal output to a file.

    .venv/bin/python benchmarks/render_speed.py [--sizes 1,10,50] [--delta-chars 64] [--rounds 3] [--e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ponder.cli import render
from ponder.core.events import (
    ContentDelta,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    RunStarted,
    StepStarted,
)
from ponder.core.messages import Message, Usage
from ponder.core.metrics import RunMetrics

MB = 2**20


def build_events(size_mb: float, delta_chars: int, agent: str = "main") -> list[Any]:
    """One step, a little reasoning, then the answer in deltas, its call's end and the run's end."""
    piece = ("The quick brown fox jumps over the lazy dog; arr[i] = [bold]x[/]. " * (delta_chars // 60 + 2))[:delta_chars]
    n = int(size_mb * MB) // delta_chars
    answer = piece * n
    evs: list[Any] = [RunStarted(run_id="bench", mode="interleaved", task="write a lot", agent=agent),
                      StepStarted(step=1, agent=agent), ReasoningDelta(text="I will write at length.", agent=agent)]
    evs += [ContentDelta(text=piece, agent=agent) for _ in range(n)]
    evs.append(ModelCallFinished(model="bench", message=Message.assistant(answer), agent=agent,
                                 usage=Usage(prompt_tokens=10, completion_tokens=len(answer) // 4)))
    evs.append(RunFinished(status="ok", answer=answer, run_id="bench", agent=agent,
                           metrics=RunMetrics(steps=1, model_calls=1, wall_s=1.0)))
    return evs


async def _aiter(evs: list[Any]) -> AsyncIterator[Any]:
    for ev in evs:
        yield ev


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[Any]:
    """The CLI's console and stdout into `path` for the duration."""
    with open(path, "w", encoding="utf-8") as f:
        old_file, old_stdout = render.console.file, sys.stdout
        render.console.file, sys.stdout = f, f
        try:
            yield f
        finally:
            render.console.file, sys.stdout = old_file, old_stdout


def render_once(evs: list[Any], view: str, out: str) -> tuple[float, int]:
    """Seconds to render `evs` in `view`, and the bytes it wrote."""
    json_out, mode = view == "json", "swarm" if view == "swarm" else "interleaved"
    gc.collect()
    with _output_to(out) as f:
        t0 = time.perf_counter()
        asyncio.run(render.consume(_aiter(evs), json_out=json_out, mode=mode))
        f.flush()
        took = time.perf_counter() - t0
    return took, os.path.getsize(out) if out != os.devnull else 0


def end_to_end(sizes: list[float], delta_chars: int, out: str) -> None:
    """Wall seconds of `ponder run` (default view and --json) for each answer size."""
    import subprocess

    from ponder.testing_http import MockOpenAIServer, MockReply

    piece = ("The quick brown fox jumps over the lazy dog; arr[i] = [bold]x[/]. " * (delta_chars // 60 + 2))[:delta_chars]
    chunks: list[Any] = []
    with MockOpenAIServer(lambda payload, n: MockReply(sse=chunks)).in_thread() as srv:
        ponder = os.path.join(os.path.dirname(sys.executable), "ponder")
        print(f"\n{'end to end':<20} {'answer MB':>9} {'seconds':>9} {'s per MB':>9}")
        with tempfile.TemporaryDirectory() as home:
            for size in sizes:
                n = int(size * MB) // delta_chars
                chunks[:] = [{"choices": [{"index": 0, "delta": {"reasoning_content": "I will write."}}]}]
                chunks += [{"choices": [{"index": 0, "delta": {"content": piece}}]}] * n
                chunks += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                           {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": n * delta_chars // 4}}]
                for view in ("default", "json"):
                    args = [ponder, "run", "-m", f"openai:{srv.base_url}#mock", "--tools", "", "write at length"]
                    if view == "json":
                        args.insert(2, "--json")
                    with open(out, "w") as f:
                        t0 = time.perf_counter()
                        rc = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, timeout=1800,
                                            env={**os.environ, "PONDER_HOME": home, "COLUMNS": "100"}).returncode
                        took = time.perf_counter() - t0
                    print(f"{'ponder run ' + view:<20} {size:>9g} {took:>9.2f} {took / size:>9.3f}" + (f"  (exit {rc})" if rc else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,10,50", help="answer sizes in MB, comma-separated")
    ap.add_argument("--delta-chars", type=int, default=64, help="characters per streamed delta")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--views", default="default,swarm,json")
    ap.add_argument("--out", default=None, help="where the rendered output goes (default: a temporary file)")
    ap.add_argument("--e2e", action="store_true", help="also time `ponder run` end to end against a mock server")
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    views = args.views.split(",")
    tmp = None
    if args.out is None:
        fd, tmp = tempfile.mkstemp(suffix=".txt")
        os.close(fd)
    out = args.out or tmp
    assert out is not None
    render.console.width = 100
    results: dict[tuple[str, float], tuple[float, int]] = {}
    print(f"render time, {args.delta_chars}-char deltas, median of {args.rounds} (output to {out})", file=sys.stderr)
    try:
        for size in sizes:
            evs = build_events(size, args.delta_chars)
            for view in views:
                runs = [render_once(evs, view, out) for _ in range(args.rounds)]
                results[(view, size)] = (statistics.median(t for t, _ in runs), runs[-1][1])
            del evs
        report(results, sizes, views, args.delta_chars)
        if args.e2e:
            end_to_end(sizes, args.delta_chars, out)
    finally:
        if tmp:
            os.unlink(tmp)


def report(results: dict[tuple[str, float], tuple[float, int]], sizes: list[float], views: list[str],
           delta_chars: int) -> None:
    print(f"{'view':<8} {'answer MB':>9} {'events':>9} {'seconds':>9} {'s per MB':>9} {'output MB':>10}")
    for (view, size), (secs, nbytes) in results.items():
        n = int(size * MB) // delta_chars + 5
        print(f"{view:<8} {size:>9g} {n:>9,} {secs:>9.3f} {secs / size:>9.4f} {nbytes / MB:>10.2f}")
    lo, hi = min(sizes), max(sizes)
    for view in views:
        a, b = results[(view, lo)][0] / lo, results[(view, hi)][0] / hi
        print(f"{view}: {hi:g} MB / {lo:g} MB per-MB time ratio {b / a:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
