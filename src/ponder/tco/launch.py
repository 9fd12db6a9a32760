"""The serving command that realises a planned layout on vLLM or SGLang, with the model's
tool-call and reasoning parsers (recipes in shared/reference/kimi-k2.5.md and glm-4.7.md)."""

from __future__ import annotations

import shlex

from ..core.errors import ConfigError
from .arch import ModelEntry

ENGINES = ("vllm", "sglang")


def launch_command(model: ModelEntry, engine: str, *, n_gpus: int, tp: int, ep: int, dp: int,
                   precision: str) -> tuple[str, list[str]]:
    """Return (shell command, notes). Notes flag substitutions the user must check."""
    eng = engine.strip().lower()
    if eng not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r} for --launch; choose one of: {', '.join(ENGINES)}")
    notes: list[str] = []
    repo = model.hf_repo.get(precision)
    if repo is None:
        repo = f"<path-to-{model.name}-{precision}-checkpoint>"
        notes.append(f"no official {precision} checkpoint of {model.display} is known; point the command at your own")
    if model.name == "kimi-k2.5" and precision == "fp8":
        notes.append("Kimi K2.5 ships INT4 (QAT); the FP8 repo shown is K2-Instruct-0905, the same text architecture")
    parsers = model.parsers.get(eng, {})
    if not parsers:
        notes.append("no tool-call/reasoning parser is known for this model; add the flags your model needs")
    if eng == "vllm":
        cmd = ["vllm", "serve", repo, "--tensor-parallel-size", str(tp)]
        if dp > 1:
            cmd += ["--data-parallel-size", str(dp)]
        if ep > 1:
            cmd += ["--enable-expert-parallel"]
            if ep != n_gpus:
                notes.append(f"vLLM's expert-parallel size is always tp x dp = {n_gpus}, not {ep}")
    else:
        cmd = ["python3", "-m", "sglang.launch_server", "--model-path", repo]
        if ep > 1:
            cmd += ["--tp-size", str(n_gpus)]
            if dp > 1:
                cmd += ["--dp-size", str(dp), "--enable-dp-attention"]
            cmd += ["--ep-size", str(ep)]
        else:
            cmd += ["--tp-size", str(tp)]
            if dp > 1:
                cmd += ["--dp-size", str(dp)]
    if "tool_call_parser" in parsers:
        cmd += ["--tool-call-parser", parsers["tool_call_parser"]]
    if "reasoning_parser" in parsers:
        cmd += ["--reasoning-parser", parsers["reasoning_parser"]]
    extra = model.launch_extra.get(eng, [])
    cmd += extra
    if any("speculative" in x for x in extra):
        notes.append("this recipe turns on MTP/EAGLE speculative decoding; model it with --spec-tokens and "
                     "--acceptance (e.g. 1 and 0.9 for GLM's MTP) or drop those flags")
    if n_gpus > 8:
        notes.append("more than 8 GPUs spans nodes: add the engine's multi-node flags (--nnodes/--node-rank or Ray)")
    return " ".join(shlex.quote(c) for c in cmd), notes
