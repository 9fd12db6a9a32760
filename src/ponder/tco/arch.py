"""Transformer/MoE architecture specs and the quantities derived from them.

One parser reads Hugging Face `config.json` files in the DeepseekV3 (incl. Kimi K2/K2.5),
Glm4Moe, Qwen3-MoE, Mixtral and dense Llama styles, so the built-in specs under
`data/models/` and a user's own config go through exactly the same code.

Parameter counts are reported as a breakdown because vendors count differently:
Moonshot quotes Kimi K2 including both embedding matrices (1.03T / 32.9B), Zhipu quotes
GLM-4.5 including the MTP layer but excluding embeddings and output layer (355B / 32B).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..core.errors import ConfigError

AttentionKind = Literal["mla", "gqa"]

SUPPORTED_STYLES = ("DeepseekV3 / Kimi K2", "Glm4Moe", "Qwen3-MoE", "Mixtral", "dense Llama/Qwen")


@dataclass(frozen=True)
class Architecture:
    """The shape of one decoder-only (MoE) transformer, enough for counting bytes and FLOPs."""

    name: str
    style: str
    hidden: int
    n_layers: int
    n_dense_layers: int  # layers whose FFN is dense (e.g. DeepSeek's first_k_dense_replace)
    dense_ffn: int  # intermediate size of the dense FFN layers
    vocab: int
    tied_embeddings: bool
    n_heads: int
    attention: AttentionKind
    n_kv_heads: int
    head_dim: int  # GQA head dim (q, k and v); MLA: unused
    attention_bias: bool = False
    # MLA (DeepSeek-V3 family)
    q_lora_rank: int | None = None
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # MoE
    n_experts: int = 0
    top_k: int = 0
    n_shared_experts: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0
    n_mtp_layers: int = 0
    max_position: int = 0

    # ---- structure -------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def n_moe_layers(self) -> int:
        return self.n_layers - self.n_dense_layers if self.is_moe else 0

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.attention == "mla" else self.head_dim

    @property
    def out_head_dim(self) -> int:
        return self.v_head_dim if self.attention == "mla" else self.head_dim

    # ---- parameter counts ------------------------------------------------------------
    def attention_params_per_layer(self) -> int:
        h, nh = self.hidden, self.n_heads
        if self.attention == "mla":
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * nh * self.qk_head_dim
            else:
                q = h * nh * self.qk_head_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * nh * (self.qk_nope_head_dim + self.v_head_dim)
            o = nh * self.v_head_dim * h
            return q + kv_a + kv_b + o
        q_out, kv_out = nh * self.head_dim, self.n_kv_heads * self.head_dim
        p = h * q_out + 2 * h * kv_out + q_out * h
        if self.attention_bias:
            p += q_out + 2 * kv_out
        return p

    def expert_params(self) -> int:
        """One SwiGLU routed expert: gate, up and down projections."""
        return 3 * self.hidden * self.expert_ffn

    def layer_params(self, moe: bool) -> dict[str, int]:
        """Parameters of one decoder layer split by kind (norms counted with attention)."""
        h = self.hidden
        out = {"attention": self.attention_params_per_layer() + 2 * h}
        if moe:
            out["routed_experts"] = self.n_experts * self.expert_params()
            out["shared_experts"] = self.n_shared_experts * 3 * h * self.shared_ffn
            out["router"] = self.n_experts * h + self.n_experts  # gate + selection bias
        else:
            out["dense_ffn"] = 3 * h * self.dense_ffn
        return out

    def param_breakdown(self) -> dict[str, int]:
        """Whole-model parameters by kind. `mtp` is the extra next-token-prediction layer(s)
        (one MoE layer + the 2h→h projection + norms; the MTP copy of embedding/head is shared)."""
        b: dict[str, int] = {
            "embedding": self.vocab * self.hidden,
            "lm_head": 0 if self.tied_embeddings else self.vocab * self.hidden,
            "attention": 0, "dense_ffn": 0, "routed_experts": 0, "shared_experts": 0, "router": 0,
            "final_norm": self.hidden,
        }
        for moe, count in ((False, self.n_dense_layers), (True, self.n_moe_layers)):
            for k, v in self.layer_params(moe).items():
                b[k] += v * count
        mtp_layer = sum(self.layer_params(self.is_moe).values()) + 2 * self.hidden * self.hidden + 3 * self.hidden
        b["mtp"] = self.n_mtp_layers * mtp_layer
        return b

    def total_params(self, *, embeddings: bool = True, mtp: bool = True) -> int:
        b = self.param_breakdown()
        n = sum(v for k, v in b.items() if k not in ("embedding", "lm_head", "mtp"))
        if embeddings:
            n += b["embedding"] + b["lm_head"]
        if mtp:
            n += b["mtp"]
        return n

    def active_params(self, *, embeddings: bool = True, mtp: bool = False) -> int:
        """Parameters one token uses: everything except the (E − k) unrouted experts per layer."""
        n = self.total_params(embeddings=embeddings, mtp=False)
        n -= self.n_moe_layers * (self.n_experts - self.top_k) * self.expert_params()
        if mtp and self.n_mtp_layers:
            b = self.param_breakdown()
            n += b["mtp"] - self.n_mtp_layers * (self.n_experts - self.top_k) * self.expert_params()
        return n

    def routed_expert_params(self) -> int:
        return self.n_moe_layers * self.n_experts * self.expert_params()

    def matmul_params_per_token(self) -> int:
        """Active parameters that take part in matmuls for one token (the input embedding is a
        gather, not a matmul); the basis of the 2·N FLOPs-per-token rule."""
        return self.active_params(embeddings=True) - self.vocab * self.hidden

    # ---- KV cache ---------------------------------------------------------------------
    def kv_elems_per_token_per_layer(self) -> int:
        if self.attention == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim  # compressed latent + shared rope key
        return 2 * self.n_kv_heads * self.head_dim

    def kv_bytes_per_token(self, bytes_per_elem: float = 2.0) -> float:
        return self.kv_elems_per_token_per_layer() * self.n_layers * bytes_per_elem

    def kv_shard_ways(self, tp: int) -> int:
        """How many ways TP splits the cache: the MLA latent is replicated on every rank; GQA
        splits by KV head until TP exceeds the head count, then replicates."""
        return 1 if self.attention == "mla" else max(1, min(tp, self.n_kv_heads))

    # ---- FLOPs --------------------------------------------------------------------------
    def attention_flops_per_token(self, context: float, *, decode: bool) -> float:
        """Score + value FLOPs of one new token against `context` cached tokens (all layers).
        MLA decode runs absorbed ("MQA mode": k dim kv_lora+rope, v dim kv_lora); MLA prefill
        and GQA use the per-head dims."""
        if self.attention == "mla" and decode:
            dk, dv = self.kv_lora_rank + self.qk_rope_head_dim, self.kv_lora_rank
        else:
            dk, dv = self.qk_head_dim, self.out_head_dim
        return 2.0 * self.n_heads * context * (dk + dv) * self.n_layers

    def flops_per_token(self, context: float = 0.0, *, decode: bool = True) -> float:
        return 2.0 * self.matmul_params_per_token() + self.attention_flops_per_token(context, decode=decode)


# ---- parsing -------------------------------------------------------------------------------

def _get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _need(cfg: dict[str, Any], name: str, *keys: str) -> Any:
    v = _get(cfg, *keys)
    if v is None:
        raise ConfigError(
            f"config for {name!r} lacks {' / '.join(keys)}; supported styles: {', '.join(SUPPORTED_STYLES)}"
        )
    return v


def from_hf_config(cfg: dict[str, Any], name: str = "custom") -> Architecture:
    """Build an Architecture from a Hugging Face config.json dict (multimodal configs use their
    `text_config`; the vision tower is not counted)."""
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        cfg = {**cfg["text_config"], **{k: v for k, v in cfg.items() if k in ("architectures",)}}
    arch_names = " ".join(cfg.get("architectures") or []) + " " + str(cfg.get("model_type", ""))
    hidden = int(_need(cfg, name, "hidden_size"))
    n_layers = int(_need(cfg, name, "num_hidden_layers"))
    n_heads = int(_need(cfg, name, "num_attention_heads"))
    vocab = int(_need(cfg, name, "vocab_size"))
    dense_ffn = int(_get(cfg, "intermediate_size", default=4 * hidden))
    common: dict[str, Any] = dict(
        name=name, hidden=hidden, n_layers=n_layers, n_heads=n_heads, vocab=vocab,
        tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_position=int(cfg.get("max_position_embeddings", 0) or 0),
        n_mtp_layers=int(cfg.get("num_nextn_predict_layers", 0) or 0),
    )
    n_kv = int(_get(cfg, "num_key_value_heads", default=n_heads))
    head_dim = int(_get(cfg, "head_dim", default=hidden // n_heads))
    if "kv_lora_rank" in cfg and cfg.get("kv_lora_rank"):
        # DeepseekV3 / Kimi K2 style: MLA, shared + routed experts, first_k_dense_replace.
        n_routed = int(_get(cfg, "n_routed_experts", default=0))
        moe_ffn = int(_get(cfg, "moe_intermediate_size", default=0))
        first_dense = int(_get(cfg, "first_k_dense_replace", default=0)) if n_routed else n_layers
        return Architecture(
            style="deepseek_v3", n_dense_layers=first_dense, dense_ffn=dense_ffn,
            attention="mla", n_kv_heads=n_heads, head_dim=head_dim,
            q_lora_rank=_get(cfg, "q_lora_rank"), kv_lora_rank=int(cfg["kv_lora_rank"]),
            qk_nope_head_dim=int(_need(cfg, name, "qk_nope_head_dim")),
            qk_rope_head_dim=int(_need(cfg, name, "qk_rope_head_dim")),
            v_head_dim=int(_need(cfg, name, "v_head_dim")),
            n_experts=n_routed, top_k=int(_get(cfg, "num_experts_per_tok", default=0)),
            n_shared_experts=int(_get(cfg, "n_shared_experts", default=0)),
            expert_ffn=moe_ffn, shared_ffn=moe_ffn, **common,
        )
    gqa: dict[str, Any] = dict(
        attention="gqa", n_kv_heads=n_kv, head_dim=head_dim,
        attention_bias=bool(cfg.get("attention_bias", False) or cfg.get("qkv_bias", False)),
    )
    if "n_routed_experts" in cfg:  # Glm4Moe
        moe_ffn = int(_need(cfg, name, "moe_intermediate_size"))
        return Architecture(
            style="glm4_moe", n_dense_layers=int(_get(cfg, "first_k_dense_replace", default=0)),
            dense_ffn=dense_ffn, n_experts=int(cfg["n_routed_experts"]),
            top_k=int(_need(cfg, name, "num_experts_per_tok")),
            n_shared_experts=int(_get(cfg, "n_shared_experts", default=0)),
            expert_ffn=moe_ffn, shared_ffn=moe_ffn, **gqa, **common,
        )
    if "num_local_experts" in cfg or "Mixtral" in arch_names:  # Mixtral: every FFN is MoE
        return Architecture(
            style="mixtral", n_dense_layers=0, dense_ffn=dense_ffn,
            n_experts=int(_need(cfg, name, "num_local_experts")),
            top_k=int(_need(cfg, name, "num_experts_per_tok")),
            expert_ffn=dense_ffn, **gqa, **common,
        )
    if "num_experts" in cfg and cfg.get("num_experts"):  # Qwen3-MoE / Qwen2-MoE
        mlp_only = set(cfg.get("mlp_only_layers") or [])
        step = int(cfg.get("decoder_sparse_step", 1) or 1)
        moe_layers = [i for i in range(n_layers) if i not in mlp_only and (i + 1) % step == 0]
        shared_ffn = int(cfg.get("shared_expert_intermediate_size", 0) or 0)
        return Architecture(
            style="qwen_moe", n_dense_layers=n_layers - len(moe_layers), dense_ffn=dense_ffn,
            n_experts=int(cfg["num_experts"]), top_k=int(_need(cfg, name, "num_experts_per_tok")),
            n_shared_experts=1 if shared_ffn else 0, shared_ffn=shared_ffn,
            expert_ffn=int(_need(cfg, name, "moe_intermediate_size")), **gqa, **common,
        )
    return Architecture(style="dense", n_dense_layers=n_layers, dense_ffn=dense_ffn, **gqa, **common)


def load_config_file(path: str | Path) -> Architecture:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; pass the path of a Hugging Face config.json")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a JSON object (a Hugging Face config.json)")
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_hf_config(cfg, name=name)


# ---- built-in model specs -------------------------------------------------------------------

@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: its architecture plus the facts a serving plan needs."""

    name: str
    display: str
    arch: Architecture
    hf_repo: dict[str, str]  # precision -> checkpoint repo
    native_precision: str
    parsers: dict[str, dict[str, str]]  # engine -> {"tool_call_parser": ..., "reasoning_parser": ...}
    launch_extra: dict[str, list[str]]
    sources: list[str]


def _models_dir() -> Any:
    return resources.files("ponder.tco") / "data" / "models"


def builtin_models() -> dict[str, ModelEntry]:
    out: dict[str, ModelEntry] = {}
    for f in sorted(_models_dir().iterdir(), key=lambda x: x.name):
        if not f.name.endswith(".json"):
            continue
        d = json.loads(f.read_text())
        out[d["name"]] = ModelEntry(
            name=d["name"], display=d["display"], arch=from_hf_config(d["config"], name=d["name"]),
            hf_repo=d["hf_repo"], native_precision=d["native_precision"], parsers=d.get("parsers", {}),
            launch_extra=d.get("launch_extra", {}), sources=d.get("sources", []),
        )
    return out


def get_model(name: str) -> ModelEntry:
    models = builtin_models()
    key = name.strip().lower()
    if key not in models:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(models))} "
            "(or pass --config path/to/config.json for your own model)"
        )
    return models[key]


def custom_entry(arch: Architecture) -> ModelEntry:
    return ModelEntry(
        name=arch.name, display=f"{arch.name} (config.json)", arch=arch, hf_repo={},
        native_precision="bf16", parsers={}, launch_extra={}, sources=["user-supplied config.json"],
    )
