"""The training workflow: recordings -> autoencoder -> k-means -> meanings -> model file.

``train_model`` does the work on any frame sources (recording paths or in-memory arrays) and
returns a :class:`TrainingResult`; ``train`` is what the CLI calls (checks the output path
first, saves the model file, writes the plots).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from thermalcount import __version__
from thermalcount.errors import OutputPathError, TrainingError
from thermalcount.model.rules import EDGE_TEST, FRAME_TEST, FrameRules, rule_states
from thermalcount.model.preprocessing import Preprocessing
from thermalcount.training import require_training_stack
from thermalcount.model.trained_file import TrainedModel, save_model
from thermalcount.training.recipe import (BATCH_SIZE, CLUSTERS, CLUSTERS_RANGE, FRAME_RULES, LATENT, LATENT_RANGE,
                                          PREPROCESSING, TRAIN_SEED, TRAVEL_AXIS, VAL_SPLIT)

MIN_FRAMES = 100
MIN_STEPS = 3000  # auto epochs: at least this many optimiser steps in total
MAX_AUTO_EPOCHS = 60
TIMELINE_FRAMES = 1200


def recipe_preprocessing() -> Preprocessing:
    """The preprocessing the default model was trained with (training/recipe.py)."""
    return Preprocessing(**PREPROCESSING)


@dataclass
class TrainOptions:
    """How to train; the defaults are the default model's recipe (training/recipe.py)."""

    latent: int = LATENT
    clusters: int = CLUSTERS
    epochs: Optional[int] = None  # None: enough for MIN_STEPS steps, 2..MAX_AUTO_EPOCHS
    batch_size: int = BATCH_SIZE
    seed: int = TRAIN_SEED
    val_split: float = VAL_SPLIT
    travel_axis: str = TRAVEL_AXIS
    learning_rate: float = 3e-3
    preprocessing: Preprocessing = field(default_factory=recipe_preprocessing)
    chunk_frames: int = 16384
    sample_size: int = 50_000
    #: Add the frame rules to the model (thermalcount.model.rules): someone just outside the
    #: view (states edge-low, edge-high; needs the mean background) and two people apart
    #: along the travel axis (state apart; needs a noise floor, clip_low).
    frame_rules: bool = FRAME_RULES

    def check(self) -> None:
        if not LATENT_RANGE[0] <= self.latent <= LATENT_RANGE[1]:
            raise TrainingError(f"--latent must be between {LATENT_RANGE[0]} and {LATENT_RANGE[1]} "
                                f"(the design uses 3-5), got {self.latent}")
        if not CLUSTERS_RANGE[0] <= self.clusters <= CLUSTERS_RANGE[1]:
            raise TrainingError(f"--clusters must be between {CLUSTERS_RANGE[0]} and {CLUSTERS_RANGE[1]} "
                                f"(3 = empty/low/high), got {self.clusters}")
        if self.epochs is not None and self.epochs < 1:
            raise TrainingError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 8:
            raise TrainingError(f"--batch-size must be at least 8, got {self.batch_size}")
        if self.travel_axis not in ("auto", "rows", "columns"):
            raise TrainingError(f"--travel-axis must be auto, rows or columns, got {self.travel_axis!r}")

    def summary(self) -> dict:
        return {"latent": self.latent, "clusters": self.clusters, "epochs": self.epochs,
                "batch_size": self.batch_size, "seed": self.seed, "val_split": self.val_split,
                "travel_axis": self.travel_axis, "learning_rate": self.learning_rate,
                "chunk_frames": self.chunk_frames, "sample_size": self.sample_size,
                "frame_rules": self.frame_rules}


@dataclass
class TrainingResult:
    model: TrainedModel
    history: list
    cluster_sizes: list
    silhouette: float
    travel_evidence: dict
    decoded_c: np.ndarray  # (K, 8, 8) decoded centroids, °C above background
    timeline: dict  # first frames of the first source: frames, embeddings, states, fps
    seconds: float
    frames_seen: int
    peak_frames_in_memory: int
    plot_files: list = field(default_factory=list)


