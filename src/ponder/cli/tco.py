"""`ponder tco`: what a model costs to serve, how fast it is per user, and how that moves with load."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..core.errors import ConfigError
from ..tco.arch import ModelEntry, builtin_models, custom_entry, get_model, load_config_file
from ..tco.chart import write_report
from ..tco.hardware import check_precision, get_gpu
from ..tco.launch import ENGINES, launch_command
from ..tco.perf import DEFAULT_SWEEP, Deployment, Estimate, Workload, estimate, pareto, sweep
from ..tco.sizes import parse_list, parse_size

_GPU_FIELDS = ("memory_gib", "hbm_tb_s", "bf16_tflops", "fp8_tflops", "nvlink_gb_s", "network_gb_s")


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


def _fmt_cost(v: float) -> str:
    return f"{v:,.2f}" if v >= 0.1 else f"{v:.3f}"


def run_tco(*, models: list[str], configs: list[str], gpu: str, gpus: int, prompt: str, output: str,
            users: str, precision: str, tp: int | None, ep: int, dp: int | None, gpu_price: float | None,
            kv_dtype: str, spec_tokens: int, acceptance: float, set_gpu: list[str], chart: str | None,
            no_chart: bool, as_json: bool, launch: str | None, console: Console) -> int:
    prec = check_precision(precision)
    hw = get_gpu(gpu).with_overrides(**_gpu_overrides(set_gpu))
    p_len, o_len = parse_size(prompt, "prompt length"), parse_size(output, "output length")
    user_list = parse_list(users, "users")
    entries: list[ModelEntry] = [get_model(m) for m in models] + [custom_entry(load_config_file(c)) for c in configs]
    if not entries:
        raise ConfigError(f"no model given: pass --model (one of {', '.join(sorted(builtin_models()))}) "
                          "or --config path/to/config.json")

    results: list[Estimate] = []
    series: dict[str, list[Estimate]] = {}
    launches: dict[str, tuple[str, list[str]]] = {}
    for m in entries:
        d = Deployment(model=m, gpu=hw, n_gpus=gpus, tp=tp, ep=ep, dp=dp, precision=prec, kv_dtype=kv_dtype,
                       speculative_tokens=spec_tokens, acceptance=acceptance)
        rtp, rep, rdp = d.resolved()
        results += [estimate(d, Workload(p_len, o_len, u), gpu_price=gpu_price) for u in user_list]
        grid = sorted(set(DEFAULT_SWEEP) | set(user_list))
        series[f"{m.display} {prec} {gpus}x{hw.name}"] = sweep(d, p_len, o_len, grid, gpu_price=gpu_price)
        if launch:
            launches[m.name] = launch_command(m, launch, n_gpus=gpus, tp=rtp, ep=rep, dp=rdp, precision=prec)

    chart_path: Path | None = None
    if not no_chart:
        target = chart or f"reports/tco-{time.strftime('%Y%m%d-%H%M%S')}.html"
        title = f"ponder tco: {', '.join(m.display for m in entries)} on {gpus}x {hw.display}, {prompt} in / {output} out"
        chart_path = write_report(target, series, title=title)

    if as_json:
        payload = {
            "estimates": [r.as_dict() for r in results],
            "pareto": {k: [{"users": p.users, "user_tok_s": p.user_tok_s, "gpu_tok_s": p.gpu_tok_s}
                           for p in pareto(v)] for k, v in series.items()},
            "chart": str(chart_path) if chart_path else None,
            "launch": {k: {"command": c, "notes": n} for k, (c, n) in launches.items()},
        }
        console.file.write(json.dumps(payload, indent=2) + "\n")
        return 0

    t = Table(title=f"{gpus}x {hw.display} · {prec} weights · {p_len} prompt / {o_len} output tokens "
                    f"· ${results[0].gpu_price_per_hour:.2f}/GPU-h")
    for col in ("model", "layout", "users", "fits?", "mem GiB/GPU", "TTFT", "tok/s/user", "tok/s/GPU",
                "$/1M in", "$/1M out"):
        t.add_column(col, justify="left" if col in ("model", "layout", "fits?") else "right")
    for r in results:
        fits = "[green]yes[/]" if r.fits else "[red]no[/]"
        t.add_row(r.model, f"tp{r.tp} ep{r.ep} dp{r.dp}", str(r.users), fits,
                  f"{r.weights_gib_per_gpu + r.kv_gib_per_gpu + r.activations_gib_per_gpu:.0f}/{r.usable_gib_per_gpu:.0f}",
                  f"{r.ttft_s * 1e3:,.0f} ms", f"{r.user_tok_s:,.1f}", f"{r.gpu_tok_s:,.1f}",
                  _fmt_cost(r.usd_per_m_input), _fmt_cost(r.usd_per_m_output))
    console.print(t)
    for r in results:
        if not r.fits:
            console.print(f"[red]{r.model} @ {r.users} users does not fit:[/] {r.fit_note}")
    if chart_path:
        console.print(f"Pareto chart: {chart_path}")
    for name, (cmd, notes) in launches.items():
        console.print(f"\n[bold]{name}[/] ({launch}):")
        console.print(cmd, markup=False, highlight=False, soft_wrap=True)
        for n in notes:
            console.print(f"  note: {n}", markup=False)
    return 0


def register(app: typer.Typer) -> None:
    @app.command("tco")
    def tco(
        model: list[str] = typer.Option([], "--model", "-m", help="Built-in model (repeatable): "
                                        + ", ".join(sorted(builtin_models()))),
        config: list[str] = typer.Option([], "--config", help="A Hugging Face config.json for your own model (repeatable)."),
        gpu: str = typer.Option("h200", "--gpu", help="GPU type: h100, h200, h800, h20, b200."),
        gpus: int = typer.Option(8, "--gpus", help="Number of GPUs in the deployment."),
        prompt: str = typer.Option("8k", "--prompt", help="Prompt tokens (k = 1024)."),
        output: str = typer.Option("1k", "--output", help="Output tokens per request."),
        users: str = typer.Option("1,8,64", "--users", help="Concurrent users, comma-separated."),
        precision: str = typer.Option("fp8", "--precision", help="Weights: bf16, fp8, int4 (routed experts only)."),
        tp: int | None = typer.Option(None, "--tp", help="Tensor-parallel size (default: all GPUs)."),
        ep: int = typer.Option(1, "--ep", help="Expert-parallel size (1 = experts tensor-sharded)."),
        dp: int | None = typer.Option(None, "--dp", help="Data-parallel groups (tp x dp = GPUs)."),
        gpu_price: float | None = typer.Option(None, "--gpu-price", help="$/GPU-hour (default: data file)."),
        kv_dtype: str = typer.Option("bf16", "--kv-dtype", help="KV cache dtype: bf16 or fp8."),
        spec_tokens: int = typer.Option(0, "--spec-tokens", help="Speculative (MTP/EAGLE) draft tokens per step."),
        acceptance: float = typer.Option(0.0, "--acceptance", help="Acceptance rate per draft token."),
        set_gpu: list[str] = typer.Option([], "--set-gpu", help="Override a GPU figure, e.g. hbm_tb_s=4.0."),
        chart: str | None = typer.Option(None, "--chart", help="Where to write the HTML chart (default reports/)."),
        no_chart: bool = typer.Option(False, "--no-chart", help="Do not write the HTML chart."),
        as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
        launch: str | None = typer.Option(None, "--launch", help=f"Print a serving command: {' or '.join(ENGINES)}."),
    ) -> None:
        """Plan serving cost and speed from first principles (roofline), e.g.
        `ponder tco --model kimi-k2.5 --model glm-4.7 --gpu h200 --gpus 8 --prompt 8k --output 1k --users 1,8,64`."""
        console = Console()
        try:
            code = run_tco(models=model, configs=config, gpu=gpu, gpus=gpus, prompt=prompt, output=output,
                           users=users, precision=precision, tp=tp, ep=ep, dp=dp, gpu_price=gpu_price,
                           kv_dtype=kv_dtype, spec_tokens=spec_tokens, acceptance=acceptance, set_gpu=set_gpu,
                           chart=chart, no_chart=no_chart, as_json=as_json, launch=launch, console=console)
        except ConfigError as e:
            Console(stderr=True).print(f"error: {e}", style="red", markup=False, highlight=False)
            raise typer.Exit(2) from e
        raise typer.Exit(code)
