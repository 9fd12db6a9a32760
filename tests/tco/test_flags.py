"""Each planner capability the CLI exposes moves the prediction by a hand-checked amount.

Shared figures (DeepSeek-V3 config, data/models/deepseek-v3.json):
  routed expert = 3 x 7168 x 2048 = 44,040,192 params; 58 MoE layers x 256 experts = 653.9B routed.
  non-expert linear ("other") = attention 11.414B + dense FFN 1.189B + shared experts 2.554B
  + router 0.106B = 15.264B.  FP8 block = 1 + 4/16384 B/param, NVFP4 = 0.5 + 1/16 = 0.5625 B/param.
"""

from dataclasses import replace

import pytest

from ponder.core.errors import ConfigError
from ponder.tco import hardware, perf
from ponder.tco.arch import get_model
from ponder.tco.assumptions import assumptions
from ponder.tco.hardware import GiB, get_gpu, load_gpu_file, register_gpus
from ponder.tco.perf import DEFAULT_CONSTANTS, Deployment, Workload, estimate

DS = get_model("deepseek-v3")
FP8 = 1 + 4 / 16384
ROUTED = 58 * 256 * 3 * 7168 * 2048


def dep(**kw):
    base = {"model": DS, "gpu": get_gpu("b200"), "n_gpus": 8}
    base.update(kw)
    return Deployment(**base)


def test_fp4_experts_shrink_weights_and_batch1_bytes():
    w = Workload(1024, 1024, 1)
    fp8 = estimate(dep(precision="fp8"), w)
    fp4 = estimate(dep(precision="fp4"), w)  # shorthand: NVFP4 experts, FP8 rest
    assert (fp4.attn_precision, fp4.moe_precision) == ("fp8", "fp4")
    # hand: 653.9e9 x (1.000244 - 0.5625) / 8 GPUs / 2^30 = 33.32 GiB less per GPU
    assert fp8.weights_gib_per_gpu - fp4.weights_gib_per_gpu == pytest.approx(ROUTED * (FP8 - 0.5625) / 8 / GiB, rel=1e-6)
    assert fp8.weights_gib_per_gpu - fp4.weights_gib_per_gpu == pytest.approx(33.32, abs=0.01)
    # hand: batch 1 streams 8 experts x 58 layers x 44.04M params / 8 GPUs = 2.555e9 B at FP8,
    # x 0.5625/1.000244 at FP4: 1.118e9 B less, at 80% of 8 TB/s = 0.1747 ms less memory time
    assert fp8.step_breakdown["memory_ms"] - fp4.step_breakdown["memory_ms"] == pytest.approx(0.1747, abs=2e-4)
    assert fp4.user_tok_s > fp8.user_tok_s


def test_moe_precision_alone_equals_fp4_shorthand_when_rest_is_fp8():
    w = Workload(1024, 1024, 4)
    a = estimate(dep(precision="fp8", moe_precision="fp4"), w)
    b = estimate(dep(precision="fp4"), w)
    assert a.user_tok_s == pytest.approx(b.user_tok_s) and a.weights_gib_per_gpu == pytest.approx(b.weights_gib_per_gpu)


def test_fp4_needs_fp4_tensor_cores():
    with pytest.raises(ConfigError, match="no FP4 tensor cores"):
        estimate(dep(gpu=get_gpu("h200"), precision="fp4"), Workload(100, 10, 1))
    with pytest.raises(ConfigError, match="no FP4"):
        estimate(dep(gpu=get_gpu("h200"), moe_precision="fp4"), Workload(100, 10, 1))
    assert get_gpu("b300").fp4_tflops and get_gpu("gb200").fp4_tflops


def test_attn_precision_bf16_with_fp8_experts():
    w = Workload(1024, 1024, 1)
    fp8 = estimate(dep(precision="fp8"), w)
    mixed = estimate(dep(precision="fp8", attn_precision="bf16"), w)
    # hand: other linear 15.264e9 params x (2 - 1.000244) B / 8 GPUs / 2^30 = 1.777 GiB more per GPU
    assert mixed.weights_gib_per_gpu - fp8.weights_gib_per_gpu == pytest.approx(1.777, abs=0.01)
    assert mixed.user_tok_s < fp8.user_tok_s
    assert "attention/dense/shared bf16" in " ".join(mixed.assumptions)


