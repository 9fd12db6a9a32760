"""Measured routing overhead of one real MoE layer on this CPU, next to the roofline prediction.

A DeepSeek-V3/Kimi/GLM-style MoE block (sigmoid router whose correction bias is used for
expert *selection* only, renormalised top-k weights times a routed scaling factor, one shared
SwiGLU expert, SwiGLU routed experts) at scaled-down widths. Shapes compared at equal active
parameters per token:

  kimi-like  384 experts, top-8        (many small experts)
  glm-like   160 experts, top-8        (fewer experts, same width: equal k and active)
  coarse      80 experts x2 width, top-4 (fewer, larger experts; same total as glm-like)

The prediction comes from `ponder.tco.moe.predict_moe_layer` (torch-free, unit-tested) fed with
this machine's *measured* memory bandwidth (large tensor copy) and matmul throughput.

Run:  .venv/bin/python benchmarks/moe_routing.py            (needs `pip install 'ponder[moe]'`)
      .venv/bin/python benchmarks/moe_routing.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the benchmark is optional
    sys.exit("benchmarks/moe_routing.py needs PyTorch: pip install 'ponder[moe]' (or torch>=2.3)")

from ponder.tco.moe import MoELayerShape, equal_active_shapes, expected_distinct_experts, predict_moe_layer


class MoELayer(torch.nn.Module):
    """One MoE FFN block with noaux_tc-style routing."""

    def __init__(self, shape: MoELayerShape, *, routed_scaling: float = 2.5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        h, e, f = shape.hidden, shape.n_experts, shape.expert_ffn
        fs = shape.shared_ffn or f
        self.shape, self.k, self.scale = shape, shape.top_k, routed_scaling
        std = h**-0.5
        self.router = torch.nn.Parameter(torch.randn(e, h, generator=g) * std)
        # correction bias: shifts which experts are *selected*, never the combine weights
        self.bias = torch.nn.Parameter(torch.randn(e, generator=g) * 0.01)
        self.w_gate = torch.nn.Parameter(torch.randn(e, h, f, generator=g) * std)
        self.w_up = torch.nn.Parameter(torch.randn(e, h, f, generator=g) * std)
        self.w_down = torch.nn.Parameter(torch.randn(e, f, h, generator=g) * f**-0.5)
        self.s_gate = torch.nn.Parameter(torch.randn(h, fs, generator=g) * std)
        self.s_up = torch.nn.Parameter(torch.randn(h, fs, generator=g) * std)
        self.s_down = torch.nn.Parameter(torch.randn(fs, h, generator=g) * fs**-0.5)
        self.last_distinct = 0

    @torch.no_grad()
    def route(self, x: torch.Tensor) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Router + top-k + grouping of (token, expert) pairs by expert: the routing overhead."""
        scores = torch.sigmoid(x.float() @ self.router.t())  # [T, E]
        idx = torch.topk(scores + self.bias, self.k, dim=-1).indices  # bias: selection only
        w = scores.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * self.scale  # renormalised unbiased scores x scaling
        flat_idx = idx.reshape(-1)
        order = torch.argsort(flat_idx, stable=True)
        counts = torch.bincount(flat_idx, minlength=self.shape.n_experts).tolist()
        return counts, order // self.k, w.reshape(-1)[order]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts, token_of, weight_of = self.route(x)
        out = (F.silu(x @ self.s_gate) * (x @ self.s_up)) @ self.s_down  # shared expert
        start, distinct = 0, 0
        for e, c in enumerate(counts):  # grouped GEMM: one matmul chain per touched expert
            if c == 0:
                continue
            distinct += 1
            t = token_of[start:start + c]
            xe = x.index_select(0, t)
            ye = (F.silu(xe @ self.w_gate[e]) * (xe @ self.w_up[e])) @ self.w_down[e]
            out.index_add_(0, t, ye * weight_of[start:start + c, None])
            start += c
        self.last_distinct = distinct
        return out


def measure_bandwidth(mib: int = 512, reps: int = 5) -> float:
    """Bytes/s of a large out-of-cache tensor copy (read + write counted)."""
    n = mib * 1024 * 1024 // 4
    src, dst = torch.ones(n), torch.empty(n)
    dst.copy_(src)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - t0)
    return 2 * n * 4 / min(times)


def measure_matmul_flops(n: int = 1024, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times)


