"""Training pictures (matplotlib, Agg backend - no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thermalcount.errors import OutputPathError


def write_plots(result, directory) -> list:
    """embedding.png, clusters.png and centroids.png in ``directory``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(f"cannot create plot directory {directory} ({error.strerror}); choose another --plots") from None
    timeline, states = result.timeline, result.model.states
    fps = timeline["fps"] if timeline["fps"] and np.isfinite(timeline["fps"]) else 10.0
    seconds = np.arange(len(timeline["states"])) / fps
    names = [s["name"] for s in states]
    paths = []

    figure, axis = plt.subplots(figsize=(9, 3.2))
    for dim in range(timeline["embedding"].shape[1]):
        axis.plot(seconds, timeline["embedding"][:, dim], linewidth=0.9, label=f"z{dim}")
    axis.set(xlabel="time (s)", ylabel="embedding", title=f"Embedded frames over time ({timeline['name']})")
    axis.legend(loc="upper right", ncol=timeline["embedding"].shape[1], fontsize=8)
    paths.append(_save(figure, directory / "embedding.png", plt))

    figure, axis = plt.subplots(figsize=(9, 2.8))
    axis.step(seconds, timeline["states"], where="post", linewidth=1.0)
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="time (s)", title=f"State over time ({timeline['name']})")
    paths.append(_save(figure, directory / "clusters.png", plt))

    k = len(result.decoded_c)
    figure, axes = plt.subplots(1, k, figsize=(2.2 * k, 2.6))
    axes = np.atleast_1d(axes)
    limit = max(1.0, float(np.abs(result.decoded_c).max()))
    for axis, frame, state, size in zip(axes, result.decoded_c, states, result.cluster_sizes):
        image = axis.imshow(frame, cmap="inferno", vmin=-0.5, vmax=limit)
        axis.set_title(f"{state['cluster']}: {state['name']}\n{size:,} frames", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="°C above background")
    figure.suptitle(f"Decoded centroids (travel axis: {result.model.travel_axis}, index 0 at top/left)", fontsize=10)
    paths.append(_save(figure, directory / "centroids.png", plt))
    return paths


def _save(figure, path: Path, plt) -> Path:
    from thermalcount.support.safe_files import atomic_output

    try:
        with atomic_output(path) as temporary:
            figure.savefig(temporary, dpi=90, bbox_inches="tight", format="png")
    except OutputPathError:
        raise
    except OSError as error:
        raise OutputPathError(f"cannot write {path} ({error.strerror}); choose another --plots") from None
    finally:
        plt.close(figure)
    return path
