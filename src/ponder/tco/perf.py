"""Roofline serving model: memory feasibility, TTFT, decode step time, throughput and $/token.

Every efficiency is a named constant (module globals below, gathered in `Constants`, documented
in docs/tco.md); there are no per-model or per-measurement correction factors. The model is
deliberately first-order: uniform expert routing, no expert-load imbalance, no queueing, prefill
not overlapped with decode in aggregated serving. What it assumes for a given deployment is
spelled out by `assumptions()` and printed with every result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ..core.errors import ConfigError
from .arch import Architecture, ModelEntry
from .hardware import GPU, GiB, check_kv_dtype, split_precision, weight_bytes
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
KERNEL_OVERHEAD_S = 5e-6  # FITTED: launch + ramp + tail per kernel under CUDA graphs (see validation.FITTED)
MEMORY_UTILIZATION = 0.90  # fraction of HBM the engine may use (vLLM gpu_memory_utilization default)
RUNTIME_RESERVE_GIB = 3.0  # CUDA context, NCCL buffers, CUDA graphs
PREFILL_CHUNK = 8192  # chunked-prefill tokens per forward (sizes activations and per-chunk overhead)
DISPATCH_BYTES = 1.0  # EP dispatch sends FP8 activations
COMBINE_BYTES = 2.0  # EP combine returns BF16
ACT_BYTES = 2.0  # BF16 activations for TP all-reduce
# FITTED: two-batch overlap hides this fraction of the shorter of (compute+memory, communication).
# 1.0 would be ideal overlap, 0.0 none. Set from the wide-EP decode rows; validation.py checks it
# by leave-one-out.
OVERLAP_EFF = 0.5


@dataclass(frozen=True)
class Constants:
    """The global knobs in one value, so a fit can vary one without touching module state."""

    mbu: float = MBU
    mfu_decode: float = MFU_DECODE
    mfu_prefill: float = MFU_PREFILL
    attn_eff: float = ATTN_EFF
    comm_eff: float = COMM_EFF
    allreduce_latency_s: float = ALLREDUCE_LATENCY_S
    a2a_latency_s: float = A2A_LATENCY_S
    kernels_per_layer: int = KERNELS_PER_LAYER
    kernel_overhead_s: float = KERNEL_OVERHEAD_S
    overlap_eff: float = OVERLAP_EFF


DEFAULT_CONSTANTS = Constants()


@dataclass(frozen=True)
class Deployment:
    """How the model is laid out: n_gpus = tp·dp (the decode pool when disaggregated). dp groups
    each hold the attention/dense weights sharded tp ways. ep == 1: every dp group is an
    independent replica with its experts tensor-sharded over its tp GPUs. ep > 1: the MoE layers
    span all n_gpus (DP-attention + EP), experts partitioned ep ways and sharded n_gpus/ep ways.

    `precision` is the shorthand (bf16, fp8, int4 = routed experts only, fp4 = NVFP4 routed
    experts + FP8 elsewhere); `attn_precision` / `moe_precision` override either half.
    `disaggregated` with `prefill_gpus = 0` is a decode-only pool whose prefill runs elsewhere
    and is not costed (how the published decode measurements were taken); `prefill_gpus > 0`
    adds a prefill pool of that many GPUs to throughput, TTFT and cost."""

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
    disaggregated: bool = False
    overlap_comm: bool = False  # two-batch overlap hides EP/TP comm behind compute
    attn_precision: str | None = None
    moe_precision: str | None = None
    prefill_gpus: int = 0

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
        attn, moe = self.precisions()
        for p in (attn, moe):
            if p == "fp4":
                self.gpu.require_fp4()
        check_kv_dtype(self.kv_dtype)
        if not 0 <= self.acceptance < 1:
            raise ConfigError(f"acceptance {self.acceptance} must be in [0, 1)")
        if self.speculative_tokens < 0:
            raise ConfigError(f"--spec-tokens must be >= 0 (got {self.speculative_tokens})")
        if self.prefill_gpus < 0 or (self.prefill_gpus and not self.disaggregated):
            raise ConfigError("a prefill pool needs disaggregated serving: use --disaggregate P:D")
        return tp, ep, dp

    def precisions(self) -> tuple[str, str]:
        """(non-expert weights, routed experts)."""
        return split_precision(self.precision, self.attn_precision, self.moe_precision)

    def prefill_pool(self) -> Deployment:
        """The prefill pool's layout: the decode pool's scheme at the prefill pool's size
        (DP-attention + EP over all of it if decode uses EP; else decode's TP where it divides)."""
        p = self.prefill_gpus
        _, ep, _ = self.resolved()
        heads = self.model.arch.n_heads
        if ep > 1:
            tp, dp, pep = 1, p, p
        else:
            tp = self.tp or self.n_gpus
            if p % tp or heads % tp:
                tp = max(t for t in range(1, p + 1) if p % t == 0 and heads % t == 0)
            dp, pep = p // tp, 1
        return replace(self, n_gpus=p, tp=tp, dp=dp, ep=pep, prefill_gpus=0, disaggregated=False,
                       speculative_tokens=0, acceptance=0.0)


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
    """One deployment at one load. Speed and price fields are None when it does not fit:
    a configuration that cannot run has no speed and no price."""

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
    ttft_s: float | None
    step_s: float | None
    tokens_per_step: float
    tpot_s: float | None
    user_tok_s: float | None
    output_tok_s: float | None
    gpu_tok_s: float | None
    usd_per_m_input: float | None
    usd_per_m_output: float | None
    gpu_price_per_hour: float
    distinct_experts_per_layer: float
    attn_precision: str = ""
    moe_precision: str = ""
    prefill_gpus: int = 0
    bound: str = ""  # what limits throughput: "decode", "prefill pool", "kv"...
    suggestion: str = ""  # the smallest change that fits, when it does not
    assumptions: list[str] = field(default_factory=list)
    step_breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def total_gpus(self) -> int:
        return self.n_gpus + self.prefill_gpus

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Bytes:
    """Per-model byte totals at one precision pair (all layers, whole model)."""

    other_linear: float  # attention + dense FFN + shared experts + router, all layers
    expert: float  # one routed expert
    lm_head: float
    embedding: float
    mtp_layer: float


def _model_bytes(a: Architecture, d: Deployment) -> _Bytes:
    wb = weight_bytes(d.precision, d.attn_precision, d.moe_precision)
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


def attention_flops(gpu: GPU, kv_dtype: str) -> float:
    """Attention runs at the KV cache's precision: an FP8 cache feeds FP8 tensor cores (SGLang's
    "FP8 attention"), a BF16 cache BF16 ones."""
    return gpu.matmul_flops("fp8" if kv_dtype.strip().lower() == "fp8" else "bf16")


def tp_link(gpu: GPU, tp: int) -> tuple[str, float]:
    """(name, GB/s per direction) of the link a TP all-reduce crosses."""
    return ("NVLink", gpu.nvlink_gb_s) if tp <= gpu.gpus_per_node else ("inter-node network", gpu.network_gb_s)


def _tp_allreduce_s(tokens: float, a: Architecture, tp: int, gpu: GPU, k: Constants) -> float:
    if tp <= 1:
        return 0.0
    size = tokens * a.hidden * ACT_BYTES
    per = 2 * (tp - 1) / tp * size / (tp_link(gpu, tp)[1] * 1e9 * k.comm_eff) + k.allreduce_latency_s
    return 2 * a.n_layers * per


def _ep_alltoall_s(tokens_per_gpu: float, a: Architecture, ep: int, n: int, gpu: GPU, k: Constants,
                   *, decode: bool) -> float:
    """Dispatch + combine per MoE layer. A token's top-k copies go to ranks spread uniformly
    over the n GPUs. Decode (DeepEP low-latency kernels) sends each copy directly: (m−1)/n of
    them stay inside the sender's m-GPU NVLink domain, (n−m)/n cross the network. Prefill
    (DeepEP normal kernels) sends a token once per remote domain and forwards it over NVLink
    there, so the network carries the expected number of distinct remote domains a token's
    k experts fall in. Both links run at once; the slower one sets the time."""
    if ep <= 1 or not a.is_moe:
        return 0.0
    m = min(n, gpu.gpus_per_node)
    hop = tokens_per_gpu * a.hidden * (DISPATCH_BYTES + COMBINE_BYTES)
    t_nvl = hop * a.top_k * (m - 1) / n / (gpu.nvlink_gb_s * 1e9 * k.comm_eff)
    if decode:
        remote = a.top_k * (n - m) / n
    else:
        domains = n / m
        remote = (domains - 1) * (1 - (1 - 1 / domains) ** a.top_k) if domains > 1 else 0.0
    t_net = hop * remote / (gpu.network_gb_s * 1e9 * k.comm_eff)
    return a.n_moe_layers * (max(t_nvl, t_net) + 2 * k.a2a_latency_s)


def _forward_time(d: Deployment, tokens_per_group: float, context: float, *, decode: bool,
                  kv_users: float, k: Constants) -> tuple[float, dict[str, float], float]:
    """One forward over `tokens_per_group` tokens in each dp group. Returns (seconds, breakdown,
    distinct experts per layer)."""
    a, gpu = d.model.arch, d.gpu
    tp, ep, dp = d.resolved()
    n = d.n_gpus
    attn_p, moe_p = d.precisions()
    mb = _model_bytes(a, d)
    shard = _expert_shard(tp, ep, n)
    t_moe = _moe_tokens(tokens_per_group, dp, ep)
    u = expected_distinct_experts(a.n_experts, a.top_k, t_moe) if a.is_moe else 0.0

    # Per-operation roofline (LLM-Viewer style): each op class is bound by its own bytes or FLOPs,
    # and the classes run one after another, so their times add. Dense and expert GEMMs run at
    # the tensor rate of their own weight precision (mixed precision: e.g. BF16 attention, FP8 experts).
    hbm = gpu.hbm_bytes_s * k.mbu
    mfu = k.mfu_decode if decode else k.mfu_prefill
    routed_active = a.n_moe_layers * a.top_k * a.expert_params()
    nonexpert = a.matmul_params_per_token() - routed_active
    dense_bytes = (mb.other_linear + mb.lm_head) / tp
    dense_flops = 2 * tokens_per_group * nonexpert / tp
    expert_bytes = u * a.n_moe_layers * mb.expert / shard
    expert_flops = 2 * t_moe * routed_active / shard
    kv_bytes = 0.0
    if decode:  # prefill attends to its own fresh K/V; decode streams (its share of) the cache
        kv_bytes = kv_users * a.kv_read_bytes(context, check_kv_dtype(d.kv_dtype)) / a.kv_shard_ways(tp)
    attn_flops = tokens_per_group * a.attention_flops_per_token(context, decode=decode) / tp
    ops = {
        "dense": (dense_bytes / hbm, dense_flops / (gpu.matmul_flops(attn_p) * mfu)),
        "experts": (expert_bytes / hbm, expert_flops / (gpu.matmul_flops(moe_p) * mfu)),
        "attention": (kv_bytes / hbm, attn_flops / (attention_flops(gpu, d.kv_dtype) * k.attn_eff)),
    }
    memory_s = sum(m for m, _ in ops.values())
    compute_s = sum(c for _, c in ops.values())
    roof = sum(max(m, c) for m, c in ops.values())

    comm_s = (_tp_allreduce_s(tokens_per_group, a, tp, gpu, k)
              + _ep_alltoall_s(tokens_per_group / tp, a, ep, n, gpu, k, decode=decode))
    chunks = 1 if decode else math.ceil(tokens_per_group / PREFILL_CHUNK)
    overhead_s = chunks * a.n_layers * k.kernels_per_layer * k.kernel_overhead_s
    if d.overlap_comm:
        body = max(roof, comm_s) + (1 - k.overlap_eff) * min(roof, comm_s)
    else:
        body = roof + comm_s
    total = body + overhead_s
    return total, {"roofline_s": roof, "memory_s": memory_s, "compute_s": compute_s, "comm_s": comm_s,
                   "overhead_s": overhead_s}, u


@dataclass(frozen=True)
class Memory:
    weights: float  # GiB per GPU
    kv: float
    act: float
    usable: float
    max_users: int


def memory(d: Deployment, w: Workload) -> Memory:
    """Per-GPU GiB: weights, KV for the workload, activations, usable; and max users that fit."""
    a = d.model.arch
    tp, ep, dp = d.resolved()
    mb = _model_bytes(a, d)
    shard = _expert_shard(tp, ep, d.n_gpus)
    weights = (mb.other_linear + mb.lm_head + mb.embedding) / tp + a.n_moe_layers * a.n_experts * mb.expert / shard
    if d.speculative_tokens and a.n_mtp_layers:
        weights += mb.mtp_layer / tp
    ffn_max = max(a.dense_ffn, a.top_k * a.expert_ffn)
    act = PREFILL_CHUNK * (8 * a.hidden + 3 * ffn_max / tp) * ACT_BYTES + RUNTIME_RESERVE_GIB * GiB
    per_user_kv = a.kv_cache_bytes(w.prompt + w.output, check_kv_dtype(d.kv_dtype)) / a.kv_shard_ways(tp)
    kv = math.ceil(w.users / dp) * per_user_kv
    usable = d.gpu.memory_bytes * MEMORY_UTILIZATION
    room = usable - weights - act
    max_users = max(0, int(room // per_user_kv)) * dp if room > 0 else 0
    return Memory(weights / GiB, kv / GiB, act / GiB, usable / GiB, max_users)


def _fit_note(mem: Memory, w: Workload) -> tuple[bool, str]:
    fits = mem.weights + mem.kv + mem.act <= mem.usable
    if mem.weights + mem.act > mem.usable:
        return False, (f"weights need {mem.weights:.0f} GiB/GPU (+{mem.act:.0f} activations/runtime) "
                       f"but only {mem.usable:.0f} usable")
    if not fits:
        return False, (f"KV cache for {w.users} users x {w.prompt + w.output} tokens needs {mem.kv:.0f} GiB/GPU, "
                       f"{mem.usable - mem.weights - mem.act:.0f} free: at most {mem.max_users} users fit")
    return True, f"ok: up to {mem.max_users} users fit"


def _prefill_rate(p: Deployment, prompt: int, k: Constants) -> float:
    """Prompt tokens/s a prefill pool sustains: each dp group runs batches of whole prompts
    filling at least one chunk."""
    _, _, dp = p.resolved()
    tokens = prompt * max(1, math.ceil(PREFILL_CHUNK / prompt))
    t, _, _ = _forward_time(p, tokens, prompt / 2, decode=False, kv_users=0, k=k)
    return dp * tokens / t


def _kv_transfer_s(d: Deployment, prompt: int, k: Constants) -> float:
    """Moving one request's KV cache from the prefill to the decode pool (NVLink when both pools
    sit in one NVLink domain, else the network)."""
    gpu = d.gpu
    bw = gpu.nvlink_gb_s if d.n_gpus + d.prefill_gpus <= gpu.gpus_per_node else gpu.network_gb_s
    return d.model.arch.kv_cache_bytes(prompt, check_kv_dtype(d.kv_dtype)) / (bw * 1e9 * k.comm_eff)


def estimate(d: Deployment, w: Workload, *, gpu_price: float | None = None,
             k: Constants = DEFAULT_CONSTANTS) -> Estimate:
    """Predict one deployment serving `w.users` concurrent users with prompt/output lengths."""
    from .assumptions import assumptions, suggest_fit  # the two read the model; no cycle at import

    w.check()
    tp, ep, dp = d.resolved()
    a = d.model.arch
    attn_p, moe_p = d.precisions()
    price = d.gpu.price_per_hour if gpu_price is None else gpu_price
    if price < 0:
        raise ConfigError(f"--gpu-price must be >= 0 (got {price})")

    mem = memory(d, w)
    fits, note = _fit_note(mem, w)
    pool = d.prefill_pool() if d.prefill_gpus else None
    if fits and pool is not None:
        pmem = memory(pool, Workload(w.prompt, 1, 1))
        if pmem.weights + pmem.act + pmem.kv > pmem.usable:
            fits, note = False, (f"the {d.prefill_gpus}-GPU prefill pool cannot hold the weights "
                                 f"({pmem.weights:.0f} GiB/GPU of {pmem.usable:.0f} usable)")
    b = math.ceil(w.users / dp)  # users per dp group
    q = 1 + d.speculative_tokens
    ctx = w.prompt + w.output / 2  # mean context during decode
    step, breakdown, u = _forward_time(d, b * q, ctx, decode=True, kv_users=b, k=k)
    if d.speculative_tokens:
        # drafting: one MTP layer (or an EAGLE head of ~one layer's cost) per draft token
        step += d.speculative_tokens * (step / max(1, a.n_layers))
        tps = (1 - d.acceptance ** (d.speculative_tokens + 1)) / (1 - d.acceptance)
    else:
        tps = 1.0
    est = Estimate(
        model=d.model.name, gpu=d.gpu.name, n_gpus=d.n_gpus, tp=tp, ep=ep, dp=dp, precision=d.precision,
        prompt=w.prompt, output=w.output, users=w.users, fits=fits, fit_note=note,
        weights_gib_per_gpu=mem.weights, kv_gib_per_gpu=mem.kv, activations_gib_per_gpu=mem.act,
        usable_gib_per_gpu=mem.usable, max_users=mem.max_users, ttft_s=None, step_s=None, tokens_per_step=tps,
        tpot_s=None, user_tok_s=None, output_tok_s=None, gpu_tok_s=None, usd_per_m_input=None,
        usd_per_m_output=None, gpu_price_per_hour=price, distinct_experts_per_layer=u,
        attn_precision=attn_p, moe_precision=moe_p, prefill_gpus=d.prefill_gpus,
        assumptions=assumptions(d, k),
    )
    if not fits:
        est.bound = "memory"
        est.suggestion = suggest_fit(d, w)
        return est

    usd_per_gpu_s = price / 3600
    decode_time = w.output / tps * step
    if pool is not None:  # disaggregated with a costed prefill pool
        prefill_rate = _prefill_rate(pool, w.prompt, k)
        ttft, _, _ = _forward_time(pool, w.prompt, w.prompt / 2, decode=False, kv_users=0, k=k)
        ttft += _kv_transfer_s(d, w.prompt, k)
        decode_rate = w.users * w.output / decode_time
        output_tok_s = min(decode_rate, prefill_rate * w.output / w.prompt)
        est.bound = "decode" if decode_rate <= prefill_rate * w.output / w.prompt else "prefill pool"
        user_tok_s = w.output / decode_time
        input_tok_s = output_tok_s * w.prompt / w.output
        usd_in = d.prefill_gpus * usd_per_gpu_s / input_tok_s * 1e6
        usd_out = d.n_gpus * usd_per_gpu_s / output_tok_s * 1e6
    else:
        ttft, _, _ = _forward_time(d, w.prompt, w.prompt / 2, decode=False, kv_users=0, k=k)
        group_gpus = d.n_gpus / dp
        if d.disaggregated:  # decode-only pool, prefill elsewhere and not costed
            cycle, prefill_share = decode_time, 0.0
        else:  # every user's prefill interrupts the group once per cycle
            cycle, prefill_share = decode_time + b * ttft, b * ttft
        output_tok_s = w.users * w.output / cycle
        user_tok_s = w.output / (cycle - (0.0 if d.disaggregated else ttft))
        usd_in = group_gpus * usd_per_gpu_s * ttft / w.prompt * 1e6
        usd_out = group_gpus * usd_per_gpu_s * (cycle - prefill_share) / (b * w.output) * 1e6
        est.bound = "decode"
    est.ttft_s, est.step_s, est.tpot_s = ttft, step, step / tps
    est.user_tok_s, est.output_tok_s = user_tok_s, output_tok_s
    est.gpu_tok_s = output_tok_s / (d.n_gpus + d.prefill_gpus)
    est.usd_per_m_input, est.usd_per_m_output = usd_in, usd_out
    est.step_breakdown = {f"{key[:-2]}_ms": round(v * 1e3, 4) for key, v in breakdown.items()}
    return est


def sweep(d: Deployment, prompt: int, output: int, users: list[int], *,
          gpu_price: float | None = None) -> list[Estimate]:
    return [estimate(d, Workload(prompt, output, u), gpu_price=gpu_price) for u in users]


DEFAULT_SWEEP = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def pareto(points: list[Estimate]) -> list[Estimate]:
    """Latency-throughput frontier among points that fit: no other point is at least as fast per
    user and strictly higher in throughput per GPU (or vice versa)."""
    pts = sorted((p for p in points if p.fits), key=lambda p: (-(p.user_tok_s or 0), -(p.gpu_tok_s or 0)))
    front: list[Estimate] = []
    best = -1.0
    for p in pts:
        if (p.gpu_tok_s or 0) > best:
            front.append(p)
            best = p.gpu_tok_s or 0
    return front
