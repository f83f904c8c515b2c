"""The realism check: measure a doorway recording the way the real reference recordings were.

The method is the one of the measurements of public real recordings (8x8 Grid-EYE over a
passage, 10 FPS) that docs/simulator.md quotes, so a simulated recording measured here can be
put next to the real figures:

* background = each pixel's 20th percentile over the recording; dT = frame - background;
* a pixel is hot at dT >= 1.5 °C; heat = sum of dT over pixels with dT > 0.8 °C;
* position = heat-weighted centroid along the travel axis (0..7);
* a crossing's frames = the unbroken run of frames with >= 2 hot pixels that holds the
  labelled crossing frame, else the run nearest to it within ±6 s (none: "not seen").

Where the reference leaves a detail open, the choice made here is written next to the code.
numpy only: the CLI runs this on a Pi without the training stack.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

HOT_DT = 1.5  # °C above background: a hot pixel
HEAT_DT = 0.8  # °C above background: a pixel counts towards heat and position
BACKGROUND_PERCENTILE = 20
IN_VIEW_HOT = 2  # hot pixels that make a frame "someone in view"
SEARCH_S = 6.0  # a crossing's run is looked for within ± this of the labelled frame
BLOB_MIN = 3  # hot pixels for a blob to count in the two-blob fraction
MID = (2, 5)  # rounded positions of mid-view; 0..1 and 6..7 are the edges

# Real figures, copied from the reference (p10, p50, p90 over crossings unless noted).
#: "All crossings together (one and two people)": a simulated mixed doorway's p50s belong
#: inside these p10..p90 ranges.
REAL_ALL = {
    "max_hot": (16, 19, 22),
    "frames_in_view": (34, 47, 89),
    "peak_dt": (6.0, 7.0, 8.25),
    "mid_edge_heat": (1.4, 2.3, 3.4),
}
#: One person alone, for display (speed is p25/p50/p75 over mid-view frame pairs).
REAL_ONE = {
    "max_hot": (15, 19, 21),
    "median_hot": (7, 8, 12),
    "frames_in_view": (35, 42, 79),
    "peak_dt": (6.0, 7.0, 8.0),
    "mid_edge_heat": (1.8, 2.6, 3.8),
    "speed": (0.26, 0.48, 0.68),
}
#: One person, medians by rounded position 0..7.
REAL_BY_POSITION = {
    "heat": (9.5, 30.5, 56.9, 56.5, 60.8, 61.5, 38.2, 11.2),
    "hot": (3, 9, 15, 16, 16, 16, 10, 4),
    "peak_dt": (3.0, 4.5, 5.2, 5.2, 5.5, 5.8, 5.5, 3.2),
}
#: The empty scene and the recordings overall (ranges as the reference gives them).
REAL_SCENE = {
    "noise": 0.33, "quantum": 0.25, "fixed_pattern": 1.5,
    "background": (20.75, 21.5), "in_view": (0.55, 0.70), "two_blob_pairs": (0.05, 0.10),
}
LABELS = {
    "max_hot": "max hot px", "median_hot": "median hot px", "frames_in_view": "frames in view",
    "peak_dt": "peak dT °C", "mid_edge_heat": "mid/edge heat", "speed": "mid speed px/fr",
}


@dataclass
class SceneStats:
    """What :func:`measure` found. Per-crossing arrays hold one value per seen crossing."""

    n_frames: int
    fps: float
    travel_axis: str
    crossings: int  # labelled crossings given
    seen: int  # of them, with a run of frames in view within ±6 s
    shared: int  # seen crossings whose run also holds another crossing (merged people)
    per_crossing: dict = field(default_factory=dict)  # name -> np.ndarray
    speed: np.ndarray = field(default_factory=lambda: np.zeros(0))  # pooled mid-view |Δposition|
    by_position: dict = field(default_factory=dict)  # name -> 8 medians (NaN: no frames there)
    position_frames: tuple = (0,) * 8
    scene: dict = field(default_factory=dict)  # noise, quantum, fixed_pattern, background, ...

    def percentiles(self, name: str) -> tuple:
        """(p10, p50, p90) of a per-crossing figure, or (p25, p50, p75) for speed; NaN if none."""
        values, qs = (self.speed, (25, 50, 75)) if name == "speed" else (self.per_crossing[name], (10, 50, 90))
        values = values[np.isfinite(values)]
        if values.size == 0:
            return (math.nan,) * 3
        return tuple(float(v) for v in np.percentile(values, qs))

    def to_json(self) -> dict:
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        names = list(self.per_crossing) + ["speed"]
        return {
            "frames": self.n_frames, "fps": self.fps, "travel_axis": self.travel_axis,
            "crossings": self.crossings, "seen": self.seen, "shared_runs": self.shared,
            "figures": {n: [clean(v) for v in self.percentiles(n)] for n in names},
            "by_position": {k: [clean(float(v)) for v in vs] for k, vs in self.by_position.items()},
            "position_frames": list(self.position_frames),
            "scene": {k: clean(v) for k, v in self.scene.items()},
        }


def measure(frames, event_frames, fps: float, travel_axis: str) -> SceneStats:
    """Measure ``frames`` (n, 8, 8) °C with labelled crossings at ``event_frames``."""
    # float32 like the sensor's data: half the memory of float64 for long recordings.
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (8, 8) or len(frames) == 0:
        raise ValueError(f"frames must have shape (n, 8, 8) with n >= 1, got {frames.shape}")
    if travel_axis not in ("rows", "columns"):
        raise ValueError(f"travel_axis must be 'rows' or 'columns', got {travel_axis!r}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    n = len(frames)
    # Frames with NaN/inf (a sensor glitch) take no part: out of the background, and they
    # break runs like an empty frame would.
    finite = np.isfinite(frames).all(axis=(1, 2))
    if not finite.any():
        raise ValueError("no frame holds only finite values")
    background = np.percentile(frames if finite.all() else frames[finite], BACKGROUND_PERCENTILE, axis=0)
    dt = np.where(finite[:, None, None], frames - background, np.float32(0))
    hot = dt >= HOT_DT
    n_hot = hot.sum(axis=(1, 2))
    weights = np.where(dt > HEAT_DT, dt, np.float32(0))
    heat = weights.sum(axis=(1, 2))
    along = weights.sum(axis=2 if travel_axis == "rows" else 1)  # (n, 8) heat per travel index
    with np.errstate(invalid="ignore", divide="ignore"):
        position = along @ np.arange(8, dtype=np.float32) / heat  # NaN where there is no heat
    # Rounded half up (not numpy's half-to-even), so 1.5 is position 2 whatever the parity.
    cell = np.floor(position + 0.5)
    peak = dt.max(axis=(1, 2))

    active = n_hot >= IN_VIEW_HOT
    starts, ends = _runs(active)
    window = round(SEARCH_S * fps)
    run_of = [_run_for(int(e), starts, ends, window) for e in event_frames]
    seen_runs = [r for r in run_of if r is not None]
    names = ("max_hot", "median_hot", "frames_in_view", "peak_dt", "mid_edge_heat")
    per = {name: [] for name in names}
    for r in seen_runs:
        part = slice(starts[r], ends[r])
        per["max_hot"].append(n_hot[part].max())
        per["median_hot"].append(np.median(n_hot[part]))
        per["frames_in_view"].append(ends[r] - starts[r])
        per["peak_dt"].append(peak[part].max())
        c, h = cell[part], heat[part]
        mid = (c >= MID[0]) & (c <= MID[1])
        # Edge = rounded positions 0..1 and 6..7, so mid and edge split every frame of the run.
        # A crossing that never reaches one of the two sets has no ratio (NaN, skipped).
        edge = ~mid & np.isfinite(c)
        per["mid_edge_heat"].append(np.median(h[mid]) / np.median(h[edge]) if mid.any() and edge.any()
                                    else math.nan)

    # Frame-pooled figures use each run once: two people merged in one run are one set of frames.
    unique = sorted(set(seen_runs))
    in_runs = np.zeros(n, dtype=bool)
    speeds = []
    for r in unique:
        in_runs[starts[r]:ends[r]] = True
        c, p = cell[starts[r]:ends[r]], position[starts[r]:ends[r]]
        mid = (c >= MID[0]) & (c <= MID[1])
        pairs = mid[:-1] & mid[1:]  # consecutive frames, both in mid-view
        speeds.append(np.abs(np.diff(p))[pairs])
    by_position = {"heat": [], "hot": [], "peak_dt": []}
    counts = []
    for k in range(8):
        at = in_runs & (cell == k)
        counts.append(int(at.sum()))
        for name, values in (("heat", heat), ("hot", n_hot), ("peak_dt", peak)):
            by_position[name].append(float(np.median(values[at])) if at.any() else math.nan)

    holders = Counter(seen_runs)  # crossings per run
    shared = sum(holders[r] > 1 for r in seen_runs)
    return SceneStats(
        n_frames=n, fps=float(fps), travel_axis=travel_axis, crossings=len(run_of),
        seen=len(seen_runs), shared=shared,
        per_crossing={k: np.asarray(v, dtype=np.float64) for k, v in per.items()},
        speed=np.concatenate(speeds) if speeds else np.zeros(0),
        by_position=by_position, position_frames=tuple(counts),
        scene=_scene(frames, finite, background, hot, n_hot, active),
    )


def _runs(active: np.ndarray) -> tuple:
    """Start and end (exclusive) indices of the runs of True in ``active``."""
    edges = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _run_for(event: int, starts: np.ndarray, ends: np.ndarray, window: int):
    """Index of the run holding ``event``, else of the nearest run within ``window`` frames
    (ties go to the earlier run), else None."""
    i = int(np.searchsorted(starts, event, side="right")) - 1  # last run starting at or before
    if i >= 0 and event < ends[i]:
        return i
    best, distance = None, window + 1
    if i >= 0:
        best, distance = i, event - (ends[i] - 1)
    if i + 1 < len(starts) and starts[i + 1] - event < distance:
        best, distance = i + 1, starts[i + 1] - event
    return best if distance <= window else None


def blob_counts(hot: np.ndarray, min_size: int = BLOB_MIN) -> np.ndarray:
    """Per frame, the number of 4-connected blobs of at least ``min_size`` hot pixels.

    Vectorised over frames: each hot pixel starts with its own label and takes the smallest
    label of its 4-neighbours until nothing changes, so every blob ends with one label.
    """
    n = len(hot)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    none = 64 + 1  # label of a cold pixel: larger than any real one; int8 keeps it small
    label = np.where(hot, np.arange(1, 65, dtype=np.int8).reshape(8, 8), np.int8(none))
    while True:
        new = label.copy()
        np.minimum(new[:, 1:], label[:, :-1], out=new[:, 1:])
        np.minimum(new[:, :-1], label[:, 1:], out=new[:, :-1])
        np.minimum(new[:, :, 1:], label[:, :, :-1], out=new[:, :, 1:])
        np.minimum(new[:, :, :-1], label[:, :, 1:], out=new[:, :, :-1])
        new = np.where(hot, new, np.int8(none))
        if np.array_equal(new, label):
            break
        label = new
    keys = (np.arange(n)[:, None] * 66 + label.reshape(n, 64).astype(np.int64)).ravel()
    sizes = np.bincount(keys, minlength=n * 66).reshape(n, 66)[:, 1:65]
    return (sizes >= min_size).sum(axis=1)


def _scene(frames, finite, background, hot, n_hot, active) -> dict:
    empty = finite & (n_hot == 0)
    # Noise from differences of consecutive empty frames (std / sqrt 2): drift and the fixed
    # pattern cancel, which a plain std over a drifting recording would count as noise.
    pairs = empty[:-1] & empty[1:]
    if pairs.sum() >= 2:
        diffs = frames[1:][pairs] - frames[:-1][pairs]
        noise = float(np.median(diffs.std(axis=0)) / math.sqrt(2))
    else:
        noise = math.nan
    # The sensor's step: the smallest gap between distinct values (on at most 20k frames).
    values = np.unique(frames[:20000][finite[:20000]])
    gaps = np.diff(values)
    quantum = float(round(gaps.min(), 4)) if gaps.size else math.nan
    centred = background - background.mean()
    spread = float(np.percentile(centred, 95) - np.percentile(centred, 5))
    in_view = int(active.sum())
    # Two blobs of 3+ need 6+ hot pixels: only those frames are labelled (the slow part).
    blobs = blob_counts(hot[n_hot >= 2 * BLOB_MIN])
    return {
        "noise": noise, "quantum": quantum, "fixed_pattern": spread,
        "background": float(np.median(background)),
        "in_view": in_view / len(frames),
        "two_blob": float((blobs >= 2).sum() / in_view) if in_view else math.nan,
    }


def verdicts(stats: SceneStats) -> dict:
    """For each "all crossings together" figure: is the measured p50 inside the real p10..p90?

    "inside" or "outside"; "not measured" when no crossing gave a value.
    """
    result = {}
    for name, (low, _, high) in REAL_ALL.items():
        p50 = stats.percentiles(name)[1]
        result[name] = "not measured" if not math.isfinite(p50) else \
            "inside" if low <= p50 <= high else "outside"
    return result
