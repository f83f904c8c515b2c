"""``thermalcount train``: recordings -> model file (autoencoder + k-means + meanings)."""

from __future__ import annotations

import click

from thermalcount.cli.options import FiniteFloat, SEED
# The defaults are the default model's recipe, the one definition of them (plain literals:
# reading them costs no numpy for --help).
from thermalcount.training.recipe import (BATCH_SIZE, CLUSTERS, CLUSTERS_RANGE, FRAME_RULES, LATENT, LATENT_RANGE,
                                          PREPROCESSING, TRAIN_SEED, TRAVEL_AXIS, VAL_SPLIT)


@click.command()
@click.argument("recordings", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Model file to write (e.g. model.npz).")
@click.option("--latent", default=LATENT, show_default=True, type=click.IntRange(*LATENT_RANGE),
              help="Size of the embedding (3-5 recommended).")
# 16 clusters, not the original design's 3: with 3, k-means merges the edge positions and
# the counter cannot tell a direction (docs/model.md, "What each change bought").
@click.option("--clusters", default=CLUSTERS, show_default=True, type=click.IntRange(*CLUSTERS_RANGE),
              help="Number of k-means clusters: positions along the door line, one or two people, empty.")
@click.option("--epochs", default=None, type=click.IntRange(min=1), help="Passes over the data [default: enough for ~3000 steps].")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(min=8), help="Frames per optimiser step.")
@click.option("--seed", default=TRAIN_SEED, show_default=True, type=SEED, help="Random seed; same data + seed = same model.")
@click.option("--val-split", default=VAL_SPLIT, show_default=True, type=FiniteFloat(0, 0.5, max_open=True), help="Fraction of frames held out for the validation loss.")
@click.option("--travel-axis", default=TRAVEL_AXIS, show_default=True, type=click.Choice(["auto", "rows", "columns"]),
              help="Array axis people walk along; auto finds it from the data.")
@click.option("--background", default=PREPROCESSING["background"], show_default=True, type=click.Choice(["mean", "lowest", "none"]),
              help="Per-frame background removal inside the model: mean of all pixels, mean of the coolest --lowest-pixels, or none.")
@click.option("--lowest-pixels", default=PREPROCESSING["lowest_pixels"], show_default=True, type=click.IntRange(1, 64),
              help="How many of the coolest pixels --background lowest averages.")
@click.option("--lateral-sort", default=PREPROCESSING["lateral_sort"], show_default=True,
              type=click.Choice(["auto", "rows", "columns", "none"]),
              help="Sort each line across the travel axis warmest first, so where along the door a person "
                   "walks does not matter (auto: across the travel axis found).")
@click.option("--blur", default=PREPROCESSING["blur"], show_default=True, type=FiniteFloat(0, 1),
              help="Weight of each of the 4 neighbours in a spatial smoothing (0: none).")
@click.option("--contrast-skin", default=PREPROCESSING["contrast_skin"], show_default=True,
              type=FiniteFloat(min=0),
              help="Skin temperature for contrast normalisation in warm rooms, °C (0: off).")
@click.option("--clip-low", default=PREPROCESSING["clip_low"], show_default=True, type=FiniteFloat(),
              help="°C above background below which a pixel counts as background.")
@click.option("--clip-high", default=PREPROCESSING["clip_high"], show_default=True, type=FiniteFloat(),
              help="°C above background at which a warm pixel is capped (makes warm rooms look like cool ones).")
@click.option("--no-clip", is_flag=True, help="Do not clip residuals (fastest graph, less robust across rooms).")
@click.option("--pattern-seconds", default=PREPROCESSING["pattern_seconds"], show_default=True,
              type=FiniteFloat(min=0),
              help="Time constant of the per-pixel background each stream learns (fixed pattern, static "
                   "warm objects), s (0: off).")
@click.option("--frame-rules/--no-frame-rules", default=FRAME_RULES, show_default=True,
              help="Add the frame rules to the model: someone just outside the view, two people apart "
                   "(docs/model.md, 'Frame rules').")
@click.option("--plots", default=None, type=click.Path(file_okay=False), help="Directory for training PNGs.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def train(recordings, out, latent, clusters, epochs, batch_size, seed, val_split, travel_axis, background,
          lowest_pixels, lateral_sort, blur, contrast_skin, clip_low, clip_high, no_clip, pattern_seconds, frame_rules,
          plots, overwrite):
    """Train a model on one or more recordings (no labels needed).

    Frames are streamed from the files in chunks, so recordings larger than memory work.
    Prints a report (loss, cluster meanings, travel axis, separation) at the end.

    \b
    Example:
      thermalcount simulate --frames 60000 --out sim.h5
      thermalcount train sim.h5 --out model.npz --plots plots/
      thermalcount export model.npz --out model.onnx
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from thermalcount.errors import TrainingError
    from thermalcount.model.preprocessing import Preprocessing
    from thermalcount.training.report import print_report
    from thermalcount.training.train import TrainOptions, train as run_training

    try:
        extras = {}
        if background == "mean":  # the lateral sort, blur and contrast build on the mean background
            extras = dict(lateral_sort=None if lateral_sort == "none" else lateral_sort, blur=blur,
                          contrast_skin=contrast_skin or None)
        spec = Preprocessing(background=background, lowest_pixels=lowest_pixels, clip_low=None if no_clip else clip_low,
                             clip_high=None if no_clip else clip_high, pattern_seconds=pattern_seconds or None,
                             # With the per-pixel background removed, the contrast gain can come
                             # before the noise floor (docs/model.md): warm rooms keep their shapes.
                             gain_first=bool(extras.get("contrast_skin") and pattern_seconds), **extras)
    except ValueError as error:
        raise TrainingError(f"bad preprocessing option: {error}") from None
    options = TrainOptions(latent=latent, clusters=clusters, epochs=epochs, batch_size=batch_size, seed=seed,
                           val_split=val_split, travel_axis=travel_axis, preprocessing=spec, frame_rules=frame_rules)
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        state = {"task": None, "frames": 0, "started": None}

        def on_progress(kind, info):
            import time

            if kind == "stage":
                if state["task"] is not None:
                    progress.update(state["task"], visible=False)
                state["task"] = progress.add_task(info["text"], total=info.get("total"), info="")
                state["frames"], state["started"] = 0, time.perf_counter()
            elif kind in ("scan", "step"):
                state["frames"] += info["frames"]
                rate = state["frames"] / max(time.perf_counter() - state["started"], 1e-9)
                text = f"{rate:,.0f} frames/s"
                if kind == "step":
                    text = f"epoch {info['epoch']}/{info['epochs']}  loss {info['loss']:.4f}  " + text
                progress.update(state["task"], advance=info["frames"], info=text)

        result = run_training(recordings, out, options, plots=plots, overwrite=overwrite, on_progress=on_progress)
    # soft_wrap: in a log or pipe, long lines (paths, the next command) stay whole.
    print_report(result, Console(soft_wrap=True), out=out)
