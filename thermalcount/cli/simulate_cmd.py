"""``thermalcount simulate``: write a simulated recording with ground-truth crossings, or
(``--stats``) measure a simulated or recorded doorway the way real recordings were measured."""

from __future__ import annotations

import json
import math
import shutil
import sys

import click

from thermalcount.cli.options import DURATION, FRAME_COUNT, FiniteFloat, SEED
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
@click.option("--frames", "n_frames", type=FRAME_COUNT, default=None,
              help="Number of frames to simulate instead of --duration.")
@click.option("--scenario", default="mixed", show_default=True,
              help="Scene family; see --list-scenarios.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Random seed: the same seed gives the same recording.")
@click.option("--room", type=SEED, default=None,
              help="Seed of the room (fixed pattern, ambient, warm objects) [default: the seed].")
@click.option("--fps", type=click.Choice(["10", "1"]), default="10", show_default=True,
              help="Sensor frame rate.")
@click.option("--travel-axis", type=click.Choice(["rows", "columns"]), default="rows", show_default=True,
              help="Array axis along which people walk (with --stats --from: for a recording "
                   "that does not store it).")
@click.option("--reverse", is_flag=True, help="Mount the sensor the other way round (swaps in and out).")
@click.option("--ambient", type=FiniteFloat(0, 60), default=None,
              help="Room temperature in °C, 0-60 (the AMG8833 measures 0-80) [default: the scenario's, ~21].")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--list-scenarios", is_flag=True, help="List the scenarios and exit.")
@click.option("--stats", is_flag=True,
              help="Realism check: simulate in memory (or read --from) and print the scene's "
                   "figures, measured as the real reference recordings were, next to the real ones.")
@click.option("--from", "source", type=click.Path(dir_okay=False), default=None,
              help="With --stats: measure this recording (it needs ground-truth crossings) "
                   "instead of simulating.")
@click.option("--json", "as_json", is_flag=True, help="With --stats: print one JSON object instead of tables.")
@click.pass_context
def simulate(ctx, out, duration, n_frames, scenario, seed, room, fps, travel_axis, reverse, ambient,
             overwrite, list_scenarios, stats, source, as_json):
    """Simulate people walking under the sensor and write a recording.

    The recording holds 8x8 frames like a real AMG8833 over a doorway (room background,
    fixed pattern, drift, noise, 0.25 °C steps) and the ground-truth crossings ("in" =
    towards increasing index along the travel axis), for training and for scoring counters.

    With --stats it writes nothing: it simulates in memory (or reads --from a recording with
    ground truth) and prints the realism check, the scene measured by the method of the real
    reference recordings next to their figures (docs/simulator.md, "Realism check").

    \b
    Example:
      thermalcount simulate --out sim.h5 --duration 10m --scenario busy --seed 3
      thermalcount simulate --out big.h5 --frames 1000000 --overwrite
      thermalcount simulate --list-scenarios
      thermalcount simulate --stats --scenario mixed --seed 0
      thermalcount simulate --stats --from doorway.h5 --travel-axis columns
    """
    from thermalcount.sensors.sim.scenarios import list_scenarios as scenario_list

    if list_scenarios:
        rows = scenario_list()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            click.echo(f"{name:<{width}}  {description}")
        return
    if duration is not None and n_frames is not None:
        raise UsageError("give either --duration or --frames, not both")
    if not stats:
        for given, name in ((source, "--from"), (as_json, "--json")):
            if given:
                raise UsageError(f"{name} goes with --stats (the realism check)")
    if stats:
        _check_stats_options(ctx, out, source)
        if source is None:
            stats_of_simulation(scenario, seed, room, float(fps), travel_axis, reverse, ambient,
                                _frame_count(duration, n_frames, float(fps)), as_json)
        else:
            given_axis = travel_axis if _given(ctx, "travel_axis") else None
            stats_of_recording(source, given_axis, as_json)
        return
    if not out:
        raise UsageError("give the recording to write with --out FILE.h5 (or use --stats or --list-scenarios)")
    rate = float(fps)
    n_frames = _frame_count(duration, n_frames, rate)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from thermalcount.sensors.sim.simulator import write_simulation

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


