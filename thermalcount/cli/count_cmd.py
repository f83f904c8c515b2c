"""``thermalcount count``: count the people in a recording, offline, and score it."""

from __future__ import annotations

import json
import sys

import click

#: Events shown in the terminal table; a day-long recording has thousands.
TABLE_EVENTS = 100


@click.command()
@click.argument("recording", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", default="default", show_default=True, metavar="PATH|default",
              help="ONNX model from 'thermalcount export', or 'default' for the embedded one.")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "numpy"]), default="auto",
              show_default=True,
              help="Inference backend; auto = whichever of onnxruntime and numpy needs less "
                   "CPU on the recording's first frames (numpy without onnxruntime).")
@click.option("--flip", is_flag=True, help="Swap in and out (sensor mounted the other way round).")
@click.option("--orientation", default="auto", show_default=True, metavar="auto|none|rotate=R,mirror=M",
              help="auto: find the travel axis from the frames and turn them to the model's; none: "
                   "the frames as stored; rotate=90,mirror=horizontal...: turned so (no detection).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: events, entries, exits, score, travel_axis.")
@click.option("--chunk-frames", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Frames read and inferred per batch (memory ~ 300 bytes per frame).")
def count(recording, model_path, backend, flip, orientation, as_json, chunk_frames):
    """Count people crossing in a RECORDING and print the events and totals.

    Runs the model over every frame in batches, then the counter. When the recording holds
    ground-truth events (simulated, or recorded with them), prints precision, recall and
    F1 of the counted events matched within 1.5 s by direction, and the net count error.
    Frames holding NaN are skipped with a warning. Without --orientation the travel axis is
    found from a sample of the frames first (one line on stderr says what was found).

    \b
    Example:
      thermalcount count sim.h5
      thermalcount count doorway.h5 --model my-model.onnx --flip
      thermalcount count doorway.h5 --orientation rotate=90
      thermalcount count sim.h5 --json --backend numpy
    """
    from thermalcount.evaluation.scoring import score_result
    from thermalcount.runtime.offline import count_recording

    result = count_recording(recording, model=None if model_path == "default" else model_path,
                             backend=backend, flip=flip, orientation=orientation, chunk_frames=chunk_frames)
    score = score_result(result)
    if result.axis is not None and result.axis.auto:
        click.echo(result.axis.describe(), err=True)
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_json(score)))
    elif sys.stdout.isatty():
        _print_rich(result, score)
    else:
        _print_plain(result, score)


def _print_plain(result, score) -> None:
    for event in result.events:
        click.echo(f"{event.direction:<3} frame {event.frame} time {event.time:.2f} "
                   f"occupancy {event.occupancy}")
    click.echo(f"entries {result.entries} exits {result.exits} occupancy {result.occupancy} "
               f"({result.frames} frames, backend {result.backend}, {_rate(result)})")
    if score is not None:
        for line in _score_lines(score):
            click.echo(line)


def _print_rich(result, score) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if result.events:
        shown = result.events[-TABLE_EVENTS:]
        title = f"Events in {result.path}"
        if len(shown) < len(result.events):
            title += f" (last {len(shown)} of {len(result.events)}; --json or a pipe lists all)"
        table = Table(title=title)
        for column in ("frame", "time s", "direction", "occupancy"):
            table.add_column(column, justify="right")
        for event in shown:
            table.add_row(str(event.frame), f"{event.time:.2f}", event.direction, str(event.occupancy))
        console.print(table)
    console.print(f"[bold]entries {result.entries}  exits {result.exits}  occupancy "
                  f"{result.occupancy}[/]  ({result.frames} frames, backend {result.backend}, "
                  f"{_rate(result)})")
    if score is not None:
        table = Table(title=f"Score against {result.truth_events} ground-truth events "
                            f"(±{score['tolerance_s']:g} s)")
        for column in ("", "precision", "recall", "F1", "tp", "fp", "fn"):
            table.add_column(column, justify="right")
        for key in ("in", "out", "overall"):
            row = score[key]
            table.add_row(key, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                          str(row["tp"]), str(row["fp"]), str(row["fn"]))
        console.print(table)
        console.print(f"net count error {score['net_count_error']:+d}")


def _score_lines(score: dict) -> list:
    lines = []
    for key in ("in", "out", "overall"):
        row = score[key]
        lines.append(f"score {key:<7} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                     f"f1 {row['f1']:.3f} tp {row['tp']} fp {row['fp']} fn {row['fn']}")
    lines.append(f"net count error {score['net_count_error']:+d}")
    return lines


def _rate(result) -> str:
    if result.seconds <= 0:
        return "-"
    return f"{result.frames / result.seconds:,.0f} frames/s"
