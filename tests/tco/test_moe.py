"""Expected distinct experts (the reference table) and the torch-free MoE layer roofline."""

import pytest

from ponder.tco.moe import MoELayerShape, equal_active_shapes, expected_distinct_experts, predict_moe_layer


@pytest.mark.parametrize(
    ("e", "b", "expected"),
    [(256, 8, 57), (384, 8, 60), (160, 8, 54), (256, 32, 163), (384, 32, 188), (160, 32, 129),
     (256, 64, 222), (384, 64, 284), (160, 64, 154), (384, 128, 358)],
)
def test_reference_table(e, b, expected):
    assert expected_distinct_experts(e, 8, b) == pytest.approx(expected, abs=1.0)


def test_limits_and_monotonicity():
    assert expected_distinct_experts(384, 8, 1) == pytest.approx(8)
    assert expected_distinct_experts(384, 8, 0) == pytest.approx(8)  # a step runs at least one token
    assert expected_distinct_experts(8, 8, 5) == 8
    assert expected_distinct_experts(0, 8, 5) == 0
    vals = [expected_distinct_experts(160, 8, b) for b in (1, 2, 4, 16, 64, 1024)]
    assert vals == sorted(vals) and vals[-1] <= 160
    # same batch, more experts -> a smaller fraction of the weights is touched
    assert expected_distinct_experts(384, 8, 16) / 384 < expected_distinct_experts(160, 8, 16) / 160


def test_equal_active_shapes():
    shapes = equal_active_shapes(1024, 1024)
    act = [s.active_params for s in shapes]
    assert max(act) / min(act) < 1.1
    kimi, glm, coarse = shapes
    assert kimi.n_experts == 384 and glm.n_experts == 160 and coarse.expert_ffn == 2 * glm.expert_ffn
    assert kimi.total_params > 2 * glm.total_params


def test_predict_moe_layer_bounds():
    s = MoELayerShape("t", 1024, 384, 8, 128)
    small = predict_moe_layer(s, 1, bytes_per_param=4, mem_bw_bytes_s=10e9, flops_s=50e9)
    big = predict_moe_layer(s, 4096, bytes_per_param=4, mem_bw_bytes_s=10e9, flops_s=50e9)
    assert small.memory_s > small.compute_s  # batch 1 is bandwidth-bound
    assert big.compute_s > big.memory_s  # large batches become compute-bound
    assert small.distinct_experts == pytest.approx(8)
    assert big.predicted_s == max(big.memory_s, big.compute_s)
    # per-token cost falls as the batch shares expert weights
    assert big.predicted_s / 4096 < small.predicted_s