def _ep16(gpu, **kw):
    return dep(gpu=gpu, n_gpus=16, tp=1, dp=16, ep=16, disaggregated=True, **kw)


W_EP = Workload(2000, 100, 1024)  # 64 decode tokens per GPU


def test_gpus_per_node_keeps_the_all_to_all_on_nvlink():
    # hand, per MoE layer: 64 tokens x 8 copies x 7168 x (1 + 2) B = 11.01 MB per GPU.
    # 8-GPU domains, 16 GPUs: 8/16 of it crosses 50 GB/s x 0.75 -> 146.8 us (NVLink share 7.1 us),
    #   + 2 x 30 us latency = 206.8 us x 58 layers = 11.99 ms.
    # one 16-GPU domain: 15/16 over 900 GB/s x 0.75 = 15.3 us + 60 us = 75.3 us x 58 = 4.37 ms.
    b200 = get_gpu("b200")
    split = estimate(_ep16(b200), W_EP)
    one = estimate(_ep16(b200.with_overrides(gpus_per_node=16)), W_EP)
    assert split.step_breakdown["comm_ms"] == pytest.approx(11.99, abs=0.01)
    assert one.step_breakdown["comm_ms"] == pytest.approx(4.37, abs=0.01)
    assert "crosses the inter-node network" in " ".join(split.assumptions)
    assert "over NVLink" in " ".join(one.assumptions)


def test_inter_node_link_speed():
    # hand: as above with 100 GB/s: 73.4 us + 60 us = 133.4 us x 58 = 7.74 ms
    fast = estimate(_ep16(get_gpu("b200").with_overrides(network_gb_s=100)), W_EP)
    assert fast.step_breakdown["comm_ms"] == pytest.approx(7.74, abs=0.01)


def test_gb200_nvl72_keeps_48_gpu_ep_inside_the_rack():
    w = Workload(2000, 100, 48 * 64)
    b200 = estimate(dep(gpu=get_gpu("b200"), n_gpus=48, tp=1, dp=48, ep=48, disaggregated=True), w)
    gb200 = estimate(dep(gpu=get_gpu("gb200"), n_gpus=48, tp=1, dp=48, ep=48, disaggregated=True), w)
    assert get_gpu("gb200").gpus_per_node == 72
    # hand: 64 x 8 x 7168 x 3 B = 11.01 MB; b200: 40/48 over 37.5 GB/s = 244.7 us; gb200: 47/48
    # over 675 GB/s = 16.0 us; + 60 us each, x 58: 17.67 ms vs 4.41 ms
    assert b200.step_breakdown["comm_ms"] == pytest.approx(17.67, abs=0.01)
    assert gb200.step_breakdown["comm_ms"] == pytest.approx(4.41, abs=0.01)


def test_overlap_hides_half_the_shorter_of_compute_and_comm():
    off = estimate(_ep16(get_gpu("b200")), W_EP)
    on = estimate(_ep16(get_gpu("b200"), overlap_comm=True), W_EP)
    bd = off.step_breakdown
    # hand: body = roof + comm without overlap, max + (1 - 0.5) x min with it: the step shrinks
    # by 0.5 x min(roof, comm) = 0.5 x min(roof, 11.99 ms)
    assert off.step_s - on.step_s == pytest.approx(perf.OVERLAP_EFF * min(bd["roofline_ms"], bd["comm_ms"]) / 1e3)
    assert "overlap on" in " ".join(on.assumptions) and "overlap off" in " ".join(off.assumptions)


