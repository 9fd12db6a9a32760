"""`ponder tco` end to end through typer (no network, no torch)."""

import json
import xml.etree.ElementTree as ET

import typer
from typer.testing import CliRunner

from ponder.cli import tco as tco_cli

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def make_app() -> typer.Typer:
    app = typer.Typer()
    tco_cli.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    return app


BASE = ["tco", "--model", "kimi-k2.5", "--model", "glm-4.7", "--gpu", "h200", "--gpus", "8",
        "--prompt", "8k", "--output", "1k", "--users", "1,8,64"]


def test_table_and_chart(tmp_path):
    chart = tmp_path / "c.html"
    r = runner.invoke(make_app(), [*BASE, "--precision", "int4", "--chart", str(chart)])
    assert r.exit_code == 0, r.output
    assert "kimi-k2.5" in r.output and "glm-4.7" in r.output and "tok/s/user" in r.output
    assert str(chart) in r.output.replace("\n", "")
    html = chart.read_text()
    assert "<svg" in html and "polyline" in html
    assert "<script" not in html and "cdn" not in html.lower()
    svg = html[html.index("<svg"): html.index("</svg>") + 6]
    root = ET.fromstring(svg)  # well-formed inline SVG
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}circle")) >= 6


def test_json_output(tmp_path):
    r = runner.invoke(make_app(), [*BASE, "--json", "--chart", str(tmp_path / "x.html")])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    ests = data["estimates"]
    assert len(ests) == 6
    assert {e["model"] for e in ests} == {"kimi-k2.5", "glm-4.7"}
    for e in ests:
        assert {"fits", "ttft_s", "user_tok_s", "gpu_tok_s", "usd_per_m_output"} <= set(e)
    assert data["chart"].endswith("x.html")
    assert data["pareto"]


def test_launch_commands_carry_parsers():
    r = runner.invoke(make_app(), [*BASE, "--precision", "int4", "--no-chart", "--launch", "vllm"])
    assert r.exit_code == 0, r.output
    out = r.output.replace("\n", " ")
    assert "vllm serve moonshotai/Kimi-K2.5" in out and "--tool-call-parser kimi_k2" in out
    assert "--reasoning-parser kimi_k2" in out
    assert "--tool-call-parser glm47" in out and "--reasoning-parser glm45" in out
    r = runner.invoke(make_app(), ["tco", "-m", "glm-4.7", "--no-chart", "--launch", "sglang", "--tp", "4", "--dp", "2"])
    assert r.exit_code == 0, r.output
    out = r.output.replace("\n", " ")
    assert "sglang.launch_server --model-path zai-org/GLM-4.7-FP8 --tp-size 4 --dp-size 2" in out


def test_bad_size_names_problem_and_fix():
    r = runner.invoke(make_app(), ["tco", "-m", "glm-4.7", "--prompt", "8q", "--no-chart"])
    assert r.exit_code == 2
    assert "8q" in r.output and "k = 1024" in r.output


def test_unknown_model_and_gpu_list_choices():
    r = runner.invoke(make_app(), ["tco", "-m", "gpt-9", "--no-chart"])
    assert r.exit_code == 2 and "kimi-k2.5" in r.output and "glm-4.7" in r.output
    r = runner.invoke(make_app(), ["tco", "-m", "glm-4.7", "--gpu", "tpu", "--no-chart"])
    assert r.exit_code == 2 and "h200" in r.output and "b200" in r.output
    r = runner.invoke(make_app(), ["tco", "-m", "glm-4.7", "--launch", "trt", "--no-chart"])
    assert r.exit_code == 2 and "vllm" in r.output and "sglang" in r.output


def test_user_config(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({
        "architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000,
    }))
    r = runner.invoke(make_app(), ["tco", "--config", str(cfg), "--gpu", "h100", "--gpus", "2",
                                   "--precision", "bf16", "--users", "1,4", "--json", "--no-chart"])
    assert r.exit_code == 0, r.output
    ests = json.loads(r.output)["estimates"]
    assert len(ests) == 2 and ests[0]["fits"] and ests[0]["user_tok_s"] > ests[1]["user_tok_s"]


def test_no_fit_is_reported():
    r = runner.invoke(make_app(), ["tco", "-m", "kimi-k2.5", "--gpu", "h100", "--precision", "bf16", "--no-chart"])
    assert r.exit_code == 0
    assert "does not fit" in r.output and "weights need" in r.output
