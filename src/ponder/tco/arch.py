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
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ..core.errors import ConfigError

AttentionKind = Literal["mla", "gqa", "dsa", "csa"]

SUPPORTED_STYLES = ("DeepseekV3 / Kimi K2", "GlmMoeDsa / DeepSeek-V3.2 (MLA + sparse attention)",
                    "DeepseekV4 (compressed sparse attention)", "Glm4Moe", "Qwen3-MoE", "Mixtral", "dense Llama/Qwen")

# The lightning indexer's key cache (DeepSeek-V3.2 / GLM-5): FP8 keys plus one FP32 scale per 128.
INDEX_KEY_BYTES = 1.0 + 4.0 / 128


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
    # Sparse attention: a lightning indexer picks `index_topk` cached entries per query
    # (DSA: GLM-5, DeepSeek-V3.2; CSA layers of DeepSeek-V4).
    index_topk: int = 0
    index_n_heads: int = 0
    index_head_dim: int = 0
    # DeepSeek-V4 hybrid attention: per-layer compression ratio (0 = sliding window only,
    # 4 = CSA: compressed 4x + indexer top-k, 128 = HCA: compressed 128x, all visible), one
    # shared K=V head of `head_dim`, a sliding window, and a grouped low-rank output projection.
    compress_ratios: tuple[int, ...] = ()
    sliding_window: int = 0
    o_groups: int = 0
    o_lora_rank: int = 0

    # ---- structure -------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def n_moe_layers(self) -> int:
        return self.n_layers - self.n_dense_layers if self.is_moe else 0

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.attention in ("mla", "dsa") else self.head_dim

    @property
    def out_head_dim(self) -> int:
        return self.v_head_dim if self.attention in ("mla", "dsa") else self.head_dim

    # ---- parameter counts ------------------------------------------------------------
    def attention_params_per_layer(self) -> int:
        h, nh = self.hidden, self.n_heads
        if self.attention == "csa":
            q = h * (self.q_lora_rank or 0) + (self.q_lora_rank or 0) + (self.q_lora_rank or h) * nh * self.head_dim
            kv = h * self.head_dim
            o = nh * self.head_dim * self.o_lora_rank + self.o_groups * self.o_lora_rank * h
            return q + kv + o + self._indexer_params()
        if self.attention in ("mla", "dsa"):
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * nh * self.qk_head_dim
            else:
                q = h * nh * self.qk_head_dim
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * nh * (self.qk_nope_head_dim + self.v_head_dim)
            o = nh * self.v_head_dim * h
            return q + kv_a + kv_b + o + self._indexer_params()
        q_out, kv_out = nh * self.head_dim, self.n_kv_heads * self.head_dim
        p = h * q_out + 2 * h * kv_out + q_out * h
        if self.attention_bias:
            p += q_out + 2 * kv_out
        return p

    def _indexer_params(self) -> int:
        """Lightning indexer (query up-projection from the q latent, one key projection, per-head
        weights); the V4 compressors' own small projections are not counted."""
        if not self.index_n_heads:
            return 0
        q_in = self.q_lora_rank or self.hidden
        per = q_in * self.index_n_heads * self.index_head_dim + self.hidden * self.index_head_dim \
            + self.hidden * self.index_n_heads
        if self.attention == "csa":  # only the CSA (ratio-4) layers carry an indexer; averaged per layer
            return per * self.n_csa_layers // max(1, self.n_layers)
        return per

    @property
    def n_csa_layers(self) -> int:
        return sum(1 for r in self.compress_ratios if r == 4)

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
        if self.attention in ("mla", "dsa"):
            return self.kv_lora_rank + self.qk_rope_head_dim  # compressed latent + shared rope key
        if self.attention == "csa":
            return self.head_dim  # one shared K=V head (per compressed entry)
        return 2 * self.n_kv_heads * self.head_dim

    def kv_bytes_per_token(self, bytes_per_elem: float = 2.0) -> float:
        """Cache bytes one more token of context adds to a sequence (all layers)."""
        if self.attention == "csa":
            return self.kv_cache_bytes(1_000_000, bytes_per_elem) / 1_000_000 - self._window_bytes(bytes_per_elem) / 1e6
        per = self.kv_elems_per_token_per_layer() * bytes_per_elem
        if self.attention == "dsa":
            per += self.index_head_dim * INDEX_KEY_BYTES
        return per * self.n_layers

    def _window_bytes(self, b: float) -> float:
        return len(self.compress_ratios) * self.sliding_window * self.head_dim * b

    def kv_cache_bytes(self, tokens: float, bytes_per_elem: float = 2.0) -> float:
        """Bytes cached for one sequence of `tokens` tokens (all layers)."""
        if self.attention != "csa":
            return tokens * self.kv_bytes_per_token(bytes_per_elem)
        total = 0.0
        for r in self.compress_ratios:
            entries = min(tokens, self.sliding_window) + (tokens / r if r else 0.0)
            total += entries * self.head_dim * bytes_per_elem
            if r == 4:
                total += tokens / 4 * self.index_head_dim * INDEX_KEY_BYTES
        return total

    def _csa_entries(self, context: float, r: int) -> float:
        window = min(context, self.sliding_window)
        if r == 4:
            return window + min(float(self.index_topk), context / 4)
        return window + (context / r if r else 0.0)

    def kv_read_bytes(self, context: float, bytes_per_elem: float = 2.0) -> float:
        """Bytes one decode step of one sequence reads from its cache at `context` tokens. Dense
        attention reads everything; sparse attention reads the top-k entries it attends to plus
        the indexer keys it scores."""
        if self.attention == "dsa":
            core = min(context, float(self.index_topk)) * self.kv_elems_per_token_per_layer() * bytes_per_elem
            return (core + context * self.index_head_dim * INDEX_KEY_BYTES) * self.n_layers
        if self.attention == "csa":
            total = 0.0
            for r in self.compress_ratios:
                total += self._csa_entries(context, r) * self.head_dim * bytes_per_elem
                if r == 4:
                    total += context / 4 * self.index_head_dim * INDEX_KEY_BYTES
            return total
        return context * self.kv_bytes_per_token(bytes_per_elem)

    def kv_shard_ways(self, tp: int) -> int:
        """How many ways TP splits the cache: the MLA latent (and V4's single K=V head) is
        replicated on every rank; GQA splits by KV head until TP exceeds the head count."""
        return max(1, min(tp, self.n_kv_heads)) if self.attention == "gqa" else 1

    # ---- FLOPs --------------------------------------------------------------------------
    def attention_flops_per_token(self, context: float, *, decode: bool) -> float:
        """Score + value FLOPs of one new token against `context` cached tokens (all layers).
        MLA decode runs absorbed ("MQA mode": k dim kv_lora+rope, v dim kv_lora); MLA prefill
        and GQA use the per-head dims. Sparse attention attends to its top-k entries and adds
        the indexer's scoring of every candidate (2 * index heads * index dim each)."""
        if self.attention == "csa":
            total = 0.0
            for r in self.compress_ratios:
                total += 2.0 * self.n_heads * self._csa_entries(context, r) * 2 * self.head_dim
                if r == 4:
                    total += 2.0 * self.index_n_heads * self.index_head_dim * context / 4
            return total
        if self.attention in ("mla", "dsa") and decode:
            dk, dv = self.kv_lora_rank + self.qk_rope_head_dim, self.kv_lora_rank
        else:
            dk, dv = self.qk_head_dim, self.out_head_dim
        if self.attention == "dsa":
            core = 2.0 * self.n_heads * min(context, float(self.index_topk)) * (dk + dv)
            return (core + 2.0 * self.index_n_heads * self.index_head_dim * context) * self.n_layers
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
    if "compress_ratios" in cfg or "deepseek_v4" in arch_names or "DeepseekV4" in arch_names:
        return _deepseek_v4(cfg, name, common, head_dim)
    indexer: dict[str, Any] = {}
    if cfg.get("index_topk"):
        indexer = dict(index_topk=int(cfg["index_topk"]), index_n_heads=int(_need(cfg, name, "index_n_heads")),
                       index_head_dim=int(_need(cfg, name, "index_head_dim")))
    if "kv_lora_rank" in cfg and cfg.get("kv_lora_rank"):
        # DeepseekV3 / Kimi K2 style: MLA, shared + routed experts, first_k_dense_replace;
        # with `index_topk` (GLM-5, DeepSeek-V3.2) the MLA is sparse (DSA).
        n_routed = int(_get(cfg, "n_routed_experts", default=0))
        moe_ffn = int(_get(cfg, "moe_intermediate_size", default=0))
        first_dense = int(_get(cfg, "first_k_dense_replace", default=0)) if n_routed else n_layers
        return Architecture(
            style="mla_dsa" if indexer else "deepseek_v3", n_dense_layers=first_dense, dense_ffn=dense_ffn,
            attention="dsa" if indexer else "mla", n_kv_heads=n_heads, head_dim=head_dim, **indexer,
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


def _deepseek_v4(cfg: dict[str, Any], name: str, common: dict[str, Any], head_dim: int) -> Architecture:
    """DeepSeek-V4: every layer MoE (the first `num_hash_layers` route by a token-id table, which
    costs the same), one shared K=V head, per-layer compression ratios (the list's entries past
    num_hidden_layers belong to the MTP module)."""
    n_layers = common["n_layers"]
    ratios = cfg.get("compress_ratios")
    if ratios is None:
        kinds = cfg.get("layer_types") or []
        ratios = [{"sliding_attention": 0, "compressed_sparse_attention": 4,
                   "heavily_compressed_attention": 128}.get(k, 0) for k in kinds]
    ratios = [int(r) for r in ratios][:n_layers]
    if len(ratios) != n_layers:
        raise ConfigError(f"config for {name!r}: compress_ratios has {len(ratios)} entries for {n_layers} layers")
    moe_ffn = int(_need(cfg, name, "moe_intermediate_size"))
    return Architecture(
        style="deepseek_v4", n_dense_layers=0, dense_ffn=moe_ffn, attention="csa",
        n_kv_heads=int(_get(cfg, "num_key_value_heads", default=1)), head_dim=head_dim,
        q_lora_rank=_get(cfg, "q_lora_rank"), qk_rope_head_dim=int(_get(cfg, "qk_rope_head_dim", default=64)),
        n_experts=int(_need(cfg, name, "n_routed_experts")), top_k=int(_need(cfg, name, "num_experts_per_tok")),
        n_shared_experts=int(_get(cfg, "n_shared_experts", default=1)), expert_ffn=moe_ffn, shared_ffn=moe_ffn,
        index_topk=int(_need(cfg, name, "index_topk")), index_n_heads=int(_need(cfg, name, "index_n_heads")),
        index_head_dim=int(_need(cfg, name, "index_head_dim")), compress_ratios=tuple(ratios),
        sliding_window=int(_need(cfg, name, "sliding_window")), o_groups=int(_need(cfg, name, "o_groups")),
        o_lora_rank=int(_need(cfg, name, "o_lora_rank")), **common,
    )


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
    notes: tuple[str, ...] = ()  # what the planner approximates for this model (printed with results)
    alias_of: str | None = None


def _models_dir() -> Any:
    return resources.files("ponder.tco") / "data" / "models"


def builtin_models(*, aliases: bool = True) -> dict[str, ModelEntry]:
    out: dict[str, ModelEntry] = {}
    for f in sorted(_models_dir().iterdir(), key=lambda x: x.name):
        if not f.name.endswith(".json"):
            continue
        d = json.loads(f.read_text())
        entry = ModelEntry(
            name=d["name"], display=d["display"], arch=from_hf_config(d["config"], name=d["name"]),
            hf_repo=d["hf_repo"], native_precision=d["native_precision"], parsers=d.get("parsers", {}),
            launch_extra=d.get("launch_extra", {}), sources=d.get("sources", []), notes=tuple(d.get("notes", [])),
        )
        out[entry.name] = entry
        if aliases:
            for alias, display in d.get("aliases", {}).items():
                out[alias] = replace(entry, name=alias, display=display, alias_of=entry.name,
                                     notes=(f"{alias} has {entry.display}'s architecture (same config.json)", *entry.notes))
    return out


def unavailable_models() -> dict[str, str]:
    """Models people ask for whose configuration is not public (or not modelled): name -> why."""
    raw = json.loads((resources.files("ponder.tco") / "data" / "unavailable.json").read_text())
    return {k: v for k, v in raw["models"].items()}


def get_model(name: str) -> ModelEntry:
    models = builtin_models()
    key = name.strip().lower()
    if key not in models:
        missing = unavailable_models()
        if key in missing:
            raise ConfigError(f"{name!r} cannot be planned: {missing[key]}")
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(models))} "
            "(or pass --config path/to/config.json for your own model; `ponder tco --list` shows all)"
        )
    return models[key]


def custom_entry(arch: Architecture) -> ModelEntry:
    return ModelEntry(
        name=arch.name, display=f"{arch.name} (config.json)", arch=arch, hf_repo={},
        native_precision="bf16", parsers={}, launch_extra={}, sources=["user-supplied config.json"],
    )
