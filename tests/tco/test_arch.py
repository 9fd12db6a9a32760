"""Parameter counts, KV bytes and FLOPs against the vendors' published figures."""

import json

import pytest

from ponder.core.errors import ConfigError
from ponder.tco.arch import builtin_models, from_hf_config, get_model, load_config_file


def rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def test_builtin_models_present():
    assert {"kimi-k2.5", "glm-4.7", "glm-4.5-air", "deepseek-v3"} <= set(builtin_models())


def test_kimi_k2_params_match_moonshot_convention():
    a = get_model("kimi-k2.5").arch
    # Moonshot/HF: ~1.03T total, 32.9B active counting both embedding matrices
    assert rel(a.total_params(), 1.03e12) < 0.02
    assert rel(a.active_params(embeddings=True), 32.9e9) < 0.02
    assert a.n_moe_layers == 60 and a.n_experts == 384 and a.top_k == 8
    # routed experts dominate: ~1,015B
    assert rel(a.routed_expert_params(), 1.015e12) < 0.01


def test_glm47_params_match_zhipu_convention():
    a = get_model("glm-4.7").arch
    # GLM-4.5 report: 355B total incl. MTP, excl. embeddings and output layer; 32B active
    assert rel(a.total_params(embeddings=False, mtp=True), 355e9) < 0.02
    assert rel(a.active_params(embeddings=False), 32e9) < 0.02
    # HF / Cerebras ~358B with embeddings
    assert rel(a.total_params(), 358e9) < 0.01


def test_deepseek_and_air_params():
    ds = get_model("deepseek-v3").arch
    assert rel(ds.total_params(mtp=False), 671e9) < 0.01
    assert rel(ds.active_params(), 37e9) < 0.03
    air = get_model("glm-4.5-air").arch
    assert rel(air.total_params(embeddings=False, mtp=True), 106e9) < 0.02
    assert rel(air.active_params(embeddings=False), 12e9) < 0.03


def test_kv_bytes_per_token_mla_vs_gqa():
    kimi, glm = get_model("kimi-k2.5").arch, get_model("glm-4.7").arch
    assert kimi.kv_bytes_per_token() == (512 + 64) * 61 * 2 == 70_272
    assert glm.kv_bytes_per_token() == 2 * 8 * 128 * 92 * 2 == 376_832
    assert kimi.kv_bytes_per_token(1.0) == 35_136  # FP8 KV halves it
    assert 5.3 < glm.kv_bytes_per_token() / kimi.kv_bytes_per_token() < 5.5
    # MLA latent is replicated under TP; GQA splits by KV head up to n_kv
    assert kimi.kv_shard_ways(8) == 1
    assert glm.kv_shard_ways(4) == 4 and glm.kv_shard_ways(16) == 8


def test_flops_per_token():
    kimi = get_model("kimi-k2.5").arch
    base = kimi.flops_per_token(0)
    assert rel(base, 2 * 31.7e9) < 0.02  # 2 x active matmul params (input embedding is a gather)
    # MLA absorbed decode: 2 * heads * ctx * (576 + 512) per layer
    assert kimi.flops_per_token(1000) - base == pytest.approx(2 * 64 * 1000 * 1088 * 61)
    glm = get_model("glm-4.7").arch
    assert glm.attention_flops_per_token(1000, decode=True) == pytest.approx(2 * 96 * 1000 * 256 * 92)


QWEN3_30B = {
    "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
    "moe_intermediate_size": 768, "num_hidden_layers": 48, "num_attention_heads": 32,
    "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8,
    "vocab_size": 151936, "tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
}
MIXTRAL = {
    "architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
}
LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
}


@pytest.mark.parametrize(
    ("cfg", "style", "total", "active"),
    [(QWEN3_30B, "qwen_moe", 30.5e9, 3.3e9), (MIXTRAL, "mixtral", 46.7e9, 12.9e9),
     (LLAMA3_8B, "dense", 8.03e9, 8.03e9)],
)
def test_hf_config_styles(cfg, style, total, active):
    a = from_hf_config(cfg, name="x")
    assert a.style == style
    assert rel(a.total_params(), total) < 0.02
    assert rel(a.active_params(), active) < 0.03


def test_load_config_file_and_errors(tmp_path):
    d = tmp_path / "my-model"
    d.mkdir()
    p = d / "config.json"
    p.write_text(json.dumps(MIXTRAL))
    a = load_config_file(p)
    assert a.name == "my-model" and a.n_experts == 8
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="hidden_size"):
        from_hf_config({"num_hidden_layers": 2}, "broken")


def test_unknown_model_names_choices():
    with pytest.raises(ConfigError) as e:
        get_model("kimi-k9")
    assert "kimi-k2.5" in str(e.value) and "glm-4.7" in str(e.value)
