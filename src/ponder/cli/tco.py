"""`ponder tco`: what a model costs to serve, how fast it is per user, and how that moves with load."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..core.errors import ConfigError
from ..tco.arch import (
    ModelEntry,
    builtin_models,
    custom_entry,
    get_model,
    load_config_file,
    unavailable_models,
)
from ..tco.chart import write_report, write_svg
from ..tco.hardware import (
    GPU,
    builtin_gpus,
    check_precision,
    get_gpu,
    gpu_names,
    load_gpu_file,
    register_gpus,
)
from ..tco.launch import ENGINES, launch_command
from ..tco.perf import DEFAULT_SWEEP, Deployment, Estimate, Workload, estimate, pareto, sweep
from ..tco.sizes import parse_list, parse_size

_GPU_FIELDS = ("memory_gib", "hbm_tb_s", "bf16_tflops", "fp8_tflops", "fp4_tflops", "nvlink_gb_s", "network_gb_s",
               "gpus_per_node")

HELP = """Plan serving cost and speed from first principles (a per-operation roofline), e.g.
`ponder tco -m kimi-k2.5 -m glm-5 --gpu h200,b200 --gpus 8 --prompt 8k --output 1k --users 1,8,64 --plot out.svg`.

\b
Assumptions the planner makes on its own (each is printed with the results and in --json):
- link: TP all-reduce and the expert all-to-all use NVLink while the GPUs fit in one NVLink
  domain (--gpus-per-node: 8 for HGX, 72 for gb200), else the inter-node network
  (--inter-node-gb-s, 50 GB/s per GPU by default = 400 Gb/s ConnectX-7).
- overlap: compute-communication overlap is OFF unless --overlap (two-batch overlap hiding
  half of the shorter of compute and communication).
- serving: aggregated (each user's prefill stalls its group's decode) unless
  --disaggregate P:D (P prefill GPUs + D decode GPUs; prefill-pool cost billed to input tokens).
- speculation: MTP/speculative decoding is OFF unless --spec-tokens/--acceptance; a model that
  ships an MTP layer gets a WARNING line.
- precision: --precision is shorthand for (attention/dense, routed experts): bf16=(bf16,bf16),
  fp8=(fp8,fp8), int4=(bf16, int4 W4A16 at the BF16 rate), fp4=(fp8, NVFP4 at the FP4 rate; GPUs
  with FP4 only); --attn-precision / --moe-precision override either half; embeddings and lm_head
  stay BF16; attention runs at the KV cache's precision (--kv-dtype).
- always: uniform expert routing (no imbalance), no queueing, TTFT of one request on an idle
  group, 90% of HBM usable, 8k-token prefill chunks, named efficiencies (docs/tco.md).
