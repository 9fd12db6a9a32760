"""The 2026 models: parameter counts against the vendors', sparse attention against the
vendors' own efficiency claims, aliases, and the models that cannot be planned."""

import json
from importlib import resources

import pytest

from ponder.core.errors import ConfigError
from ponder.tco.arch import builtin_models, from_hf_config, get_model, unavailable_models


def rel(a: float, b: float) -> float:
    return abs(a / b - 1)


def test_glm5_params_and_sparse_attention():
    a = get_model("glm-5").arch
    assert a.attention == "dsa" and a.index_topk == 2048 and a.n_mtp_layers == 1
    # zai-org/GLM-5 README: 744B total / 40B active (main model; embeddings out of "active")
    assert rel(a.total_params(mtp=False), 744e9) < 0.01
    assert rel(a.active_params(embeddings=False), 40e9) < 0.02


def test_dsa_reads_top_k_plus_indexer_keys():
    a = get_model("glm-5").arch
    # hand, per layer at 10,000 cached tokens (BF16 latent): core top-2048 x (512 + 64) x 2 B = 2.359 MB,
    # indexer keys 10,000 x 128 x (1 + 4/128) B = 1.320 MB; x 78 layers = 287.0 MB (dense MLA: 898.6 MB)
    assert a.kv_read_bytes(10_000) == pytest.approx((2048 * 576 * 2 + 10_000 * 128 * 1.03125) * 78)
    assert a.kv_read_bytes(10_000) / 1e6 == pytest.approx(287.0, abs=0.1)
    # below top-k the core attends to everything
    assert a.kv_read_bytes(1000) == pytest.approx((1000 * 576 * 2 + 1000 * 128 * 1.03125) * 78)
    # stored cache is every token's latent plus its index key
    assert a.kv_bytes_per_token() == pytest.approx((576 * 2 + 128 * 1.03125) * 78)


def test_deepseek_v4_params():
    pro, flash = get_model("deepseek-v4-pro").arch, get_model("deepseek-v4-flash").arch
    assert pro.attention == flash.attention == "csa"
    assert sum(r == 4 for r in pro.compress_ratios) == 30 and sum(r == 128 for r in pro.compress_ratios) == 31
    # model card: Pro 1.6T / 49B, Flash 284B / 13B
    assert rel(pro.total_params(), 1.6e12) < 0.02 and rel(pro.active_params(), 49e9) < 0.02
    assert rel(flash.total_params(mtp=False), 284e9) < 0.01 and rel(flash.active_params(), 13e9) < 0.05


def test_deepseek_v4_reproduces_the_model_cards_efficiency_claims():
    """Model card: at 1M context V4-Pro needs 27% of V3.2's single-token FLOPs and 10% of its
    KV cache. V3.2 = V3's config + a 64-head, 128-dim indexer with top-2048 (DSA)."""
    v3 = json.loads((resources.files("ponder.tco") / "data" / "models" / "deepseek-v3.json").read_text())["config"]
    v32 = from_hf_config({**v3, "index_topk": 2048, "index_n_heads": 64, "index_head_dim": 128}, "v3.2")
    pro = get_model("deepseek-v4-pro").arch
    ctx = 1_000_000
    # hand (FP8 cache): V3.2 61 x (576 + 132) B = 43.2 kB/token; V4-Pro 30 CSA layers x (512/4 +
    # 128/4 x 1.03) + 31 HCA layers x 512/128 = 4.96 kB/token -> 11.5%
    assert pro.kv_cache_bytes(ctx, 1.0) / v32.kv_cache_bytes(ctx, 1.0) == pytest.approx(0.115, abs=0.005)
    # hand: V3.2 2 x 37.5B + 61 x (2 x 128 x 2048 x 1088 + 2 x 64 x 128 x 1M) = 1,109 GFLOP;
    # V4-Pro 2 x 48B + CSA/HCA attention + indexer over 250k compressed entries = 292 GFLOP -> 26%
    assert pro.flops_per_token(ctx) / v32.flops_per_token(ctx) == pytest.approx(0.27, abs=0.01)


def test_kimi_k26_and_deepseek_r1_alias():
    k26, k25 = get_model("kimi-k2.6"), get_model("kimi-k2.5")
    assert k26.arch.total_params() == k25.arch.total_params()
    r1 = get_model("deepseek-r1")
    assert r1.alias_of == "deepseek-v3" and r1.arch.total_params() == get_model("deepseek-v3").arch.total_params()
    assert "deepseek-r1" in builtin_models() and "deepseek-r1" not in builtin_models(aliases=False)


def test_models_without_a_public_config_say_so():
    assert "kimi-k3" in unavailable_models()
    with pytest.raises(ConfigError, match="cannot be planned.*config"):
        get_model("kimi-k3")
