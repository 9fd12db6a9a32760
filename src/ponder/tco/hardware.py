"""GPU specs, prices and weight precisions (data in `data/gpus.json`, every figure overridable,
user GPUs from a TOML file)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import ConfigError

GiB = 1024**3

Precision = Literal["bf16", "fp8", "int4", "fp4"]
PRECISIONS: tuple[str, ...] = ("bf16", "fp8", "int4", "fp4")
KV_DTYPES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}

# INT4 as in Kimi K2-Thinking/K2.5's QAT release: symmetric int4, group size 32, one BF16
# scale per group -> 4 + 16/32 bits = 0.5625 bytes per weight.
INT4_BYTES = 0.5 + 2.0 / 32
# NVFP4 (NVIDIA ModelOpt checkpoints): E2M1 values, one FP8 scale per 16 -> 4 + 8/16 bits.
FP4_BYTES = 0.5 + 1.0 / 16
# Block FP8 (128x128 blocks, one FP32 scale each) adds 4/16384 bytes per weight.
FP8_BYTES = 1.0 + 4.0 / (128 * 128)
_BYTES = {"bf16": 2.0, "fp8": FP8_BYTES, "int4": INT4_BYTES, "fp4": FP4_BYTES}

# `--precision X` is shorthand for a (non-expert, routed-expert) pair. INT4 and FP4 are what the
# released checkpoints quantise: routed experts only (Kimi's INT4 QAT keeps attention BF16;
# NVIDIA's NVFP4 DeepSeek/GLM/Kimi checkpoints keep attention FP8 or BF16 -- FP8 assumed).
SHORTHAND: dict[str, tuple[str, str]] = {
    "bf16": ("bf16", "bf16"), "fp8": ("fp8", "fp8"), "int4": ("bf16", "int4"), "fp4": ("fp8", "fp4"),
}


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
    network_gb_s: float  # scale-out per GPU, per direction (ConnectX-7 400 Gb/s ~ 50 GB/s)
    price_per_hour: float
    price_source: str = ""
    gpus_per_node: int = 8  # GPUs in one NVLink domain (72 for an NVL72 rack)
    source: str = ""

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GiB

    @property
    def hbm_bytes_s(self) -> float:
        return self.hbm_tb_s * 1e12

    def matmul_flops(self, precision: str) -> float:
        """Peak dense FLOP/s for weight matmuls at one weight precision: FP8 weights run FP8
        tensor cores, FP4 (W4A4 NVFP4) the FP4 ones; INT4 (W4A16) dequantises to BF16, so it
        gets BF16 peak, not an INT4 rate."""
        p = check_precision(precision)
        if p == "fp4":
            return self.require_fp4() * 1e12
        return (self.fp8_tflops if p == "fp8" else self.bf16_tflops) * 1e12

    def require_fp4(self) -> float:
        if not self.fp4_tflops:
            with_fp4 = ", ".join(g for g in gpu_names() if builtin_gpus()[g].fp4_tflops)
            raise ConfigError(f"{self.display} has no FP4 tensor cores, so fp4 weights cannot run at an FP4 rate; "
                              f"use fp8 or int4, or a GPU with FP4 ({with_fp4})")
        return self.fp4_tflops

    def with_overrides(self, **kw: float | None) -> GPU:
        clean = {k: v for k, v in kw.items() if v is not None}
        for k, v in clean.items():
            if not isinstance(v, int | float) or v <= 0:
                raise ConfigError(f"GPU override {k}={v!r} must be a positive number")
        if "gpus_per_node" in clean:
            clean["gpus_per_node"] = int(clean["gpus_per_node"])
        return replace(self, **clean)  # type: ignore[arg-type]


class _GpuSpec(BaseModel):
    """One GPU in a user's TOML file (the same fields as data/gpus.json)."""

    model_config = ConfigDict(extra="forbid")
    display: str | None = None
    memory_gib: float = Field(gt=0)
    hbm_tb_s: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    fp8_tflops: float = Field(gt=0)
    fp4_tflops: float | None = Field(default=None, gt=0)
    nvlink_gb_s: float = Field(gt=0)
    network_gb_s: float = Field(gt=0)
    price_per_hour: float = Field(ge=0)
    price_source: str = "user-supplied"
    gpus_per_node: int = Field(default=8, ge=1)
    source: str = "user-supplied TOML"


def load_gpu_file(path: str | Path) -> dict[str, GPU]:
    """User GPUs from TOML: one table per GPU, `[gpus.NAME]` with the fields of data/gpus.json."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"GPU file {str(p)!r} not found; pass a TOML file with [gpus.NAME] tables")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"GPU file {str(p)!r} is not valid TOML ({e})") from e
    table = raw.get("gpus")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"GPU file {str(p)!r} has no [gpus.NAME] table; e.g. [gpus.mi355x] memory_gib = 288 ...")
    out: dict[str, GPU] = {}
    for name, spec in table.items():
        try:
            s = _GpuSpec.model_validate(spec)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise ConfigError(f"GPU {name!r} in {str(p)!r}: {where}: {err['msg']}") from e
        key = name.strip().lower()
        out[key] = GPU(name=key, display=s.display or name, **s.model_dump(exclude={"display"}))
    return out


_USER_GPUS: dict[str, GPU] = {}


def register_gpus(gpus: dict[str, GPU]) -> None:
    """Make user GPUs resolvable by name for this process (the CLI's --gpu-file)."""
    _USER_GPUS.update(gpus)


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
    return sorted({g.name for g in builtin_gpus().values()} | set(_USER_GPUS))


def get_gpu(name: str) -> GPU:
    key = name.strip().lower().replace(" ", "-")
    if key in _USER_GPUS:
        return _USER_GPUS[key]
    gpus = builtin_gpus()
    if key not in gpus:
        raise ConfigError(f"unknown GPU {name!r}; choose one of: {', '.join(gpu_names())} "
                          "(or describe yours in a TOML file and pass --gpu-file)")
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


def split_precision(precision: str, attn: str | None = None, moe: str | None = None) -> tuple[str, str]:
    """(non-expert precision, routed-expert precision): the shorthand, then any explicit override."""
    a, m = SHORTHAND[check_precision(precision)]
    return (check_precision(attn) if attn else a), (check_precision(moe) if moe else m)


@dataclass(frozen=True)
class WeightBytes:
    """Bytes per parameter by weight class."""

    routed_expert: float
    other_linear: float  # attention, dense FFN, shared experts, router
    embedding: float  # input embedding and lm_head stay BF16 in every released checkpoint


def weight_bytes(precision: str, attn: str | None = None, moe: str | None = None) -> WeightBytes:
    a, m = split_precision(precision, attn, moe)
    return WeightBytes(_BYTES[m], _BYTES[a], 2.0)