def test_disaggregated_pools_ttft_cost_and_speed():
    h200 = get_gpu("h200")
    w = Workload(2000, 1000, 64)
    d = Deployment(model=DS, gpu=h200, n_gpus=8, tp=8, disaggregated=True, prefill_gpus=8)
    e = estimate(d, w)
    one_domain = estimate(replace(d, gpu=h200.with_overrides(gpus_per_node=16)), w)
    # hand: the prompt's KV, 2000 x 70,272 B = 140.5 MB, crosses 50 GB/s x 0.75 = 3.748 ms when the
    # 16 GPUs span two NVLink domains, 450 GB/s x 0.75 = 0.416 ms inside one: TTFT differs by 3.332 ms
    assert e.ttft_s - one_domain.ttft_s == pytest.approx(3.332e-3, abs=1e-6)
    # every GPU-second is billed: decode pool to output, prefill pool to input
    assert e.gpu_tok_s == pytest.approx(e.output_tok_s / 16)
    assert e.usd_per_m_output == pytest.approx(8 * 3.59 / 3600 / e.output_tok_s * 1e6)
    assert e.usd_per_m_input == pytest.approx(8 * 3.59 / 3600 / (e.output_tok_s * 2000 / 1000) * 1e6)
    # the decode pool never stalls for prefill: per-user speed equals the decode-only pool's,
    # and beats aggregated serving on the same 8 GPUs
    decode_only = estimate(replace(d, prefill_gpus=0), w)
    aggregated = estimate(replace(d, prefill_gpus=0, disaggregated=False), w)
    assert e.user_tok_s == pytest.approx(decode_only.user_tok_s)
    assert e.user_tok_s > aggregated.user_tok_s
    assert e.bound == "decode"


def test_small_prefill_pool_limits_throughput():
    w = Workload(8192, 256, 4096)
    d = Deployment(model=DS, gpu=get_gpu("h200"), n_gpus=64, tp=1, dp=64, ep=64, disaggregated=True,
                   prefill_gpus=8, overlap_comm=True)
    e = estimate(d, w)
    assert e.bound == "prefill pool"
    rate = perf._prefill_rate(d.prefill_pool(), 8192, DEFAULT_CONSTANTS)
    # output is whatever the prefill pool admits: requests/s = rate / 8192, each 256 tokens
    assert e.output_tok_s == pytest.approx(rate * 256 / 8192)


def test_prefill_pool_that_cannot_hold_the_weights_does_not_fit():
    d = Deployment(model=DS, gpu=get_gpu("h200"), n_gpus=8, tp=8, disaggregated=True, prefill_gpus=1)
    e = estimate(d, Workload(2000, 100, 8))
    assert not e.fits and "prefill pool" in e.fit_note and e.gpu_tok_s is None


def test_mtp_off_is_a_warning_for_models_with_an_mtp_head():
    glm5 = Deployment(model=get_model("glm-5"), gpu=get_gpu("h200"), n_gpus=8)
    kimi = Deployment(model=get_model("kimi-k2.5"), gpu=get_gpu("h200"), n_gpus=8, precision="int4")
    assert any(a.startswith("WARNING: MTP") for a in assumptions(glm5, DEFAULT_CONSTANTS))
    assert not any("WARNING" in a for a in assumptions(kimi, DEFAULT_CONSTANTS))
    on = replace(glm5, speculative_tokens=1, acceptance=0.9)
    assert not any("WARNING" in a for a in assumptions(on, DEFAULT_CONSTANTS))


def test_user_gpu_from_toml(tmp_path):
    f = tmp_path / "gpus.toml"
    f.write_text("""
[gpus.h200x2]
display = "H200 with twice the bandwidth"
memory_gib = 141
hbm_tb_s = 9.6
bf16_tflops = 989
fp8_tflops = 1979
nvlink_gb_s = 450
network_gb_s = 50
price_per_hour = 3.0
""")
    register_gpus(load_gpu_file(f))
    try:
        w = Workload(1024, 1024, 1)
        base = estimate(Deployment(model=DS, gpu=get_gpu("h200"), n_gpus=8), w)
        fast = estimate(Deployment(model=DS, gpu=get_gpu("h200x2"), n_gpus=8), w)
    finally:
        hardware._USER_GPUS.pop("h200x2", None)
    # hand: same bytes at twice the bandwidth -> half the memory time
    assert fast.step_breakdown["memory_ms"] == pytest.approx(base.step_breakdown["memory_ms"] / 2)
    assert fast.gpu_price_per_hour == 3.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[gpus.x]\nmemory_gib = -1\n")
    with pytest.raises(ConfigError, match="gpus.x|memory_gib"):
        load_gpu_file(bad)
    bad.write_text("not = [toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gpu_file(bad)
