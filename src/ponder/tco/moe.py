"""Torch-free MoE routing math: expected distinct experts and the roofline of one MoE layer.

Kept apart from the torch benchmark (`benchmarks/moe_routing.py`) so the prediction side is
unit-tested in CI, where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass


def expected_distinct_experts(n_experts: int, top_k: int, tokens: float) -> float:
    """E·(1 − (1 − k/E)^B): expected number of experts that at least one of B tokens routes to,
    for uniform top-k routing without replacement (P(one token misses an expert) = (E−k)/E).
    B counts tokens, not requests; B ≤ 0 still loads the k experts of one token, as a step
    always runs at least one token."""
    if n_experts <= 0 or top_k <= 0:
        return 0.0
    if top_k >= n_experts:
        return float(n_experts)
    b = max(1.0, float(tokens))
    return n_experts * (1.0 - (1.0 - top_k / n_experts) ** b)


@dataclass(frozen=True)
class MoELayerShape:
    """One MoE FFN block: router + routed SwiGLU experts + shared SwiGLU expert(s)."""

    name: str
    hidden: int
    n_experts: int
    top_k: int
    expert_ffn: int
    n_shared: int = 1
    shared_ffn: int | None = None

    @property
    def expert_params(self) -> int:
        return 3 * self.hidden * self.expert_ffn

    @property
    def shared_params(self) -> int:
        return self.n_shared * 3 * self.hidden * (self.shared_ffn or self.expert_ffn)

    @property
    def router_params(self) -> int:
        return self.hidden * self.n_experts

    @property
    def active_params(self) -> int:
        return self.top_k * self.expert_params + self.shared_params + self.router_params

    @property
    def total_params(self) -> int:
        return self.n_experts * self.expert_params + self.shared_params + self.router_params


def equal_active_shapes(hidden: int, active_ffn: int, *, top_k: int = 8) -> list[MoELayerShape]:
    """Shapes with the same routed active width per token (top_k·expert_ffn = active_ffn) and the
    same shared expert, differing in how the routed weights are cut:

    - kimi-like: 384 experts, top-8 (each expert 1/384 of the layer's routed weights);
    - glm-like: 160 experts, top-8 (fewer experts, each a larger 1/160 share). At equal k,
      equal active parameters forces equal expert width, so the total shrinks 160/384;
    - coarse: 80 experts of twice the width, top-4: literally fewer, larger experts at equal
      active and the same total as glm-like, to separate "fewer experts" from "larger experts".
    """
    ffn = max(1, active_ffn // top_k)
    return [
        MoELayerShape("kimi-like E384 k8", hidden, 384, top_k, ffn, shared_ffn=ffn),
        MoELayerShape("glm-like E160 k8", hidden, 160, top_k, ffn, shared_ffn=ffn),
        MoELayerShape("coarse E80 k4", hidden, 80, max(1, top_k // 2), 2 * ffn, shared_ffn=ffn),
    ]


@dataclass(frozen=True)
class LayerPrediction:
    tokens: int
    distinct_experts: float
    bytes_moved: float
    flops: float
    memory_s: float
    compute_s: float
    predicted_s: float


def predict_moe_layer(shape: MoELayerShape, tokens: int, *, bytes_per_param: float,
                      mem_bw_bytes_s: float, flops_s: float) -> LayerPrediction:
    """Roofline time of one MoE layer forward on `tokens` tokens: weight bytes of the distinct
    experts actually touched + shared expert + router, plus activations in/out, against
    measured bandwidth; FLOPs 2·tokens·active params against measured matmul throughput."""
    u = expected_distinct_experts(shape.n_experts, shape.top_k, tokens)
    weight_bytes = (u * shape.expert_params + shape.shared_params + shape.router_params) * bytes_per_param
    act_bytes = tokens * shape.hidden * bytes_per_param * (2 + 2 * shape.top_k)
    flops = 2.0 * tokens * shape.active_params
    mem_s = (weight_bytes + act_bytes) / mem_bw_bytes_s
    comp_s = flops / flops_s
    return LayerPrediction(tokens, u, weight_bytes + act_bytes, flops, mem_s, comp_s, max(mem_s, comp_s))
