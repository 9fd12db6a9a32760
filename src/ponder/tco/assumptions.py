"""What the planner decided on its own for a deployment (printed with every result and in
--json), and the smallest change that makes a configuration fit when it does not."""

from __future__ import annotations

from dataclasses import replace

from .hardware import KV_DTYPES, SHORTHAND, weight_bytes
from .perf import Constants, Deployment, Workload, memory, tp_link


def assumptions(d: Deployment, k: Constants) -> list[str]:
    a, gpu = d.model.arch, d.gpu
    tp, ep, dp = d.resolved()
    attn_p, moe_p = d.precisions()
    out: list[str] = []
    rate = {"int4": "W4A16 at the BF16 rate", "fp4": "NVFP4 at the FP4 rate", "fp8": "FP8 rate", "bf16": "BF16 rate"}
    if a.is_moe:
        out.append(f"weights: attention/dense/shared {attn_p} ({rate[attn_p]}), routed experts {moe_p} "
                   f"({rate[moe_p]}); embeddings and lm_head BF16; KV cache {d.kv_dtype}")
    else:
        out.append(f"weights: {attn_p} ({rate[attn_p]}); embeddings BF16; KV cache {d.kv_dtype}")
    if tp > 1:
        name, bw = tp_link(gpu, tp)
        warn = "" if name == "NVLink" else f" -- TP {tp} exceeds the {gpu.gpus_per_node}-GPU NVLink domain"
        out.append(f"TP all-reduce over {name} ({bw:g} GB/s per direction){warn}")
    if ep > 1 and a.is_moe:
        m = gpu.gpus_per_node
        if d.n_gpus <= m:
            out.append(f"expert all-to-all over NVLink: {d.n_gpus} GPUs within one {m}-GPU NVLink domain "
                       f"({gpu.nvlink_gb_s:g} GB/s per direction)")
        else:
            out.append(f"expert all-to-all crosses the inter-node network ({gpu.network_gb_s:g} GB/s per GPU per "
                       f"direction) for {(d.n_gpus - m) / d.n_gpus:.0%} of its traffic: {d.n_gpus} GPUs span "
                       f"{-(-d.n_gpus // m)} NVLink domains of {m} (set --gpus-per-node / --inter-node-gb-s)")
    if ep > 1 or tp > 1:
        out.append(f"compute-communication overlap {'on (two-batch overlap hides ' + format(k.overlap_eff, '.0%') + ' of the shorter of compute and communication)' if d.overlap_comm else 'off (--overlap models two-batch overlap)'}")
    if d.prefill_gpus:
        pool = d.prefill_pool()
        ptp, pep, pdp = pool.resolved()
        out.append(f"disaggregated: {d.prefill_gpus} prefill GPUs (tp{ptp} ep{pep} dp{pdp}) + {d.n_gpus} decode GPUs; "
                   "TTFT = prefill on an idle prefill group + KV transfer; the prefill pool's cost is billed to input tokens")
    elif d.disaggregated:
        out.append("decode-only pool: prefill runs elsewhere and is neither timed nor costed")
    else:
        out.append("aggregated serving: each user's prefill stalls its group's decode once per request "
                   "(--disaggregate P:D for separate pools)")
    if d.speculative_tokens:
        draft = "the model's MTP layer" if a.n_mtp_layers else "an EAGLE-style draft head (the model has no MTP layer)"
        out.append(f"speculative decoding: {d.speculative_tokens} draft token(s) from {draft}, acceptance "
                   f"{d.acceptance:g} per token, drafting costs one layer-time per draft token")
    elif a.n_mtp_layers:
        out.append(f"WARNING: MTP/speculative decoding off although {d.model.display} ships {a.n_mtp_layers} MTP "
                   "layer(s) that vLLM/SGLang recipes turn on: --spec-tokens 1 --acceptance 0.9 models it")
    else:
        out.append("speculative decoding off")
    out.extend(d.model.notes)
    out.append("uniform expert routing (no load imbalance), no queueing, one request's TTFT on an idle group")
    return out


def _fits(d: Deployment, w: Workload) -> bool:
    m = memory(d, w)
    return m.weights + m.kv + m.act <= m.usable


def _layout_for(d: Deployment, n: int) -> Deployment | None:
    """The same model on n GPUs: pure TP if that divides the heads and stays in one NVLink
    domain, else DP-attention + EP over all n (the multi-node layout the big deployments use)."""
    heads = d.model.arch.n_heads
    if d.ep == 1 and n <= d.gpu.gpus_per_node and heads % n == 0:
        return replace(d, n_gpus=n, tp=n, dp=1, ep=1)
    if not d.model.arch.is_moe:
        return None
    return replace(d, n_gpus=n, tp=1, dp=n, ep=n)


def suggest_fit(d: Deployment, w: Workload) -> str:
    """The smallest change that fits: a smaller weight precision at the same GPUs, more GPUs at
    the same precision, or (KV-bound) fewer users / an FP8 cache."""
    mem = memory(d, w)
    options: list[str] = []
    weights_bound = mem.weights + mem.act > mem.usable
    now = weight_bytes(d.precision, d.attn_precision, d.moe_precision)
    for p in ("fp8", "int4", "fp4"):
        if p == "fp4" and not d.gpu.fp4_tflops:
            continue
        cand = replace(d, precision=p, attn_precision=None, moe_precision=None)
        wb = weight_bytes(p)
        if wb.routed_expert >= now.routed_expert and wb.other_linear >= now.other_linear:
            continue
        if _fits(cand, w):
            a, m = SHORTHAND[p]
            options.append(f"--precision {p} (experts {m}, rest {a})")
            break
    if not weights_bound and d.kv_dtype != "fp8" and "fp8" in KV_DTYPES and _fits(replace(d, kv_dtype="fp8"), w):
        options.append("--kv-dtype fp8")
    n = d.n_gpus
    for _ in range(8):
        n *= 2
        cand = _layout_for(d, n)
        if cand is not None and _fits(cand, w):
            lay = f"--tp {cand.tp}" if cand.ep == 1 else f"--tp 1 --dp {n} --ep {n}"
            what = f"--disaggregate {d.prefill_gpus}:{n}" if d.prefill_gpus else f"--gpus {n}"
            options.append(f"{what} {lay}")
            break
    if not weights_bound and mem.max_users > 0:
        options.append(f"--users {mem.max_users} (the most that fit)")
    return "; or ".join(options) if options else "no change within 256x the GPUs fits: use a smaller model"
