"""Embedded backend speed vs raw llama-cpp-python, same GGUF, prompt and settings, and
the embedded default on a busy machine.

    .venv/bin/python benchmarks/embedded_speed.py [--runs 7] [--max-tokens 128] [--skip-raw]

Both sides decode greedily from the same chat prompt with the same n_ctx, threads and
batch size, each on its own loaded context (so each keeps its own prompt cache). Runs
alternate which side goes first. Reported per side: median decode tokens/s (tokens after
the first / time from first to last token, the definition `CallAssembler` uses) and
median end-to-end tokens/s (all tokens / wall time from the call to the last token).

Contention: the same embedded call with the default thread count (`default_threads`)
and with one thread per usable core (the old default), each quiet and then beside a
CPU-burning process (`while True: pass`, one core), alternating quiet/busy runs so drift
hits both. Goal: the default keeps at least 0.5x its quiet end-to-end rate when busy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ponder.core.events import ContentDelta, ModelCallFinished
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.embedded import EmbeddedModel, usable_cores
from ponder.models.registry import model

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


def run_raw(llm: llama_cpp.Llama, max_tokens: int) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    first = last = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], stream=True, temperature=0.0, max_tokens=max_tokens, **SAMPLING
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None
    return n, (n - 1) / (last - first), n / (last - t0)


def run_generate(llm: llama_cpp.Llama, prompt_tokens: list[int], max_tokens: int) -> tuple[int, float, float]:
    """The lowest-level loop llama-cpp-python offers: `generate` + per-token detokenize."""
    t0 = time.perf_counter()
    first = last = None
    n = 0
    for tok in llm.generate(prompt_tokens, temp=0.0, **SAMPLING):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            break
        llm.detokenize([tok])
        n += 1
        last = time.perf_counter()
        first = first or last
        if n >= max_tokens:
            break
    assert first is not None and last is not None
    return n, (n - 1) / (last - first), n / (last - t0)


async def run_embedded(m: EmbeddedModel, max_tokens: int) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    last = t0
    done: ModelCallFinished | None = None
    req = ChatRequest(messages=[Message.user(PROMPT)], temperature=0.0, top_p=0.95, max_tokens=max_tokens)
    async for ev in m.stream(req):
        if isinstance(ev, ContentDelta):
            last = time.perf_counter()
        elif isinstance(ev, ModelCallFinished):
            done = ev
    assert done is not None and done.decode_tokens_per_s is not None and done.ttft_s is not None
    n = done.usage.completion_tokens
    # decode rate measured the same way as the raw side: first to last streamed token
    first = t0 + done.ttft_s
    return n, (n - 1) / (last - first), n / (last - t0)


class Burner:
    """A process that keeps one core busy (what another user's job does to us)."""

    def __enter__(self) -> Burner:
        self.p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.p.kill()
        self.p.wait()


async def contention(runs: int, max_tokens: int) -> None:
    cores = usable_cores()
    default = model("smollm2")
    assert isinstance(default, EmbeddedModel)
    cases = {f"default ({default.n_threads} thread{'s' if default.n_threads > 1 else ''})": default}
    if cores != default.n_threads:
        cases[f"all cores ({cores} threads)"] = model("smollm2", n_threads=cores)
    print(f"\ncontention: {cores} usable cores, {runs} runs each quiet and beside one CPU-burning process")
    for name, m in cases.items():
        assert isinstance(m, EmbeddedModel)
        await run_embedded(m, 8)  # load and warm
        quiet: list[float] = []
        busy: list[float] = []
        for _ in range(runs):
            quiet.append((await run_embedded(m, max_tokens))[2])
            with Burner():
                busy.append((await run_embedded(m, max_tokens))[2])
        q, b = statistics.median(quiet), statistics.median(busy)
        goal = "   (goal >= 0.5)" if m is default else ""
        print(f"{name:24s} quiet {q:7.1f} tok/s   busy {b:7.1f} tok/s   busy/quiet {b / q:.2f}{goal}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--skip-raw", action="store_true", help="only the contention measurement")
    args = ap.parse_args()
    if not args.skip_raw:
        await versus_raw(args.runs, args.max_tokens)
    await contention(max(3, args.runs // 2), args.max_tokens)


async def versus_raw(runs: int, max_tokens: int) -> None:
    emb = model("smollm2")
    assert isinstance(emb, EmbeddedModel)
    def load() -> llama_cpp.Llama:
        return llama_cpp.Llama(model_path=str(emb.path), n_ctx=emb.n_ctx, n_threads=emb.n_threads,
                               n_threads_batch=emb.n_threads, n_batch=emb.n_batch, verbose=False)

    raw, raw2 = load(), load()
    fmt = Jinja2ChatFormatter(template=raw2.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="")
    prompt_tokens = raw2.tokenize(fmt(messages=[{"role": "user", "content": PROMPT}]).prompt.encode(), add_bos=True, special=True)
    print(f"model {emb.path.name}  n_ctx={emb.n_ctx} n_threads={emb.n_threads} max_tokens={max_tokens} greedy")
    # warm both (load, first prompt eval) before timing
    sides = {
        "raw create_chat_completion": lambda: asyncio.sleep(0, run_raw(raw, max_tokens)),
        "raw generate loop": lambda: asyncio.sleep(0, run_generate(raw2, prompt_tokens, max_tokens)),
        "ponder embedded": lambda: run_embedded(emb, max_tokens),
    }
    run_raw(raw, 8)
    run_generate(raw2, prompt_tokens, 8)
    await run_embedded(emb, 8)

    dec: dict[str, list[float]] = {k: [] for k in sides}
    e2e: dict[str, list[float]] = {k: [] for k in sides}
    counts: set[tuple[str, int]] = set()
    names = list(sides)
    for i in range(runs):
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
            n, d, e = await sides[name]()
            dec[name].append(d)
            e2e[name].append(e)
            counts.add((name, n))
    print(f"tokens per run: {sorted(counts)}")
    med = {k: (statistics.median(dec[k]), statistics.median(e2e[k])) for k in sides}
    for k, (d, e) in med.items():
        print(f"{k:27s} decode {d:7.1f} tok/s   end-to-end {e:7.1f} tok/s")
    emb_d, emb_e = med["ponder embedded"]
    for k in names[:2]:
        print(f"ratio embedded / {k}: decode {emb_d / med[k][0]:.3f}   end-to-end {emb_e / med[k][1]:.3f}   (goal >= 0.95)")


if __name__ == "__main__":
    asyncio.run(main())
