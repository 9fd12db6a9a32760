"""TTFT and decode tokens/s through ponder's `llamacpp` dialect against the real
llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`) running the bundled
SmolLM2 on 127.0.0.1, next to the same model in-process (embedded backend).

    .venv/bin/python benchmarks/llamacpp_server.py [--runs 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.embedded import bundled_gguf
from ponder.models.openai_compat import close_clients
from ponder.models.registry import model

PROMPT = [Message.system("You are a helpful assistant."), Message.user("Explain in a few sentences why the sky is blue.")]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def measure(m, runs: int, max_tokens: int) -> list[tuple[float, float, int]]:
    out = []
    req = ChatRequest(messages=PROMPT, max_tokens=max_tokens, temperature=0.0, seed=1)
    await m.complete(req.model_copy(update={"max_tokens": 4}))  # warm-up
    for _ in range(runs):
        fin = await m.complete(req)
        out.append((fin.ttft_s or 0.0, fin.decode_tokens_per_s or 0.0, fin.usage.completion_tokens))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    port = _port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
                                 "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"], stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            for _ in range(240):
                try:
                    urllib.request.urlopen(url + "/models", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)

            async def server_side():
                r = await measure(model(f"llamacpp:{url}#smollm2"), args.runs, args.max_tokens)
                await close_clients()
                return r

            served = asyncio.run(server_side())
        finally:
            proc.terminate()
            proc.wait()
    embedded = asyncio.run(measure(model("smollm2"), args.runs, args.max_tokens))
    print(f"SmolLM2-135M Q4_1, greedy, {args.max_tokens} max tokens, {args.runs} runs, medians")
    for name, rows in (("llama_cpp.server via llamacpp dialect", served), ("embedded (in-process)", embedded)):
        print(f"{name:<40} TTFT {statistics.median(r[0] for r in rows) * 1000:7.1f} ms   "
              f"decode {statistics.median(r[1] for r in rows):6.1f} tok/s   tokens {statistics.median(r[2] for r in rows):.0f}")


if __name__ == "__main__":
    main()
