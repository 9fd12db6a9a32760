"""GPU specs, prices and weight precisions (data in `data/gpus.json`, every figure overridable)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import Literal

from ..core.errors import ConfigError

GiB = 1024**3

Precision = Literal["bf16", "fp8", "int4"]
PRECISIONS: tuple[str, ...] = ("bf16", "fp8", "int4")
KV_DTYPES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}

# INT4 as in Kimi K2-Thinking/K2.5's QAT release: symmetric int4, group size 32, one BF16
# scale per group -> 4 + 16/32 bits = 0.5625 bytes per weight. Only routed experts are INT4.
INT4_BYTES = 0.5 + 2.0 / 32
# Block FP8 (128x128 blocks, one FP32 scale each) adds 4/16384 bytes per weight.
FP8_BYTES = 1.0 + 4.0 / (128 * 128)


@dataclass(frozen=True)
class GPU:
    name: str
    display: str
    memory_gib: float
    hbm_tb_s: float
    bf16_tflops: float
    fp8_tflops: float
    fp4_tflops: float | None
    nvlink_gb_s: float  # per direction
    network_gb_s: float  # scale-out per GPU (ConnectX-7 400 Gb/s ~ 50 GB/s)
    price_per_hour: float
    price_source: str = ""
    gpus_per_node: int = 8

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GiB

    @property
    def hbm_bytes_s(self) -> float:
        return self.hbm_tb_s * 1e12

    def matmul_flops(self, precision: str) -> float:
        """Peak dense FLOP/s for weight matmuls: FP8 weights run FP8 tensor cores; INT4 (W4A16)
        dequantises to BF16, so it gets BF16 peak, not an INT4 rate."""
        return (self.fp8_tflops if precision == "fp8" else self.bf16_tflops) * 1e12

    def with_overrides(self, **kw: float | None) -> GPU:
        clean = {k: v for k, v in kw.items() if v is not None}
        for k, v in clean.items():
            if not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"GPU override {k}={v!r} must be a positive number")
        return replace(self, **clean)  # type: ignore[arg-type]


def builtin_gpus() -> dict[str, GPU]:
    raw = json.loads((resources.files("ponder.tco") / "data" / "gpus.json").read_text())
    out: dict[str, GPU] = {}
    for g in raw["gpus"]:
        fields = {k: v for k, v in g.items() if k != "aliases"}
        gpu = GPU(**fields)
        out[gpu.name] = gpu
        for a in g.get("aliases", []):
            out[a] = gpu
    return out


def gpu_names() -> list[str]:
    return sorted({g.name for g in builtin_gpus().values()})


def get_gpu(name: str) -> GPU:
    gpus = builtin_gpus()
    key = name.strip().lower().replace(" ", "-")
    if key not in gpus:
        raise ConfigError(f"unknown GPU {name!r}; choose one of: {', '.join(gpu_names())}")
    return gpus[key]


def check_precision(p: str) -> str:
    key = p.strip().lower()
    if key not in PRECISIONS:
        raise ConfigError(f"unknown precision {p!r}; choose one of: {', '.join(PRECISIONS)}")
    return key


def check_kv_dtype(p: str) -> float:
    key = p.strip().lower()
    if key not in KV_DTYPES:
        raise ConfigError(f"unknown KV-cache dtype {p!r}; choose one of: {', '.join(KV_DTYPES)}")
    return KV_DTYPES[key]


@dataclass(frozen=True)
class WeightBytes:
    """Bytes per parameter by weight class for one precision."""

    routed_expert: float
    other_linear: float  # attention, dense FFN, shared experts
    embedding: float  # input embedding and lm_head stay BF16 in every released checkpoint


def weight_bytes(precision: str) -> WeightBytes:
    p = check_precision(precision)
    if p == "bf16":
        return WeightBytes(2.0, 2.0, 2.0)
    if p == "fp8":
        return WeightBytes(FP8_BYTES, FP8_BYTES, 2.0)
    return WeightBytes(INT4_BYTES, 2.0, 2.0)  # int4: experts only, the rest BF16
