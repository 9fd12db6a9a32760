"""Serving-cost planner: architecture specs, hardware, a roofline serving model, validation.

Imports only `ponder.core` and its own data (no engines, no models).
"""

from .arch import (
    Architecture,
    ModelEntry,
    builtin_models,
    custom_entry,
    from_hf_config,
    get_model,
    load_config_file,
)
from .chart import pareto_svg, svg_chart
from .hardware import GPU, PRECISIONS, builtin_gpus, get_gpu, gpu_names, load_gpu_file, weight_bytes
from .moe import MoELayerShape, equal_active_shapes, expected_distinct_experts, predict_moe_layer
from .perf import DEFAULT_SWEEP, Deployment, Estimate, Workload, estimate, pareto, sweep
from .sizes import parse_list, parse_size
from .validation import TOLERANCE, run_validation

__all__ = [
    "Architecture", "ModelEntry", "builtin_models", "custom_entry", "from_hf_config", "get_model", "load_config_file",
    "GPU", "PRECISIONS", "builtin_gpus", "get_gpu", "gpu_names", "load_gpu_file", "weight_bytes",
    "pareto_svg", "svg_chart",
    "MoELayerShape", "equal_active_shapes", "expected_distinct_experts", "predict_moe_layer",
    "DEFAULT_SWEEP", "Deployment", "Estimate", "Workload", "estimate", "pareto", "sweep",
    "parse_list", "parse_size", "TOLERANCE", "run_validation",
]
