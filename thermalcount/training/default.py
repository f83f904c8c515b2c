"""The recipe of the default model shipped in ``thermalcount/data/default_model.onnx``.

Trained on simulated doorways only (several scenario families, rooms, ambients and both
frame rates), small and fast on purpose so that a test can re-train it in seconds and check
that the shipped file is what the current code produces. Re-create it with
``examples/make_default_model.sh`` (or ``python -m thermalcount.training.default``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from thermalcount.model.preprocessing import Preprocessing

SEED = 2024
#: 16 clusters: with the lateral sort the person clusters spread over positions along the
#: travel axis AND over one/two people (docs/model.md, "What each change bought").
CLUSTERS = 16
LATENT = 5
EPOCHS = 50
#: Remove each pixel's slow background (60 s), sort each line across the travel axis, smooth,
#: normalise contrast by the room temperature, then the noise floor 0.8 and the cap 2.5 in
#: 21 °C-room units (docs/model.md).
PREPROCESSING = dict(lateral_sort="auto", blur=0.5, contrast_skin=33.0, clip_low=0.65, clip_high=2.5,
                     pattern_seconds=60.0, gain_first=True)
#: (scenario, frames, simulator keywords): rooms differ by seed (fixed pattern, ambient
#: jitter). Pairs (following, passing, busy) make up much of it so that k-means has enough
#: two-people frames to give them clusters of their own. The first entry must stay a 10 FPS
#: room at its own temperature: the accuracy suite's +5 °C check warms that room up.
RECIPE = (
    ("single", 4000, {}),
    ("busy", 8000, {}),
    ("following", 8000, {"reverse": True}),
    ("passing", 8000, {}),
    ("lingering", 3000, {"reverse": True}),
    ("turnback", 3000, {}),
    ("low_contrast", 3000, {}),
    ("warm_room", 4000, {}),
    ("drift", 3000, {}),
    ("single", 3000, {"ambient": 18.0}),
    ("single", 600, {"fps": 1.0}),
    ("following", 5000, {"ambient": 25.0}),
    ("passing", 5000, {"ambient": 19.0, "reverse": True}),
    ("warm_object", 3000, {}),
)


def source_names() -> list:
    """The names of the recipe's sources, as the model's training summary records them
    (without simulating the frames)."""
    names = []
    for index, (scenario, _frames, keywords) in enumerate(RECIPE):
        label = ",".join(f"{k}={v}" for k, v in sorted(keywords.items()))
        names.append(f"sim:{scenario}:seed={SEED + index}" + (f":{label}" if label else ""))
    return names


def default_sources():
    """The in-memory frame sources the default model is trained on (deterministic)."""
    from thermalcount.sensors.sim.simulator import simulate
    from thermalcount.training.data import ArraySource

    return [ArraySource(simulate(frames, scenario, seed=SEED + index, **keywords).frames, name,
                        fps=keywords.get("fps", 10.0))
            for index, ((scenario, frames, keywords), name) in enumerate(zip(RECIPE, source_names()))]


def default_options():
    from thermalcount.training.train import TrainOptions

    return TrainOptions(latent=LATENT, clusters=CLUSTERS, epochs=EPOCHS, seed=SEED, travel_axis="auto",
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


def fixed_check_frames(n: int = 2000) -> np.ndarray:
    """Frames the default-model test compares the shipped file on (not training frames)."""
    from thermalcount.sensors.sim.simulator import simulate

    return simulate(n, "mixed", seed=SEED + 1000).frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Re-create the default model shipped with thermalcount.")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "default_model.onnx"))
    parser.add_argument("--model-file", default=None, help="also keep the training model file here")
    args = parser.parse_args(argv)
    result = build_default_model(args.out, model_file=args.model_file)
    from rich.console import Console

    from thermalcount.training.report import print_report

    print_report(result, Console())
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
