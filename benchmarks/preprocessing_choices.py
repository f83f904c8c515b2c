"""Which in-model preprocessing generalises to rooms the model never saw (frame level).

Trains a 4-cluster model per preprocessing variant and seed on simulated 21 °C rooms
(single + busy), then scores held-out rooms: same ambient, 5 °C warmer, the warm_room
scenario (26-28 °C, faint people) and 5 °C drift. The score is the F1 of "someone in view"
per frame (a state with people > 0 vs the simulator's ground truth of a person's centre in
the view; edge frames are ambiguous, so ~0.9 is near the ceiling). The counting-level
accuracy suite is a separate tool (docs/accuracy.md). Prints a Markdown table.

    python benchmarks/preprocessing_choices.py            # ~3 minutes on 2 cores
"""

from __future__ import annotations

import statistics

import numpy as np

from thermalcount.model.preprocessing import Preprocessing
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.training.autoencoder import FrameAutoencoder, encode_frames
from thermalcount.training.data import ArraySource
from thermalcount.training.kmeans import nearest
from thermalcount.training.train import TrainOptions, train_model

VARIANTS = {
    "mean, no clip (8 nodes)": Preprocessing(background="mean", clip_low=None, clip_high=None, scale=2.0),
    "mean, clip 0.5..none": Preprocessing(background="mean", clip_high=None),
    "mean, clip 0.5..2.5 (default, 10 nodes)": Preprocessing(background="mean"),
    "lowest-48, clip 0.75..2.0 (12 nodes)": Preprocessing(background="lowest", lowest_pixels=48,
                                                          clip_low=0.75, clip_high=2.0),
}
SEEDS = (0, 1, 2)


def presence_f1(result, spec, chunks) -> float:
    model = result.model
    autoencoder = FrameAutoencoder.from_weights(model.weights)
    people = np.array([s["people"] for s in model.states])
    frames = np.concatenate([c.frames for c in chunks])
    truth = np.concatenate([c.people for c in chunks]) > 0
    states, _ = nearest(encode_frames(autoencoder, spec, frames), model.weights["centroids"])
    predicted = people[states] > 0
    tp = float((predicted & truth).sum())
    precision, recall = tp / max(predicted.sum(), 1), tp / max(truth.sum(), 1)
    return 2 * precision * recall / max(precision + recall, 1e-9)


def main() -> None:
    train_sources = [ArraySource(simulate(8000, "single", seed=s, ambient=21.0).frames, f"single-{s}") for s in (1, 2)]
    train_sources.append(ArraySource(simulate(8000, "busy", seed=3, ambient=21.0).frames, "busy-3"))
    tests = {
        "held-out room 21 °C": [simulate(6000, "single", seed=s, ambient=21.0) for s in (11, 12)],
        "room 5 °C warmer": [simulate(6000, "single", seed=s, ambient=26.0) for s in (13, 14)],
        "warm_room (26-28 °C)": [simulate(6000, "warm_room", seed=s) for s in (15, 16)],
        "drift 5 °C": [simulate(6000, "drift", seed=s) for s in (17, 18)],
    }
    print("| preprocessing | " + " | ".join(tests) + " |")
    print("|---|" + "---|" * len(tests))
    for name, spec in VARIANTS.items():
        scores = {test: [] for test in tests}
        for seed in SEEDS:
            # latent 4: what TrainOptions() gave when the table in docs/model.md was measured (its
            # default is now the default model's recipe, latent 5).
            options = TrainOptions(latent=4, clusters=4, epochs=15, seed=seed, preprocessing=spec)
            result = train_model(train_sources, options)
            for test, chunks in tests.items():
                scores[test].append(presence_f1(result, spec, chunks))
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for v in scores.values()]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
