"""``thermalcount import``: frames from other tools (.npy, CSV) into a recording."""

from __future__ import annotations

import click

from thermalcount.cli.options import FiniteFloat


@click.command(name="import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Recording to write (HDF5, e.g. imported.h5).")
@click.option("--fps", type=FiniteFloat(min=0, min_open=True, max=1000), default=10.0, show_default=True,
              help="Frame rate of the source; also spaces the timestamps when it has none.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False), default=None,
              help="Ground-truth crossings: a CSV of frame,direction rows (direction in/out).")
@click.option("--orientation", default=None, metavar="rotate=R,mirror=M",
              help="Turn the frames before storing them, e.g. rotate=90,mirror=horizontal "
                   "(stored in the file; default: as in the source).")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording (only once the input is valid).")
def import_(source, out_path, fps, events_path, orientation, overwrite):
    """Import frames from a .npy array or a CSV file into a recording.

    SOURCE is a .npy file of shape (N, 8, 8) or (N, 64), or a CSV file with 64 values per
    row (row-major, row 0 first), optionally with a timestamp column and a header. Values
    are °C. The input is checked in full first: bad input stops with a one-line error
    naming the line and column, and no output file is left behind. --orientation turns
    every frame as record's does, and the recording says so.

    \b
    Example:
      thermalcount import frames.npy --out imported.h5 --fps 10
      thermalcount import log.csv --out doorway.h5 --events crossings.csv
      thermalcount import log.csv --out doorway.h5 --orientation rotate=90
    """
    from thermalcount.store.importer import import_frames

    result = import_frames(source, out_path, fps=fps, events_path=events_path, overwrite=overwrite,
                           orientation=orientation)
    timestamps = "timestamps from the file" if result.timestamps_from_file else f"timestamps spaced at {fps:g} fps"
    if result.orientation is not None:
        timestamps += f", turned {result.orientation}"
    click.echo(f"imported {result.frames} frames ({result.source_format}, {timestamps})"
               + (f" and {result.events} events" if result.events else "") + f" into {result.path}")
