"""``thermalcount simulate``: write a simulated recording with ground-truth crossings."""

from __future__ import annotations

import click

from thermalcount.cli.options import DURATION
from thermalcount.errors import UsageError


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000.0
    return ""  # pragma: no cover


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@click.command()
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Recording to write (.h5).")
@click.option("--duration", type=DURATION, default=None,
              help="How much time to simulate, e.g. 30s, 10m, 2h [default: 10m].")
@click.option("--frames", "n_frames", type=click.IntRange(min=1), default=None,
              help="Number of frames to simulate instead of --duration.")
@click.option("--scenario", default="mixed", show_default=True,
              help="Scene family; see --list-scenarios.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed gives the same recording.")
@click.option("--room", type=int, default=None,
              help="Seed of the room (fixed pattern, ambient, warm objects) [default: the seed].")
@click.option("--fps", type=click.Choice(["10", "1"]), default="10", show_default=True,
              help="Sensor frame rate.")
@click.option("--travel-axis", type=click.Choice(["rows", "columns"]), default="rows", show_default=True,
              help="Array axis along which people walk.")
@click.option("--reverse", is_flag=True, help="Mount the sensor the other way round (swaps in and out).")
@click.option("--ambient", type=float, default=None,
              help="Room temperature in °C [default: the scenario's, ~21].")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--list-scenarios", is_flag=True, help="List the scenarios and exit.")
def simulate(out, duration, n_frames, scenario, seed, room, fps, travel_axis, reverse, ambient,
             overwrite, list_scenarios):
    """Simulate people walking under the sensor and write a recording.

    The recording holds 8x8 frames like a real AMG8833 over a doorway (room background,
    fixed pattern, drift, noise, 0.25 °C steps) and the ground-truth crossings ("in" =
    towards increasing index along the travel axis), for training and for scoring counters.

    \b
    Example:
      thermalcount simulate --out sim.h5 --duration 10m --scenario busy --seed 3
      thermalcount simulate --out big.h5 --frames 1000000 --overwrite
      thermalcount simulate --list-scenarios
    """
    from thermalcount.sensors.scenarios import list_scenarios as scenario_list

    if list_scenarios:
        rows = scenario_list()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            click.echo(f"{name:<{width}}  {description}")
        return
    if not out:
        raise UsageError("give the recording to write with --out FILE.h5 (or use --list-scenarios)")
    if duration is not None and n_frames is not None:
        raise UsageError("give either --duration or --frames, not both")
    rate = float(fps)
    if n_frames is None:
        n_frames = max(1, round((600.0 if duration is None else duration) * rate))

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from thermalcount.sensors.simulator import write_simulation

    options = dict(seed=seed, fps=rate, travel_axis=travel_axis, reverse=reverse, ambient=ambient,
                   overwrite=overwrite)
    if room is not None:
        options["room"] = room
    console = Console(stderr=True)
    if console.is_terminal:
        columns = (TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} frames"),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("simulate", total=n_frames)
            result = write_simulation(out, n_frames, scenario,
                                      progress=lambda done: bar.update(task, completed=done), **options)
    else:
        result = write_simulation(out, n_frames, scenario, **options)
    click.echo(
        f"Wrote {result.frames:,} frames ({_span(result.frames / rate)} at {fps} FPS, scenario {scenario}, "
        f"seed {seed}) to {out}: {result.events_in + result.events_out:,} crossings "
        f"({result.events_in:,} in, {result.events_out:,} out), {_size(result.file_bytes)}, "
        f"{result.frames_per_second:,.0f} frames/s"
    )