def _frame_count(duration, n_frames, rate: float) -> int:
    if n_frames is not None:
        return n_frames
    return max(1, round((600.0 if duration is None else duration) * rate))


# ------------------------------------------------------------------------ the realism check

#: Options that describe a simulation, so they mean nothing when measuring --from a file.
_SIMULATION_ONLY = ("duration", "n_frames", "scenario", "seed", "room", "fps", "reverse", "ambient")


def _given(ctx, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _check_stats_options(ctx, out, source) -> None:
    if out:
        raise UsageError("--stats measures in memory and writes nothing; write the recording "
                         "without --stats, then measure it with --stats --from FILE.h5")
    if ctx.params.get("overwrite"):
        raise UsageError("--overwrite goes with --out, not --stats")
    if source is not None:
        given = [name for name in _SIMULATION_ONLY if _given(ctx, name)]
        if given:
            flag = "--" + {"n_frames": "frames"}.get(given[0], given[0]).replace("_", "-")
            raise UsageError(f"{flag} describes a simulation; --from measures the recording as it is")


def stats_of_simulation(scenario, seed, room, rate, travel_axis, reverse, ambient, n_frames,
                        as_json) -> None:
    """Simulate ``n_frames`` in memory and print their realism check."""
    from thermalcount.sensors.sim.scene_stats import measure
    from thermalcount.sensors.sim.simulator import Simulator

    options = dict(seed=seed, fps=rate, travel_axis=travel_axis, reverse=reverse, ambient=ambient)
    if room is not None:
        options["room"] = room
    sim = Simulator(scenario, **options)
    chunk = sim.generate(n_frames)
    stats = measure(chunk.frames, [event.frame for event in chunk.events], sim.fps, sim.travel_axis)
    _report(stats, f"simulated {scenario}, seed {seed}" + ("" if room is None else f", room {room}"),
            as_json)


def stats_of_recording(path, given_axis, as_json) -> None:
    """Measure a recording with its ground-truth crossings and print its realism check."""
    from thermalcount.errors import RecordingError
    from thermalcount.sensors.sim.scene_stats import measure
    from thermalcount.store import open_recording

    with open_recording(path) as recording:
        events = recording.events
        if not events and recording.attrs.get("ground_truth") is None:
            raise RecordingError(f"{path} has no ground-truth crossings; the realism check needs "
                                 "labelled crossings (a simulated recording, or one with events)")
        stored = recording.travel_axis
        if stored and given_axis and stored != given_axis:
            raise UsageError(f"{path} says its travel axis is {stored}, not {given_axis}; "
                             "leave out --travel-axis")
        axis = stored or given_axis
        if axis not in ("rows", "columns"):
            raise UsageError(f"{path} does not say along which axis people walk; "
                             "give --travel-axis rows or --travel-axis columns")
        fps = recording.fps if math.isfinite(recording.fps) and recording.fps > 0 else 10.0
        frames = recording.read()  # the 20th-percentile background needs every frame at once
    try:
        stats = measure(frames, [event.frame for event in events], fps, axis)
    except ValueError as error:
        raise RecordingError(f"{path}: {error}") from None
    _report(stats, str(path), as_json)


def _report(stats, source: str, as_json: bool) -> None:
    from thermalcount.sensors.sim import scene_stats as ss

    if stats.fps != 10.0:
        click.echo(f"Warning: the real figures are at 10 FPS; at {stats.fps:g} FPS frames in view "
                   "and speed are not comparable", err=True)
    if as_json:
        real = {"all": ss.REAL_ALL, "one_person": ss.REAL_ONE, "by_position": ss.REAL_BY_POSITION,
                "scene": ss.REAL_SCENE}
        click.echo(json.dumps({"source": source, "measured": stats.to_json(), "real": real,
                               "verdicts": ss.verdicts(stats)}))
        return
    seconds = stats.n_frames / stats.fps
    title = (f"Realism check of {source}: {stats.n_frames:,} frames ({_span(seconds)} at "
             f"{stats.fps:g} FPS), travel axis {stats.travel_axis}; {stats.crossings} labelled "
             f"crossings, {stats.seen} seen, {stats.shared} sharing their frames with another")
    tables = _tables(stats)
    # Rich tables need ~80 columns; narrower, they would cut figures short, so print lines.
    if sys.stdout.isatty() and shutil.get_terminal_size().columns >= 80:
        _print_rich(title, tables)
    else:
        click.echo(title)
        for name, header, rows in tables:
            click.echo("")
            click.echo(name)
            widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _num(value, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{round(float(value), digits):g}"


def _triple(values, digits: int = 2) -> str:
    return "/".join(_num(v, digits) for v in values)


def _tables(stats) -> list:
    """(title, header, rows) of the three tables, as strings, for the rich and plain output."""
    from thermalcount.sensors.sim import scene_stats as ss

    verdict = ss.verdicts(stats)
    digits = {"max_hot": 1, "median_hot": 1, "frames_in_view": 1}
    figures = []
    for name in ("max_hot", "frames_in_view", "peak_dt", "mid_edge_heat", "median_hot", "speed"):
        real_all = ss.REAL_ALL.get(name)
        figures.append((ss.LABELS[name], _triple(stats.percentiles(name), digits.get(name, 2)),
                        _triple(real_all) if real_all else "-", verdict.get(name, ""),
                        _triple(ss.REAL_ONE[name])))
    figure_header = ("figure", "measured", "real, all", "p50 in it?", "real, 1 person")
    by_position = []
    for k in range(8):
        by_position.append((str(k), str(stats.position_frames[k]),
                            f"{_num(stats.by_position['heat'][k], 1)} ({_num(ss.REAL_BY_POSITION['heat'][k], 1)})",
                            f"{_num(stats.by_position['hot'][k], 1)} ({_num(ss.REAL_BY_POSITION['hot'][k])})",
                            f"{_num(stats.by_position['peak_dt'][k])} ({_num(ss.REAL_BY_POSITION['peak_dt'][k])})"))
    position_header = ("position", "frames", "heat (real)", "hot px (real)", "peak dT (real)")
    scene, real = stats.scene, ss.REAL_SCENE
    scene_rows = [
        ("noise °C, empty frames", _num(scene["noise"]), _num(real["noise"])),
        ("value step °C", _num(scene["quantum"], 4), _num(real["quantum"])),
        ("fixed pattern p5..p95 °C", _num(scene["fixed_pattern"]), f"{_num(real['fixed_pattern'])}, warm day 2"),
        ("background median °C", _num(scene["background"]), "%s..%s" % tuple(map(_num, real["background"]))),
        ("share in view", _num(scene["in_view"]), "%s..%s busy" % tuple(map(_num, real["in_view"]))),
        ("two blobs, in-view frames", _num(scene["two_blob"], 3),
         "%s..%s pairs, 0 alone" % tuple(map(_num, real["two_blob_pairs"]))),
    ]
    return [
        ("Crossings: p10/p50/p90 over crossings (speed: p25/p50/p75 over mid-view frame pairs)",
         figure_header, figures),
        ("Medians by position along the travel axis, over the crossings' frames (real: one person)",
         position_header, by_position),
        ("The scene", ("figure", "measured", "real"), scene_rows),
    ]


def _print_rich(title: str, tables: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from rich import box

    console = Console(highlight=False)
    console.print(f"[bold]{title}[/]")
    for name, header, rows in tables:
        table = Table(title=name, title_justify="left", box=box.SIMPLE_HEAD)
        for i, column in enumerate(header):
            # Figures never wrap or get cut; the label column gives way on a narrow terminal.
            table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i > 0)
        for row in rows:
            styled = [f"[green]{cell}[/]" if cell == "inside" else f"[red]{cell}[/]" if cell == "outside"
                      else cell for cell in row]
            table.add_row(*styled)
        console.print(table)