def _progress(callback, kind, **info):
    if callback is not None:
        callback(kind, info)


def train_model(sources, options: Optional[TrainOptions] = None,
                on_progress: Optional[Callable[[str, dict], None]] = None) -> TrainingResult:
    """Train a model on recordings (paths) or arrays; see the module docstring."""
    require_training_stack()
    import torch

    from thermalcount.training import autoencoder as ae
    from thermalcount.training.data import TrainingData
    from thermalcount.training.kmeans import fit_centroids, nearest, separation_score
    from thermalcount.model.travel_axis import find_travel_axis
    from thermalcount.training.meanings import assign_meanings, canonical_order

    options = options or TrainOptions()
    options.check()
    started = time.perf_counter()
    data = TrainingData(sources, seed=options.seed, val_split=options.val_split,
                        chunk_frames=options.chunk_frames, sample_size=options.sample_size,
                        pattern_seconds=options.preprocessing.pattern_seconds)
    _progress(on_progress, "stage", text="checking frames", total=sum(s.n_frames for s in data.sources))
    summary = data.scan(on_chunk=lambda n: _progress(on_progress, "scan", frames=n))
    if summary.n_train < max(MIN_FRAMES, 10 * options.clusters):
        raise TrainingError(f"only {summary.n_frames} frames to train on; record at least "
                            f"{max(MIN_FRAMES, 10 * options.clusters)} (a few minutes of people walking through)")

    # The travel axis comes from the raw frames, before training: a lateral sort needs it.
    if options.travel_axis == "auto":
        travel_axis, evidence = find_travel_axis(data.sample.ordered().reshape(-1, 8, 8))
    else:
        travel_axis, evidence = options.travel_axis, {"forced": True}
    if options.preprocessing.lateral_sort == "auto":
        options = replace(options, preprocessing=replace(options.preprocessing, lateral_sort=travel_axis))

    steps_per_epoch = math.ceil(summary.n_train / options.batch_size)
    epochs = options.epochs or int(np.clip(math.ceil(MIN_STEPS / steps_per_epoch), 2, MAX_AUTO_EPOCHS))
    ae.make_deterministic(options.seed)
    autoencoder = ae.FrameAutoencoder(options.latent)
    _progress(on_progress, "stage", text="training", total=epochs * summary.n_train, epochs=epochs)
    history = ae.fit_autoencoder(
        autoencoder, options.preprocessing, lambda epoch: data.minibatches(epoch, options.batch_size),
        epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=options.learning_rate,
        validation=data.validation.ordered() if summary.n_val else None,
        on_step=lambda info: _progress(on_progress, "step", **info),
    )
    if not all(math.isfinite(record["train_loss"]) for record in history):
        raise TrainingError("training diverged (loss is not finite); try a smaller --batch-size or another --seed")

    _progress(on_progress, "stage", text="clustering")
    sample = data.sample.ordered()
    sample_embedding = ae.encode_frames(autoencoder, options.preprocessing, sample)
    spec = options.preprocessing
    centroids = fit_centroids(sample_embedding, options.clusters, options.seed)
    decoded_c = (ae.decode_latent(autoencoder, centroids) * spec.scale + spec.offset).reshape(-1, 8, 8)
    states = assign_meanings(decoded_c, travel_axis)
    order = canonical_order(states)
    centroids, decoded_c = centroids[order], decoded_c[order]
    states = [dict(states[old], cluster=new) for new, old in enumerate(order)]

    # The apart rule judges the model input itself, so it needs the input's noise floor; the
    # edge rule the residual over the frame mean.
    if options.frame_rules:
        states += rule_states(len(states), edges=EDGE_TEST if spec.background == "mean" else None,
                              apart=FRAME_TEST if spec.clip_low is not None else None)
    rules = FrameRules(states)
    centring = spec.centring_matrix().astype(np.float32)

    def graph_states(flat, embedding):
        """The states the exported graph gives these (per-pixel corrected) frames."""
        assigned, _ = nearest(embedding, centroids)
        return assigned, rules.apply(assigned, flat @ centring, spec.apply(flat), travel_axis) if rules else assigned

    _progress(on_progress, "stage", text="assigning clusters", total=summary.n_frames)
    sizes = np.zeros(len(states), np.int64)
    rule_frames = np.zeros(len(states), np.int64)
    for _, _, flat in data.iter_all():
        assigned, final = graph_states(flat, ae.encode_frames(autoencoder, spec, flat))
        sizes += np.bincount(assigned, minlength=len(states))
        rule_frames += np.bincount(final, minlength=len(states))
        _progress(on_progress, "scan", frames=len(flat))
    sizes = sizes[:options.clusters]
    sample_states, _ = nearest(sample_embedding, centroids)
    silhouette = separation_score(sample_embedding, sample_states, options.seed)

    first = data.sources[0]
    timeline_frames = np.asarray(first.read(0, TIMELINE_FRAMES), np.float32).reshape(-1, 8, 8)
    # The model sees them with the stream's per-pixel background removed, as at run time.
    seen_frames = data.corrected(0, 0, timeline_frames.reshape(-1, 64)).reshape(-1, 8, 8)
    timeline_embedding = ae.encode_frames(autoencoder, spec, seen_frames)
    timeline_states = graph_states(seen_frames.reshape(-1, 64), timeline_embedding)[1]
    timeline = {"frames": timeline_frames, "embedding": timeline_embedding,
                "states": timeline_states, "fps": first.fps, "name": first.name}

    weights = autoencoder.numpy_weights()
    weights["centroids"] = centroids.astype(np.float32)
    last = history[-1]
    training = {
        "files": summary.files,
        "frames": summary.n_frames, "train_frames": summary.n_train, "val_frames": summary.n_val,
        "options": dict(options.summary(), epochs=epochs), "seed": options.seed,
        "train_loss": round(last["train_loss"], 6),
        "val_loss": round(last["val_loss"], 6) if "val_loss" in last else None,
        "cluster_sizes": sizes.tolist(),
        # Frames each frame rule's state takes (from whatever their nearest cluster).
        "rule_frames": {state["name"]: int(rule_frames[state["cluster"]]) for state in states[options.clusters:]},
        "silhouette": None if math.isnan(silhouette) else round(silhouette, 4),
        "travel_axis_evidence": evidence,
        "torch": torch.__version__.split("+")[0],
    }
    model = TrainedModel(weights=weights, preprocessing=spec, states=states, travel_axis=travel_axis,
                         training=training, created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         version=__version__)
    return TrainingResult(model=model, history=history, cluster_sizes=sizes.tolist(), silhouette=silhouette,
                          travel_evidence=evidence, decoded_c=decoded_c, timeline=timeline,
                          seconds=time.perf_counter() - started,
                          frames_seen=sum(r["frames"] for r in history),
                          peak_frames_in_memory=data.peak_frames_in_memory)


def train(paths, out, options: Optional[TrainOptions] = None, *, plots=None, overwrite: bool = False,
          on_progress=None) -> TrainingResult:
    """Train on recording files, write the model file to ``out`` (and PNGs to ``plots``)."""
    from thermalcount.support.safe_files import check_output_path, refuse_same_file

    out = Path(out)
    if out.is_dir():
        raise OutputPathError(f"{out} is a directory; give --out a file name such as model.npz")
    check_output_path(out, overwrite=overwrite)
    for path in paths:  # before hours of training, not at the end
        refuse_same_file(path, out, "recording")
    result = train_model([Path(p) for p in paths], options, on_progress=on_progress)
    save_model(result.model, out, overwrite=overwrite)
    if plots is not None:
        from thermalcount.training.plots import write_plots

        result.plot_files = write_plots(result, plots)
    return result