A configuration that does not fit prints "does not fit", no speed or price, and the smallest
change that fits. `--list` shows models (and those that cannot be planned) and GPUs;
`--validate` prints the validation table and the leave-one-out check of fitted constants."""


def _gpu_overrides(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items:
        key, sep, val = it.partition("=")
        key = key.strip()
        if not sep or key not in _GPU_FIELDS:
            raise ConfigError(f"bad --set-gpu {it!r}: use KEY=NUMBER with KEY one of {', '.join(_GPU_FIELDS)}")
        try:
            out[key] = float(val)
        except ValueError as e:
            raise ConfigError(f"bad --set-gpu {it!r}: {val!r} is not a number") from e
    return out


def parse_disaggregate(text: str) -> tuple[int, int]:
    """'8:24' -> (8 prefill GPUs, 24 decode GPUs)."""
    p, sep, d = text.partition(":")
    try:
        pi, di = int(p), int(d)
    except ValueError:
        pi = di = 0
    if not sep or pi < 1 or di < 1:
        raise ConfigError(f"bad --disaggregate {text!r}: use P:D, prefill and decode GPU counts, e.g. 8:24")
    return pi, di


def _fmt_cost(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.2f}" if v >= 0.1 else f"{v:.3f}"


def _fmt(v: float | None, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    return "—" if v is None else format(v * scale, fmt) + unit


@dataclass
class TcoRequest:
    models: list[str]
    configs: list[str] = field(default_factory=list)
    gpus_list: list[str] = field(default_factory=lambda: ["h200"])
    gpus: int | None = None
    disaggregate: str | None = None
    prompt: str = "8k"
    output: str = "1k"
    users: str = "1,8,64"
    precision: str = "fp8"
    attn_precision: str | None = None
    moe_precision: str | None = None
    tp: int | None = None
    ep: int = 1
    dp: int | None = None
    overlap: bool = False
    gpus_per_node: int | None = None
    inter_node_gb_s: float | None = None
    gpu_price: float | None = None
    kv_dtype: str = "bf16"
    spec_tokens: int = 0
    acceptance: float = 0.0
    set_gpu: list[str] = field(default_factory=list)
    gpu_file: str | None = None
    chart: str | None = None
    no_chart: bool = False
    plot: str | None = None
    as_json: bool = False
    launch: str | None = None


def _hardware(req: TcoRequest) -> list[GPU]:
    if req.gpu_file:
        register_gpus(load_gpu_file(req.gpu_file))
    names = [g for item in req.gpus_list for g in item.split(",") if g.strip()]
    if not names:
        raise ConfigError("no GPU given: pass --gpu, e.g. --gpu h200 or --gpu h200,b200")
    over = _gpu_overrides(req.set_gpu)
    if req.gpus_per_node is not None:
        over["gpus_per_node"] = req.gpus_per_node
    if req.inter_node_gb_s is not None:
        over["network_gb_s"] = req.inter_node_gb_s
    return [get_gpu(n).with_overrides(**over) for n in dict.fromkeys(n.strip() for n in names)]


def check_counts(req: TcoRequest) -> None:
    """GPU counts and layout sizes are whole numbers of at least 1 (0 would divide by zero
    deep in the planner, and `--gpus 0` used to mean the default 8)."""
    for flag, value in (("--gpus", req.gpus), ("--tp", req.tp), ("--ep", req.ep), ("--dp", req.dp),
                        ("--gpus-per-node", req.gpus_per_node)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1 (got {value}); leave it out for the default")
    if req.inter_node_gb_s is not None and not req.inter_node_gb_s > 0:
        raise ConfigError(f"--inter-node-gb-s must be greater than 0 (got {req.inter_node_gb_s:g}), e.g. 50 for 400 Gb/s")
    if req.gpu_price is not None and not req.gpu_price >= 0:
        raise ConfigError(f"--gpu-price must be at least 0 $/GPU-hour (got {req.gpu_price:g})")
    if req.spec_tokens < 0:
        raise ConfigError(f"--spec-tokens must be at least 0 (got {req.spec_tokens})")


def run_tco(req: TcoRequest, console: Console) -> int:
    check_counts(req)
    prec = check_precision(req.precision)
    hws = _hardware(req)
    p_len, o_len = parse_size(req.prompt, "prompt length"), parse_size(req.output, "output length")
    user_list = parse_list(req.users, "users")
    entries: list[ModelEntry] = [get_model(m) for m in req.models] + [custom_entry(load_config_file(c))
                                                                      for c in req.configs]
    if not entries:
        raise ConfigError(f"no model given: pass --model (one of {', '.join(sorted(builtin_models()))}) "
                          "or --config path/to/config.json; `ponder tco --list` shows all")
    prefill_gpus, n_gpus = 0, req.gpus or 8
    if req.disaggregate:
        prefill_gpus, n_gpus = parse_disaggregate(req.disaggregate)
        if req.gpus is not None and req.gpus != prefill_gpus + n_gpus:
            raise ConfigError(f"--gpus {req.gpus} disagrees with --disaggregate {req.disaggregate} "
                              f"({prefill_gpus + n_gpus} GPUs); drop --gpus")

    results: list[Estimate] = []
    series: dict[str, list[Estimate]] = {}
    launches: dict[str, tuple[str, list[str]]] = {}
    deployments: list[dict[str, object]] = []
    for m in entries:
        for hw in hws:
            d = Deployment(model=m, gpu=hw, n_gpus=n_gpus, tp=req.tp, ep=req.ep, dp=req.dp, precision=prec,
                           attn_precision=req.attn_precision, moe_precision=req.moe_precision, kv_dtype=req.kv_dtype,
                           speculative_tokens=req.spec_tokens, acceptance=req.acceptance,
                           disaggregated=bool(prefill_gpus), prefill_gpus=prefill_gpus, overlap_comm=req.overlap)
            rtp, rep, rdp = d.resolved()
            ests = [estimate(d, Workload(p_len, o_len, u), gpu_price=req.gpu_price) for u in user_list]
            results += ests
            grid = sorted(set(DEFAULT_SWEEP) | set(user_list))
            label = f"{m.display} {prec} " + (f"{prefill_gpus}P+{n_gpus}D " if prefill_gpus else f"{n_gpus}x") + hw.name
            series[label] = sweep(d, p_len, o_len, grid, gpu_price=req.gpu_price)
            deployments.append({"model": m.name, "gpu": hw.name, "label": label, "layout":
                                {"tp": rtp, "ep": rep, "dp": rdp, "decode_gpus": n_gpus, "prefill_gpus": prefill_gpus},
                                "assumptions": ests[0].assumptions})
            if req.launch and m.name not in launches:
                cmd, notes = launch_command(m, req.launch, n_gpus=n_gpus, tp=rtp, ep=rep, dp=rdp, precision=prec)
                if prefill_gpus:
                    notes = [*notes, f"this is the decode pool's server ({n_gpus} GPUs); disaggregated serving also needs "
                             f"a {prefill_gpus}-GPU prefill server and the engine's PD flags "
                             "(SGLang --disaggregation-mode prefill|decode, vLLM a KV connector)"]
                launches[m.name] = (cmd, notes)

    title = (f"ponder tco: {', '.join(m.display for m in entries)} on {', '.join(h.display for h in hws)}, "
             f"{req.prompt} in / {req.output} out")
    chart_path: Path | None = None
    if not req.no_chart:
        target = req.chart or f"reports/tco-{time.strftime('%Y%m%d-%H%M%S')}.html"
        chart_path = write_report(target, series, title=title)
    plot_path = write_svg(req.plot, series, title=title) if req.plot else None

    if req.as_json:
        payload = {
            "estimates": [r.as_dict() for r in results],
            "deployments": deployments,
            "pareto": {k: [{"users": p.users, "user_tok_s": p.user_tok_s, "gpu_tok_s": p.gpu_tok_s}
                           for p in pareto(v)] for k, v in series.items()},
            "chart": str(chart_path) if chart_path else None,
            "plot": str(plot_path) if plot_path else None,
            "launch": {k: {"command": c, "notes": n} for k, (c, n) in launches.items()},
        }
        console.file.write(json.dumps(payload, indent=2) + "\n")
        return 0

    pool = f"{prefill_gpus} prefill + {n_gpus} decode GPUs" if prefill_gpus else f"{n_gpus} GPUs"
    t = Table(title=f"{pool} · {prec} weights · {p_len} prompt / {o_len} output tokens")
    for col in ("model", "gpu", "layout", "users", "fits?", "mem GiB/GPU", "TTFT", "tok/s/user", "tok/s/GPU",
                "$/1M in", "$/1M out"):
        t.add_column(col, justify="left" if col in ("model", "gpu", "layout", "fits?") else "right")
    for r in results:
        fits = "[green]yes[/]" if r.fits else "[red]does not fit[/]"
        t.add_row(r.model, f"{r.gpu} ${r.gpu_price_per_hour:.2f}/h", f"tp{r.tp} ep{r.ep} dp{r.dp}", str(r.users), fits,
                  f"{r.weights_gib_per_gpu + r.kv_gib_per_gpu + r.activations_gib_per_gpu:.0f}/{r.usable_gib_per_gpu:.0f}",
                  _fmt(r.ttft_s, ",.0f", 1e3, " ms"), _fmt(r.user_tok_s, ",.1f"), _fmt(r.gpu_tok_s, ",.1f"),
                  _fmt_cost(r.usd_per_m_input), _fmt_cost(r.usd_per_m_output))
    console.print(t)
    for r in results:
        if not r.fits:
            console.print(f"[red]{r.model} on {r.gpu} @ {r.users} users does not fit:[/] {r.fit_note}", highlight=False)
            console.print(f"  smallest change that fits: {r.suggestion}", markup=False, highlight=False)
        elif r.bound == "prefill pool":
            console.print(f"{r.model} on {r.gpu} @ {r.users} users is limited by the prefill pool: add prefill GPUs",
                          markup=False, highlight=False)
    for dep in deployments:
        console.print(f"\n[bold]Assumptions[/] ({dep['label']}):", highlight=False)
        for line in dep["assumptions"]:  # type: ignore[attr-defined]
            style = "yellow" if str(line).startswith("WARNING") else None
            console.print(f"  - {line}", markup=False, highlight=False, style=style)
    if chart_path:
        console.print(f"\nPareto chart (HTML): {chart_path}")
    if plot_path:
        console.print(f"Pareto chart (SVG): {plot_path}")
    for name, (cmd, notes) in launches.items():
        console.print(f"\n[bold]{name}[/] ({req.launch}):")
        console.print(cmd, markup=False, highlight=False, soft_wrap=True)
        for n in notes:
            console.print(f"  note: {n}", markup=False)
    return 0


def print_list(console: Console) -> None:
    t = Table(title="models ponder tco can plan")
    for col in ("name", "architecture", "total / active params", "KV bytes/token (bf16)", "MTP", "notes"):
        t.add_column(col)
    for name, m in sorted(builtin_models().items()):
        a = m.arch
        kind = {"mla": "MLA", "gqa": "GQA", "dsa": "MLA + sparse attention (DSA)",
                "csa": "hybrid CSA/HCA compressed attention"}[a.attention]
        notes = (f"alias of {m.alias_of}" if m.alias_of else "; ".join(m.notes[:1]))
        t.add_row(name, f"{kind}, {a.n_experts} experts top-{a.top_k}" if a.is_moe else kind,
                  f"{a.total_params() / 1e9:,.0f}B / {a.active_params() / 1e9:,.1f}B",
                  f"{a.kv_bytes_per_token():,.0f}", str(a.n_mtp_layers), notes)
    console.print(t)
    console.print("\n[bold]Not available[/] (no public or verified config.json):")
    for name, why in unavailable_models().items():
        console.print(f"  {name}: {why}", markup=False, highlight=False)
    g = Table(title="\nGPUs (add your own: --gpu-file gpus.toml with \\[gpus.NAME] tables)")
    for col in ("name", "memory GB", "HBM TB/s", "BF16/FP8/FP4 TFLOP/s", "NVLink GB/s", "NVLink domain",
                "network GB/s", "$/h", "price source"):
        g.add_column(col)
    seen = set()
    for name in gpu_names():
        gpu = get_gpu(name)
        if gpu.name in seen:
            continue
        seen.add(gpu.name)
        g.add_row(gpu.name, f"{gpu.memory_gib:g}", f"{gpu.hbm_tb_s:g}",
                  f"{gpu.bf16_tflops:g}/{gpu.fp8_tflops:g}/{gpu.fp4_tflops or '—'}", f"{gpu.nvlink_gb_s:g}",
                  str(gpu.gpus_per_node), f"{gpu.network_gb_s:g}", f"{gpu.price_per_hour:.2f}", gpu.price_source)
    console.print(g)


def register(app: typer.Typer) -> None:
    @app.command("tco", help=HELP)
    def tco(
        model: list[str] = typer.Option([], "--model", "-m", help="Built-in model (repeatable): "
                                        + ", ".join(sorted(builtin_models()))),
        config: list[str] = typer.Option([], "--config", help="A Hugging Face config.json for your own model (repeatable)."),
        gpu: list[str] = typer.Option(["h200"], "--gpu", help="GPU type(s), comma-separated or repeated: "
                                      + ", ".join(sorted({g.name for g in builtin_gpus().values()})) + "."),
        gpu_file: str | None = typer.Option(None, "--gpu-file", help="TOML file of your own GPUs: \\[gpus.NAME] tables "
                                            "with memory_gib, hbm_tb_s, bf16_tflops, fp8_tflops, fp4_tflops, "
                                            "nvlink_gb_s, network_gb_s, gpus_per_node, price_per_hour."),
        gpus: int | None = typer.Option(None, "--gpus", help="Number of GPUs in the deployment (default 8)."),
        disaggregate: str | None = typer.Option(None, "--disaggregate", help="P:D -- P prefill GPUs and D decode GPUs "
                                                "(separate pools; --tp/--ep/--dp lay out the decode pool)."),
        prompt: str = typer.Option("8k", "--prompt", help="Prompt tokens (k = 1024)."),
        output: str = typer.Option("1k", "--output", help="Output tokens per request."),
        users: str = typer.Option("1,8,64", "--users", help="Concurrent users, comma-separated."),
        precision: str = typer.Option("fp8", "--precision", help="Weights: bf16, fp8, int4 (routed experts only, rest "
                                      "bf16), fp4 (NVFP4 routed experts, rest fp8; needs an FP4 GPU)."),
        attn_precision: str | None = typer.Option(None, "--attn-precision", help="Override the attention/dense/shared "
                                                  "weights' precision (bf16, fp8, int4, fp4)."),
        moe_precision: str | None = typer.Option(None, "--moe-precision", help="Override the routed experts' precision "
                                                 "(bf16, fp8, int4, fp4)."),
        tp: int | None = typer.Option(None, "--tp", help="Tensor-parallel size (default: all GPUs)."),
        ep: int = typer.Option(1, "--ep", help="Expert-parallel size (1 = experts tensor-sharded)."),
        dp: int | None = typer.Option(None, "--dp", help="Data-parallel groups (tp x dp = GPUs)."),
        overlap: bool = typer.Option(False, "--overlap", help="Two-batch compute-communication overlap (default off)."),
        gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", help="GPUs per NVLink domain (default: the "
                                                 "GPU's, 8 for HGX, 72 for gb200)."),
        inter_node_gb_s: float | None = typer.Option(None, "--inter-node-gb-s", help="Scale-out link per GPU per "
                                                     "direction in GB/s (default: the GPU's, 50 = 400 Gb/s)."),
        gpu_price: float | None = typer.Option(None, "--gpu-price", help="$/GPU-hour (default: data file)."),
        kv_dtype: str = typer.Option("bf16", "--kv-dtype", help="KV cache dtype: bf16 or fp8."),
        spec_tokens: int = typer.Option(0, "--spec-tokens", help="Speculative (MTP/EAGLE) draft tokens per step."),
        acceptance: float = typer.Option(0.0, "--acceptance", help="Acceptance rate per draft token."),
        set_gpu: list[str] = typer.Option([], "--set-gpu", help="Override a GPU figure, e.g. hbm_tb_s=4.0."),
        chart: str | None = typer.Option(None, "--chart", help="Where to write the HTML chart (default reports/)."),
        no_chart: bool = typer.Option(False, "--no-chart", help="Do not write the HTML chart."),
        plot: str | None = typer.Option(None, "--plot", help="Write the Pareto chart (tok/s per user vs per GPU) as SVG."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures and assumptions as JSON."),
        launch: str | None = typer.Option(None, "--launch", help=f"Print a serving command: {' or '.join(ENGINES)}."),
        list_: bool = typer.Option(False, "--list", help="List models (and those that cannot be planned) and GPUs."),
        validate: bool = typer.Option(False, "--validate", help="Print the validation table and the leave-one-out "
                                      "check of the fitted constants."),
    ) -> None:
        console = Console()
        try:
            if gpu_file:
                register_gpus(load_gpu_file(gpu_file))
            if list_:
                print_list(console)
                raise typer.Exit(0)
            if validate:
                from ..tco.validation import report

                console.print(report(), markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(0)
            req = TcoRequest(
                models=model, configs=config, gpus_list=gpu, gpus=gpus, disaggregate=disaggregate, prompt=prompt,
                output=output, users=users, precision=precision, attn_precision=attn_precision,
                moe_precision=moe_precision, tp=tp, ep=ep, dp=dp, overlap=overlap, gpus_per_node=gpus_per_node,
                inter_node_gb_s=inter_node_gb_s, gpu_price=gpu_price, kv_dtype=kv_dtype, spec_tokens=spec_tokens,
                acceptance=acceptance, set_gpu=set_gpu, gpu_file=None, chart=chart, no_chart=no_chart, plot=plot,
                as_json=as_json, launch=launch,
            )
            code = run_tco(req, console)
        except (ConfigError, ValueError) as e:
            Console(stderr=True).print(f"error: {e}", style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        raise typer.Exit(code)
