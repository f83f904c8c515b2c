"""Training the default model shipped in ``thermalcount/data/default_model.onnx``
(:func:`~thermalcount.model.contract.default_model_path`) from its
recipe (:mod:`thermalcount.training.recipe`).

Trained on simulated doorways only (several scenario families, rooms, ambients and both
frame rates), small and fast on purpose so that a test can re-train it in seconds and check
that the shipped file is what the current code produces. Re-create it with
``examples/make_default_model.sh`` (or ``python -m thermalcount.training.default``).
"""

from __future__ import annotations

import argparse

from thermalcount.training.recipe import (CLUSTERS, EPOCHS, LATENT, PREPROCESSING, RECIPE, SEED, TRAVEL_AXIS,
                                          source_names)


def default_sources():
    """The in-memory frame sources the default model is trained on (deterministic)."""
    from thermalcount.sensors.sim.simulator import simulate
    from thermalcount.training.data import ArraySource

    return [ArraySource(simulate(frames, scenario, seed=SEED + index, **keywords).frames, name,
                        fps=keywords.get("fps", 10.0))
            for index, ((scenario, frames, keywords), name) in enumerate(zip(RECIPE, source_names()))]


def default_options():
    from thermalcount.model.preprocessing import Preprocessing
    from thermalcount.training.train import TrainOptions

    return TrainOptions(latent=LATENT, clusters=CLUSTERS, epochs=EPOCHS, seed=SEED, travel_axis=TRAVEL_AXIS,
                        preprocessing=Preprocessing(**PREPROCESSING))


def train_default_model(on_progress=None):
    """Train the default model; returns the TrainingResult."""
    from thermalcount.training.train import train_model

    return train_model(default_sources(), default_options(), on_progress=on_progress)


def build_default_model(out, *, model_file=None, overwrite: bool = True):
    """Train and export the default model to ``out`` (ONNX); optionally keep the model file too."""
    from thermalcount.model.graph import build_graph, save_graph
    from thermalcount.model.trained_file import save_model

    result = train_default_model()
    model = result.model
    if model_file is not None:
        save_model(model, model_file, overwrite=overwrite)
    save_graph(build_graph(model.weights, model.preprocessing, model.onnx_metadata()), out, overwrite=overwrite)
    return result


def fixed_check_frames(n: int = 2000):
    """Frames the default-model test compares the shipped file on (not training frames)."""
    from thermalcount.sensors.sim.simulator import simulate

    return simulate(n, "mixed", seed=SEED + 1000).frames


def main(argv=None) -> None:
    from thermalcount.model.contract import default_model_path

    parser = argparse.ArgumentParser(description="Re-create the default model shipped with thermalcount.")
    parser.add_argument("--out", default=str(default_model_path()))
    parser.add_argument("--model-file", default=None, help="also keep the training model file here")
    args = parser.parse_args(argv)
    result = build_default_model(args.out, model_file=args.model_file)
    from rich.console import Console

    from thermalcount.training.report import print_report

    print_report(result, Console())
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
