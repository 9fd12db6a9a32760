"""Roofline serving model: memory feasibility, TTFT, decode step time, throughput and $/token.

Every efficiency is a named module constant below (documented in docs/tco.md); there are no
per-model or per-measurement correction factors. The model is deliberately first-order:
uniform expert routing, no expert-load imbalance, no queueing, prefill not overlapped with
decode in aggregated serving.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..core.errors import ConfigError
from .arch import Architecture, ModelEntry
from .hardware import GPU, GiB, check_kv_dtype, check_precision, weight_bytes
from .moe import expected_distinct_experts

# ---- efficiencies and fixed costs (global, named, documented) -------------------------------
MBU = 0.80  # achieved / peak HBM bandwidth for weight and KV streaming (aiconfigurator HBM factor 0.8)
MFU_DECODE = 0.60  # achieved / peak tensor FLOP/s for decode GEMMs when compute-bound
MFU_PREFILL = 0.45  # prefill GEMMs incl. MoE grouped GEMM (DeepSeek prod. prefill ~ 35-45% of FP8 peak)
ATTN_EFF = 0.60  # attention kernels vs BF16 peak (FlashMLA 660 of 989 TFLOP/s on H800 = 0.67)
COMM_EFF = 0.75  # achieved / per-direction link bandwidth (DeepEP 153-158 of 200 GB/s NVLink on H800)
ALLREDUCE_LATENCY_S = 10e-6  # fixed cost of one small-message TP all-reduce inside a node
A2A_LATENCY_S = 30e-6  # fixed cost of one EP dispatch or combine (DeepEP low-latency scale)
KERNELS_PER_LAYER = 20  # dependent kernels in one decoder layer (norms, proj, rope, attn, router, experts...)
KERNEL_OVERHEAD_S = 5e-6  # launch + ramp + tail per kernel under CUDA graphs, independent of size
MEMORY_UTILIZATION = 0.90  # fraction of HBM the engine may use (vLLM gpu_memory_utilization default)
RUNTIME_RESERVE_GIB = 3.0  # CUDA context, NCCL buffers, CUDA graphs
PREFILL_CHUNK = 8192  # chunked-prefill tokens per forward (sizes activations and per-chunk overhead)
DISPATCH_BYTES = 1.0  # EP dispatch sends FP8 activations
COMBINE_BYTES = 2.0  # EP combine returns BF16
ACT_BYTES = 2.0  # BF16 activations for TP all-reduce
# Two-batch overlap hides this fraction of the shorter of (compute+memory, communication).
# 1.0 would be ideal overlap, 0.0 none. Set from the three wide-EP decode rows of the
# validation table (which therefore do not independently test this one constant).
OVERLAP_EFF = 0.5


@dataclass(frozen=True)
class Deployment:
    """How the model is laid out: n_gpus = tp·dp. dp groups each hold the attention/dense
    weights sharded tp ways. ep == 1: every dp group is an independent replica with its experts
    tensor-sharded over its tp GPUs. ep > 1: the MoE layers span all n_gpus (DP-attention + EP),
    experts partitioned ep ways and tensor-sharded n_gpus/ep ways."""

    model: ModelEntry
    gpu: GPU
    n_gpus: int = 8
    tp: int | None = None
    ep: int = 1
    dp: int | None = None
    precision: str = "fp8"
    kv_dtype: str = "bf16"
    speculative_tokens: int = 0  # MTP/EAGLE draft tokens per step (0 = off)
    acceptance: float = 0.0  # per-draft-token acceptance rate
    disaggregated: bool = False  # decode-only GPUs (prefill runs elsewhere)
    overlap_comm: bool = False  # two-batch overlap hides EP/TP comm behind compute

    def resolved(self) -> tuple[int, int, int]:
        n = self.n_gpus
        if n < 1:
            raise ConfigError(f"--gpus must be at least 1 (got {n})")
        tp, dp = self.tp, self.dp
        if tp is None and dp is None:
            tp, dp = n, 1
        elif tp is None:
            assert dp is not None
            tp = n // dp
        elif dp is None:
            dp = n // tp
        assert tp is not None and dp is not None
        if tp < 1 or dp < 1 or tp * dp != n:
            raise ConfigError(f"layout tp={tp} x dp={dp} must multiply to --gpus {n}; e.g. --tp {n} --dp 1")
        ep = self.ep
        if ep < 1 or n % ep:
            raise ConfigError(f"--ep {ep} must divide --gpus {n} (1 = no expert parallelism)")
        a = self.model.arch
        if a.n_heads % tp:
            raise ConfigError(f"--tp {tp} must divide the {a.n_heads} attention heads of {self.model.name}")
        check_precision(self.precision)
        check_kv_dtype(self.kv_dtype)
        if not 0 <= self.acceptance < 1:
            raise ConfigError(f"acceptance {self.acceptance} must be in [0, 1)")
        return tp, ep, dp


@dataclass(frozen=True)
class Workload:
    prompt: int
    output: int
    users: int

    def check(self) -> None:
        for k, v in (("prompt", self.prompt), ("output", self.output), ("users", self.users)):
            if v < 1:
                raise ConfigError(f"{k} must be at least 1 (got {v})")


@dataclass
class Estimate:
    model: str
    gpu: str
    n_gpus: int
    tp: int
    ep: int
    dp: int
    precision: str
    prompt: int
    output: int
    users: int
    fits: bool
    fit_note: str
    weights_gib_per_gpu: float
    kv_gib_per_gpu: float
    activations_gib_per_gpu: float
    usable_gib_per_gpu: float
    max_users: int
    ttft_s: float
    step_s: float
    tokens_per_step: float
    tpot_s: float
    user_tok_s: float
    output_tok_s: float
    gpu_tok_s: float
    usd_per_m_input: float
    usd_per_m_output: float
    gpu_price_per_hour: float
    distinct_experts_per_layer: float
    step_breakdown: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Bytes:
    """Per-model byte totals at one precision (all layers, whole model)."""

    other_linear: float  # attention + dense FFN + shared experts + router, all layers
    expert: float  # one routed expert
    lm_head: float
    embedding: float
    mtp_layer: float


def _model_bytes(a: Architecture, precision: str) -> _Bytes:
    wb = weight_bytes(precision)
    b = a.param_breakdown()
    other = b["attention"] + b["dense_ffn"] + b["shared_experts"] + b["router"]
    mtp_layer = 0.0
    if a.n_mtp_layers:
        mtp_routed = a.n_experts * a.expert_params() if a.is_moe else 0
        mtp_layer = (b["mtp"] / a.n_mtp_layers - mtp_routed) * wb.other_linear + mtp_routed * wb.routed_expert
    return _Bytes(
        other_linear=other * wb.other_linear,
        expert=a.expert_params() * wb.routed_expert,
        lm_head=b["lm_head"] * wb.embedding,
        embedding=b["embedding"] * wb.embedding,
        mtp_layer=mtp_layer,
    )


def _expert_shard(tp: int, ep: int, n: int) -> int:
    return tp if ep == 1 else n


def _moe_tokens(tokens_per_group: float, dp: int, ep: int) -> float:
    return tokens_per_group * (dp if ep > 1 else 1)


def _tp_allreduce_s(tokens: float, a: Architecture, tp: int, gpu: GPU) -> float:
    if tp <= 1:
        return 0.0
    size = tokens * a.hidden * ACT_BYTES
    per = 2 * (tp - 1) / tp * size / (gpu.nvlink_gb_s * 1e9 * COMM_EFF) + ALLREDUCE_LATENCY_S
    return 2 * a.n_layers * per


def _ep_alltoall_s(tokens_per_gpu: float, a: Architecture, ep: int, n: int, gpu: GPU) -> float:
    if ep <= 1 or not a.is_moe:
        return 0.0
    bw = (gpu.nvlink_gb_s if n <= gpu.gpus_per_node else gpu.network_gb_s) * 1e9 * COMM_EFF
    leave = (n - 1) / n
    size = tokens_per_gpu * a.top_k * a.hidden * (DISPATCH_BYTES + COMBINE_BYTES) * leave
    return a.n_moe_layers * (size / bw + 2 * A2A_LATENCY_S)


def _forward_time(d: Deployment, tokens_per_group: float, context: float, *, decode: bool,
                  kv_users: float) -> tuple[float, dict[str, float], float]:
    """One forward over `tokens_per_group` tokens in each dp group. Returns (seconds, breakdown,
    distinct experts per layer)."""
    a, gpu = d.model.arch, d.gpu
    tp, ep, dp = d.resolved()
    n = d.n_gpus
    mb = _model_bytes(a, d.precision)
    shard = _expert_shard(tp, ep, n)
    t_moe = _moe_tokens(tokens_per_group, dp, ep)
    u = expected_distinct_experts(a.n_experts, a.top_k, t_moe) if a.is_moe else 0.0

    # Per-operation roofline (LLM-Viewer style): each op class is bound by its own bytes or FLOPs,
    # and the classes run one after another, so their times add.
    hbm = gpu.hbm_bytes_s * MBU
    mfu = MFU_DECODE if decode else MFU_PREFILL
    peak = gpu.matmul_flops(d.precision) * mfu
    routed_active = a.n_moe_layers * a.top_k * a.expert_params()
    nonexpert = a.matmul_params_per_token() - routed_active
    dense_bytes = (mb.other_linear + mb.lm_head) / tp
    dense_flops = 2 * tokens_per_group * nonexpert / tp
    expert_bytes = u * a.n_moe_layers * mb.expert / shard
    expert_flops = 2 * t_moe * routed_active / shard
    kv_bytes = 0.0
    if decode:  # prefill attends to its own fresh K/V; decode streams the cache
        kv_bytes = kv_users * context * a.kv_bytes_per_token(check_kv_dtype(d.kv_dtype)) / a.kv_shard_ways(tp)
    attn_flops = tokens_per_group * a.attention_flops_per_token(context, decode=decode) / tp
    ops = {
        "dense": (dense_bytes / hbm, dense_flops / peak),
        "experts": (expert_bytes / hbm, expert_flops / peak),
        "attention": (kv_bytes / hbm, attn_flops / (gpu.bf16_tflops * 1e12 * ATTN_EFF)),
    }
    memory_s = sum(m for m, _ in ops.values())
    compute_s = sum(c for _, c in ops.values())
    roof = sum(max(m, c) for m, c in ops.values())

    comm_s = _tp_allreduce_s(tokens_per_group, a, tp, gpu) + _ep_alltoall_s(tokens_per_group / tp, a, ep, n, gpu)
    chunks = 1 if decode else math.ceil(tokens_per_group / PREFILL_CHUNK)
    overhead_s = chunks * a.n_layers * KERNELS_PER_LAYER * KERNEL_OVERHEAD_S
    if d.overlap_comm:
        body = max(roof, comm_s) + (1 - OVERLAP_EFF) * min(roof, comm_s)
    else:
        body = roof + comm_s
    total = body + overhead_s
    return total, {"roofline_s": roof, "memory_s": memory_s, "compute_s": compute_s, "comm_s": comm_s,
                   "overhead_s": overhead_s}, u


def _memory(d: Deployment, w: Workload) -> tuple[float, float, float, float, int]:
    """Per-GPU GiB: weights, KV for the workload, activations, usable; and max users that fit."""
    a = d.model.arch
    tp, ep, dp = d.resolved()
    mb = _model_bytes(a, d.precision)
    shard = _expert_shard(tp, ep, d.n_gpus)
    weights = (mb.other_linear + mb.lm_head + mb.embedding) / tp + a.n_moe_layers * a.n_experts * mb.expert / shard
    if d.speculative_tokens and a.n_mtp_layers:
        weights += mb.mtp_layer / tp
    ffn_max = max(a.dense_ffn, a.top_k * a.expert_ffn)
    act = PREFILL_CHUNK * (8 * a.hidden + 3 * ffn_max / tp) * ACT_BYTES + RUNTIME_RESERVE_GIB * GiB
    per_user_kv = (w.prompt + w.output) * a.kv_bytes_per_token(check_kv_dtype(d.kv_dtype)) / a.kv_shard_ways(tp)
    users_per_group = math.ceil(w.users / dp)
    kv = users_per_group * per_user_kv
    usable = d.gpu.memory_bytes * MEMORY_UTILIZATION
    room = usable - weights - act
    max_users = max(0, int(room // per_user_kv)) * dp if room > 0 else 0
    return weights / GiB, kv / GiB, act / GiB, usable / GiB, max_users


def estimate(d: Deployment, w: Workload, *, gpu_price: float | None = None) -> Estimate:
    """Predict one deployment serving `w.users` concurrent users with prompt/output lengths."""
    w.check()
    tp, ep, dp = d.resolved()
    a = d.model.arch
    price = d.gpu.price_per_hour if gpu_price is None else gpu_price
    if price < 0:
        raise ConfigError(f"--gpu-price must be >= 0 (got {price})")

    weights, kv, act, usable, max_users = _memory(d, w)
    fits = weights + kv + act <= usable
    if weights + act > usable:
        note = (f"weights need {weights:.0f} GiB/GPU (+{act:.0f} activations/runtime) but only {usable:.0f} usable: "
                "add GPUs, use a smaller precision (fp8/int4) or expert parallelism")
    elif not fits:
        note = (f"KV cache for {w.users} users x {w.prompt + w.output} tokens needs {kv:.0f} GiB/GPU, "
                f"{usable - weights - act:.0f} free: at most {max_users} users fit")
    else:
        note = f"ok: up to {max_users} users fit"

    b = math.ceil(w.users / dp)  # users per dp group
    q = 1 + d.speculative_tokens
    ctx = w.prompt + w.output / 2  # mean context during decode
    step, breakdown, u = _forward_time(d, b * q, ctx, decode=True, kv_users=b)
    if d.speculative_tokens:
        # drafting: one MTP layer (or draft model of ~one layer's cost) per draft token
        step += d.speculative_tokens * (step / max(1, a.n_layers))
        tps = (1 - d.acceptance ** (d.speculative_tokens + 1)) / (1 - d.acceptance)
    else:
        tps = 1.0
    ttft, _, _ = _forward_time(d, w.prompt, w.prompt / 2, decode=False, kv_users=0)

    decode_time = w.output / tps * step
    group_gpus = d.n_gpus / dp
    if d.disaggregated:
        cycle = decode_time
        prefill_share = 0.0
    else:
        cycle = decode_time + b * ttft  # every user's prefill interrupts the group once per cycle
        prefill_share = b * ttft
    output_tok_s = w.users * w.output / cycle
    user_tok_s = w.output / (cycle - (0.0 if d.disaggregated else ttft))
    usd_s = group_gpus * price / 3600
    usd_in = usd_s * ttft / w.prompt * 1e6
    usd_out = usd_s * (cycle - prefill_share) / (b * w.output) * 1e6
    breakdown = {k: round(v * 1e3, 4) for k, v in breakdown.items()}  # ms
    return Estimate(
        model=d.model.name, gpu=d.gpu.name, n_gpus=d.n_gpus, tp=tp, ep=ep, dp=dp, precision=d.precision,
        prompt=w.prompt, output=w.output, users=w.users, fits=fits, fit_note=note,
        weights_gib_per_gpu=weights, kv_gib_per_gpu=kv, activations_gib_per_gpu=act, usable_gib_per_gpu=usable,
        max_users=max_users, ttft_s=ttft, step_s=step, tokens_per_step=tps, tpot_s=step / tps,
        user_tok_s=user_tok_s, output_tok_s=output_tok_s, gpu_tok_s=output_tok_s / d.n_gpus,
        usd_per_m_input=usd_in, usd_per_m_output=usd_out, gpu_price_per_hour=price,
        distinct_experts_per_layer=u, step_breakdown={f"{k[:-2]}_ms": v for k, v in breakdown.items()},
    )


def sweep(d: Deployment, prompt: int, output: int, users: list[int], *,
          gpu_price: float | None = None) -> list[Estimate]:
    return [estimate(d, Workload(prompt, output, u), gpu_price=gpu_price) for u in users]


DEFAULT_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def pareto(points: list[Estimate]) -> list[Estimate]:
    """Latency-throughput frontier among points that fit: no other point is at least as fast per
    user and strictly higher in throughput per GPU (or vice versa)."""
    pts = sorted((p for p in points if p.fits), key=lambda p: (-p.user_tok_s, -p.gpu_tok_s))
    front: list[Estimate] = []
    best = -1.0
    for p in pts:
        if p.gpu_tok_s > best:
            front.append(p)
            best = p.gpu_tok_s
    return front
