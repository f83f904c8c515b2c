"""``thermalcount bench``: latency of every stage of the live path, next to the floor."""

from __future__ import annotations

import json
import sys

import click

from thermalcount.cli.options import SEED

STAGE_LABELS = {
    "sensor_read": "sensor read (emulated part + real driver + smbus2)",
    "decode": "driver decode of the 128 raw bytes",
    "counter": "counter update",
    "light_decision": "light decision",
}
COMPARISON_LABELS = {
    "torch_original": "original PyTorch module (eager, loop of torch.norm)",
    "torch_seed": "the seed's PyTorch module at its sizes (64-32-4, 3 centroids, eager)",
    "ort_plain.exported": "bare onnxruntime, exported graph, session.run",
    "ort_bound.exported": "bare onnxruntime, exported graph, io_binding",
    "ort_bound.state_path": "bare onnxruntime, exported preprocessing + folded tail",
    "ort_bound.floor": "bare onnxruntime, folded floor (Gemm, PRelu, Gemm, ArgMin)",
    "ort_bound.one_node": "bare onnxruntime, one ArgMin node (fixed cost of a run)",
    "numpy.floor": "numpy, folded floor, preallocated",
    "timer_overhead": "timer overhead (empty call)",
}


def _label(name: str) -> str:
    if name in STAGE_LABELS:
        return STAGE_LABELS[name]
    if name in COMPARISON_LABELS:
        return COMPARISON_LABELS[name]
    kind, _, backend = name.partition(".")
    return {"inference": f"runtime inference ({backend})",
            "whole_frame": f"whole frame: decode..lights ({backend})",
            "pattern_update": f"deferred pattern update after the decision, every frame ({backend})",
            "pattern_update_steps": f"deferred pattern update, the 1 in 32 frames that run it ({backend})",
            "whole_frame_and_update": f"whole frame + its deferred update ({backend})",
            "whole_frame_with_read": f"whole frame incl. emulated read ({backend})"}.get(kind, name)


@click.command()
@click.option("--model", "model_path", default="default", show_default=True, metavar="PATH|default",
              help="ONNX model from 'thermalcount export', or 'default' for the embedded one.")
@click.option("--frames", type=click.IntRange(min=100), default=20000, show_default=True,
              help="Timed calls per variant (frames read from the emulated sensor).")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "numpy", "all"]), default="auto",
              show_default=True, help="Runtime backend(s) to measure; auto = what 'run' would use.")