def time_layer(layer: MoELayer, tokens: int, reps: int) -> tuple[float, float, float]:
    """Median seconds of the whole layer and of routing alone, and mean experts touched."""
    x = torch.randn(tokens, layer.shape.hidden)
    layer(x)  # warm-up
    times, route_times, distinct = [], [], []
    for _ in range(reps):
        x = torch.randn(tokens, layer.shape.hidden)  # fresh tokens: fresh routing each rep
        t0 = time.perf_counter()
        layer(x)
        times.append(time.perf_counter() - t0)
        distinct.append(layer.last_distinct)
        t0 = time.perf_counter()
        layer.route(x)
        route_times.append(time.perf_counter() - t0)
    return statistics.median(times), statistics.median(route_times), statistics.mean(distinct)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=1024, help="model width (real: 7168 Kimi, 5120 GLM)")
    ap.add_argument("--active-ffn", type=int, default=1024, help="routed active width top_k x expert_ffn")
    ap.add_argument("--batches", default="1,4,16,64,256", help="tokens per forward")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared small machine OpenMP spin-waits under "
                         "contention inflate multi-threaded timings by 10-100x; 0 = torch default)")
    ap.add_argument("--quick", action="store_true", help="smaller widths and fewer reps (CI smoke run)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.hidden, a.active_ffn, a.reps, a.batches = 512, 512, 3, "1,16,128"
    if a.threads:
        torch.set_num_threads(a.threads)
    batches = [int(b) for b in a.batches.split(",")]

    bw = measure_bandwidth()
    flops = measure_matmul_flops()
    rows = []
    for shape in equal_active_shapes(a.hidden, a.active_ffn):
        layer = MoELayer(shape)
        for t in batches:
            measured, routing, distinct = time_layer(layer, t, a.reps)
            pred = predict_moe_layer(shape, t, bytes_per_param=4.0, mem_bw_bytes_s=bw, flops_s=flops)
            rows.append({
                "shape": shape.name, "total_params_M": shape.total_params / 1e6,
                "active_params_M": shape.active_params / 1e6, "tokens": t,
                "experts_touched": distinct,
                "experts_expected": expected_distinct_experts(shape.n_experts, shape.top_k, t),
                "measured_ms": measured * 1e3, "routing_ms": routing * 1e3,
                "predicted_ms": pred.predicted_s * 1e3,
                "bound": "memory" if pred.memory_s >= pred.compute_s else "compute",
                "ratio": measured / pred.predicted_s,
                "per_token_us": measured / t * 1e6,
            })
    meta = {"threads": torch.get_num_threads(), "torch": torch.__version__,
            "copy_bandwidth_GB_s": bw / 1e9, "matmul_GFLOP_s": flops / 1e9,
            "hidden": a.hidden, "active_ffn": a.active_ffn}
    if a.json:
        print(json.dumps({"machine": meta, "rows": rows}, indent=2))
        return 0
    print(f"torch {meta['torch']}, {meta['threads']} threads; measured copy bandwidth {bw / 1e9:.1f} GB/s, "
          f"fp32 matmul {flops / 1e9:.0f} GFLOP/s; hidden {a.hidden}, routed active width {a.active_ffn}")
    hdr = (f"{'shape':<18}{'total M':>9}{'active M':>9}{'tokens':>7}{'touched':>9}{'E[U]':>8}"
           f"{'meas ms':>9}{'route ms':>9}{'pred ms':>9}{'meas/pred':>10}{'us/token':>10}  bound")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['shape']:<18}{r['total_params_M']:>9.1f}{r['active_params_M']:>9.1f}{r['tokens']:>7}"
              f"{r['experts_touched']:>9.1f}{r['experts_expected']:>8.1f}{r['measured_ms']:>9.2f}{r['routing_ms']:>9.2f}"
              f"{r['predicted_ms']:>9.2f}{r['ratio']:>10.2f}{r['per_token_us']:>10.1f}  {r['bound']}")
    print()
    ratios = [r["ratio"] for r in rows]
    print(f"median measured/predicted {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}); "
          "1/ratio is the fraction of copy bandwidth / matmul peak that per-expert small GEMMs reach")
    for name in dict.fromkeys(r["shape"] for r in rows):
        rs = [r for r in rows if r["shape"] == name]
        share = statistics.median(r["routing_ms"] / r["measured_ms"] for r in rs)
        print(f"  {name:<18} median meas/pred {statistics.median(r['ratio'] for r in rs):.2f}; "
              f"routing (router+top-k+grouping) = {share:.0%} of layer time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
