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


def test_no_fit_rows_have_no_speed_or_price_and_a_suggestion():
    # Kimi K2.5 at FP8 on 8x H200 with 8k prompts: 1 user fits, 8 and 64 do not (KV-bound)
    r = runner.invoke(make_app(), ["tco", "-m", "kimi-k2.5", "--gpu", "h200", "--precision", "fp8",
                                   "--users", "1,8,64", "--json", "--no-chart"])
    assert r.exit_code == 0, r.output
    ests = {e["users"]: e for e in json.loads(r.output)["estimates"]}
    assert ests[1]["fits"] and ests[1]["usd_per_m_output"] > 0
    for u in (8, 64):
        e = ests[u]
        assert not e["fits"]
        assert all(e[k] is None for k in ("ttft_s", "user_tok_s", "gpu_tok_s", "usd_per_m_input", "usd_per_m_output"))
        assert "--precision int4" in e["suggestion"]
    r = runner.invoke(make_app(), ["tco", "-m", "kimi-k2.5", "--gpu", "h200", "--users", "64", "--no-chart"])
    out = r.output.replace("\n", " ")
    assert "does not fit" in out and "smallest change that fits" in out and "$" not in out.split("does not fit")[1][:40]


def test_assumptions_printed_and_in_json():
    args = ["tco", "-m", "glm-5", "--gpu", "b200", "--gpus", "16", "--tp", "1", "--dp", "16", "--ep", "16",
            "--users", "64", "--no-chart"]
    r = runner.invoke(make_app(), args)
    assert r.exit_code == 0, r.output
    out = r.output.replace("\n", " ")
    assert "Assumptions" in out and "inter-node network" in out and "overlap off" in out
    assert "WARNING: MTP" in out and "sparse attention (DSA)" in out
    data = json.loads(runner.invoke(make_app(), [*args, "--json"]).output)
    a = " ".join(data["deployments"][0]["assumptions"])
    assert "inter-node network" in a and "WARNING: MTP" in a
    r = runner.invoke(make_app(), [*args, "--gpus-per-node", "16", "--overlap", "--spec-tokens", "1",
                                   "--acceptance", "0.9", "--json"])
    a = " ".join(json.loads(r.output)["deployments"][0]["assumptions"])
    assert "over NVLink" in a and "overlap on" in a and "WARNING" not in a


def test_disaggregate_flag():
    base = ["tco", "-m", "deepseek-r1", "--gpu", "h200", "--tp", "8", "--users", "64", "--prompt", "2000",
            "--output", "1000", "--json", "--no-chart"]
    agg = json.loads(runner.invoke(make_app(), [*base, "--gpus", "8"]).output)["estimates"][0]
    dis = json.loads(runner.invoke(make_app(), [*base, "--disaggregate", "8:8"]).output)["estimates"][0]
    assert dis["prefill_gpus"] == 8 and dis["n_gpus"] == 8
    assert dis["user_tok_s"] > agg["user_tok_s"]  # no prefill stalls in the decode pool
    r = runner.invoke(make_app(), [*base, "--disaggregate", "8"])
    assert r.exit_code == 2 and "P:D" in r.output
    r = runner.invoke(make_app(), [*base, "--disaggregate", "8:8", "--gpus", "8"])
    assert r.exit_code == 2 and "disagrees" in r.output


def test_precision_flags_through_cli():
    base = ["tco", "-m", "deepseek-v3", "--gpu", "b200", "--users", "1", "--json", "--no-chart"]
    fp8 = json.loads(runner.invoke(make_app(), base).output)["estimates"][0]
    fp4 = json.loads(runner.invoke(make_app(), [*base, "--precision", "fp4"]).output)["estimates"][0]
    mixed = json.loads(runner.invoke(make_app(), [*base, "--attn-precision", "bf16", "--moe-precision", "fp8"]).output)
    assert fp8["weights_gib_per_gpu"] - fp4["weights_gib_per_gpu"] > 33  # 33.32 GiB, see test_flags.py
    assert mixed["estimates"][0]["attn_precision"] == "bf16"
    r = runner.invoke(make_app(), ["tco", "-m", "deepseek-v3", "--gpu", "h200", "--precision", "fp4", "--no-chart"])
    assert r.exit_code == 2 and "FP4" in r.output and "b200" in r.output


def test_plot_svg_and_multi_gpu(tmp_path):
    out = tmp_path / "p.svg"
    r = runner.invoke(make_app(), ["tco", "-m", "glm-5", "-m", "deepseek-v4-flash", "--gpu", "h200,b200",
                                   "--no-chart", "--plot", str(out)])
    assert r.exit_code == 0, r.output
    root = ET.fromstring(out.read_text())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.findall(f".//{ns}polyline")) == 4  # one Pareto curve per model x GPU
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "tokens/s per user" in texts and "tokens/s per GPU" in texts


def test_list_and_validate():
    r = runner.invoke(make_app(), ["tco", "--list"])
    assert r.exit_code == 0, r.output
    for name in ("glm-5", "deepseek-v4-pro", "deepseek-r1", "kimi-k2.6", "kimi-k3", "gb200", "b300"):
        assert name in r.output
    assert "Not available" in r.output
    r = runner.invoke(make_app(), ["tco", "--validate"])
    assert r.exit_code == 0, r.output
    assert "Leave-one-out" in r.output and "dsv3-sglang-gb200-decode-ep48-fp4" in r.output


def test_help_documents_every_assumption():
    r = runner.invoke(make_app(), ["tco", "--help"])
    text = " ".join(r.output.split())
    for phrase in ("NVLink domain", "inter-node network", "overlap", "--disaggregate", "MTP", "fp4",
                   "uniform expert routing", "does not fit"):
        assert phrase in text, phrase