@click.option("--count-frames", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Frames for the offline-counting throughput (0 skips it).")
@click.option("--no-torch", is_flag=True, help="Skip the original PyTorch module row even if torch is installed.")
@click.option("--no-startup", is_flag=True, help="Skip the start-up timing in fresh interpreters.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Simulator seed for the emulated sensor's scenes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def bench(model_path, frames, backend, count_frames, no_torch, no_startup, seed, as_json):
    """Measure per-frame latency of the live path and compare it with the floor.

    Times, in one process and interleaved: the emulated AMG8833 read through the real
    driver, the driver's decode, inference with each backend, the counter, the light
    decision and the whole frame; next to the original PyTorch module (when torch is
    installed), a bare onnxruntime session on the same graph and a hand-folded floor
    graph. Then offline-counting throughput and start-up time. Figures are p50/p90/p99/max
    in microseconds; compare ratios, not absolute times, across runs.

    \b
    Example:
      thermalcount bench
      thermalcount bench --backend all --frames 50000
      thermalcount bench --model my-model.onnx --json > bench.json
    """
    from thermalcount.bench.suite import run_bench

    def progress(message):
        if not as_json:
            click.echo(f"... {message}", err=True)

    report = run_bench(None if model_path == "default" else model_path, frames=frames, backend=backend,
                       use_torch=not no_torch, count_frames=count_frames, startup=not no_startup,
                       seed=seed, progress=progress)
    if as_json:
        click.echo(json.dumps(report))
    else:
        print_report(report)


def print_report(report: dict) -> None:
    """Rich tables (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    machine = report["machine"]
    console.print(f"[bold]thermalcount bench[/bold]  {machine['date']}  {machine['cpu']} x{machine['cores']}  "
                  f"python {machine['python']} numpy {machine['numpy']} onnxruntime {machine['onnxruntime']} "
                  f"torch {machine['torch'] or '-'}")
    if machine.get("load_average"):
        console.print(f"load average (1, 5, 15 min) before {machine['load_average']}, after "
                      f"{machine.get('load_average_after', '-')} on {machine['cores']} cores")
    model = report["model"]
    console.print(f"model {model['path']}: {len(model['nodes'])} nodes, {model['clusters']} clusters, "
                  f"latent {model['latent']}; {report['settings']['frames']:,} timed calls per row")

    def latency_table(title, rows):
        table = Table(title=title, title_justify="left")
        table.add_column("stage / variant")
        for column in ("p50 µs", "p90 µs", "p99 µs", "max µs"):
            table.add_column(column, justify="right")
        for name, stats in rows.items():
            table.add_row(_label(name), *(f"{stats[k]:.1f}" for k in ("p50_us", "p90_us", "p99_us", "max_us")))
        console.print(table)

    latency_table("Live path, one frame", report["stages"])
    latency_table("Inference, one frame, same run", report["comparison"])
    if report.get("with_torch"):
        latency_table("Original PyTorch module against the runtime (torch loaded last, own loop)",
                      report["with_torch"])
    if report.get("whole_frame_alone"):
        latency_table("Whole frame on its own", report["whole_frame_alone"])
    if report.get("head_to_head"):
        latency_table("Runtime against the folded floor, head to head", report["head_to_head"])
    for name, reason in report["skipped"].items():
        console.print(f"[yellow]skipped[/yellow] {_label(name)}: {reason}")

    ratios = Table(title="Ratios (same run)", title_justify="left")
    ratios.add_column("ratio")
    ratios.add_column("value", justify="right")
    for name, value in report["ratios"].items():
        ratios.add_row(name, f"{value:.2f}x")
    console.print(ratios)
    agreement = ", ".join(f"{name} {a['same_state']}/{a['frames']}" for name, a in report["agreement"].items())
    console.print(f"states agreeing with the runtime on the benchmark frames: {agreement}")
    for name, room in report["headroom"].items():
        console.print(f"headroom {_label(name)}: p99 {room['p99_us']:.1f} µs = "
                      f"{room['x_under_original_30ms']:,.0f}x under the original design's 30 ms per frame, "
                      f"{room['x_under_frame_period_100ms']:,.0f}x under the 100 ms frame period")
    for name, figures in report.get("throughput", {}).items():
        console.print(f"offline count ({name}): {figures['frames']:,} frames in {figures['seconds']:.2f} s = "
                      f"{figures['frames_per_second']:,} frames/s ({figures['events']} events)")
    for name, figures in report.get("startup", {}).items():
        if "error" in figures:
            console.print(f"start-up ({name}): failed: {figures['error']}")
            continue
        console.print(f"start-up ({name}): import {figures['import_ms']:.0f} ms + load {figures['load_ms']:.0f} ms"
                      f" + first inference {figures['first_inference_ms']:.1f} ms; whole process "
                      f"{figures['process_ms']:.0f} ms; torch imported: {figures['torch_imported']}")

    figures = report.get("target_figures", {})
    count = figures.get("count")
    if count and "error" not in count:
        console.print(f"`thermalcount count` in its own process ({count['backend']}): {count['frames']:,} frames in "
                      f"{count['seconds']:.2f} s = {count['frames_per_second']:,} frames/s, peak RSS "
                      f"{count['peak_rss_mib']:.0f} MiB")
    for name, row in figures.get("startup", {}).items():
        if "error" not in row:
            console.print(f"start-up ({name}), import + load: median {row['median_s'] * 1e3:.0f} ms of "
                          f"{', '.join(f'{r * 1e3:.0f}' for r in row['runs_s'])} ms")
    if "median_s" in figures.get("run_help", {}):
        console.print(f"`thermalcount run --help`: median {figures['run_help']['median_s'] * 1e3:.0f} ms")
    from thermalcount.bench.targets import format_table

    # Plain text, not a rich table: the verdicts must read the same in a log or a terminal.
    click.echo("")
    click.echo(format_table(report["targets"]))
