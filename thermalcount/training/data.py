"""Streaming training data: frames come from recordings chunk by chunk, never all at once.

Memory stays bounded whatever the recording size: a pass holds at most ``pool_chunks``
chunks of ``chunk_frames`` frames (shuffled together for the minibatches), plus fixed-size
samples (bottom-k by a random key, i.e. a uniform sample without replacement) for k-means,
the cluster meanings, validation and plots.

Every random choice is seeded from (seed, source, chunk), so the same data and seed give the
same minibatches in the same order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from thermalcount.errors import TrainingError
from thermalcount.store import PIXEL_RANGE_C

FRAME_SHAPE = (8, 8)
PIXELS = 64


class ArraySource:
    """Frames already in memory (tests, the default-model recipe)."""

    def __init__(self, frames, name: str = "array", fps: float = 10.0):
        self.frames = np.asarray(frames, dtype=np.float32)
        self.name = name
        self.fps = float(fps)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0]) if self.frames.ndim else 0

    def shape_ok(self) -> bool:
        return self.frames.ndim == 3 and self.frames.shape[1:] == FRAME_SHAPE

    def iter_chunks(self, chunk_frames: int) -> Iterator[tuple]:
        for start in range(0, self.n_frames, chunk_frames):
            yield start, self.frames[start:start + chunk_frames]

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.frames[start:stop]


class RecordingSource:
    """A recording file, opened for each pass and closed after it."""

    def __init__(self, path):
        from thermalcount.store import open_recording

        self.path = Path(path)
        self.name = self.path.name
        with open_recording(self.path) as recording:  # RecordingError for a bad file
            self.n_frames = recording.n_frames
            self.fps = recording.fps
            self.travel_axis_attr = recording.travel_axis

    def shape_ok(self) -> bool:
        return True  # the store checks the (N, 8, 8) schema on open

    def iter_chunks(self, chunk_frames: int) -> Iterator[tuple]:
        from thermalcount.store import open_recording

        with open_recording(self.path) as recording:
            for start in range(0, self.n_frames, chunk_frames):
                yield start, recording.read(start, start + chunk_frames)

    def read(self, start: int, stop: int) -> np.ndarray:
        from thermalcount.store import open_recording

        with open_recording(self.path) as recording:
            return recording.read(start, stop)


def as_source(item):
    if isinstance(item, (ArraySource, RecordingSource)):
        return item
    if isinstance(item, np.ndarray):
        return ArraySource(item)
    return RecordingSource(item)


@dataclass
class Sample:
    """A bounded uniform sample of frames, kept as the ``capacity`` smallest random keys."""

    capacity: int
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    frames: np.ndarray = field(default_factory=lambda: np.empty((0, PIXELS), np.float32))

    def offer(self, keys: np.ndarray, frames: np.ndarray) -> None:
        if self.capacity <= 0 or len(keys) == 0:
            return
        keys = np.concatenate([self.keys, keys])
        frames = np.concatenate([self.frames, frames])
        if len(keys) > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keys, frames = keys[keep], frames[keep]
        self.keys, self.frames = keys, frames

    def ordered(self) -> np.ndarray:
        """The sampled frames in a deterministic order (by key)."""
        return self.frames[np.argsort(self.keys, kind="stable")]


@dataclass
class DataSummary:
    files: list  # [{"name", "frames", "sha256", "fps"}]
    n_frames: int
    n_train: int
    n_val: int


class TrainingData:
    """The frames of one or more sources, split into training and validation frames."""

    def __init__(self, sources, *, seed: int = 0, val_split: float = 0.1, chunk_frames: int = 16384,
                 pool_chunks: int = 4, sample_size: int = 50_000, val_size: int = 20_000,
                 pattern_seconds: Optional[float] = None):
        if not 0.0 <= val_split < 0.5:
            raise TrainingError(f"--val-split must be at least 0 and below 0.5 (got {val_split})")
        self.sources = [as_source(item) for item in sources]
        if not self.sources:
            raise TrainingError("no recordings given; pass at least one .h5 file to train on")
        self.seed = int(seed)
        self.val_split = float(val_split)
        self.chunk_frames = int(chunk_frames)
        self.pool_chunks = int(pool_chunks)
        self.sample = Sample(sample_size)
        self.validation = Sample(val_size)
        self.summary: Optional[DataSummary] = None
        #: most frames held at once by any pass (chunk accounting for the bounded-memory tests)
        self.peak_frames_in_memory = 0
        #: The stream's per-pixel background is removed from every frame the model trains on,
        #: exactly as the runtime will (thermalcount.model.pattern). The tracker's state at
        #: each chunk start is kept from the scan, so chunks can be read in any order later.
        self.pattern_seconds = pattern_seconds
        self._pattern_at: dict = {}  # (source index, start) -> PatternTracker.state()

    def _tracker(self, index: int):
        from thermalcount.model.pattern import PatternTracker, stream_fps

        return PatternTracker(self.pattern_seconds, stream_fps(self.sources[index].fps))

    def corrected(self, index: int, start: int, flat: np.ndarray) -> np.ndarray:
        """Frames of chunk (index, start) with the stream's pattern removed, as at run time."""
        if self.pattern_seconds is None:
            return flat
        tracker = self._tracker(index)
        tracker.restore(self._pattern_at[(index, start)])
        return tracker.correct(flat.reshape(-1, 8, 8)).reshape(-1, PIXELS)

    # -- pass 0: check everything, hash it, take the samples --------------------------------
    def scan(self, on_chunk: Optional[Callable[[int], None]] = None) -> DataSummary:
        files, total, n_val = [], 0, 0
        for index, source in enumerate(self.sources):
            if not source.shape_ok():
                raise TrainingError(f"{source.name}: frames must have shape (N, 8, 8), got {source.frames.shape}")
            digest = hashlib.sha256()
            tracker = None if self.pattern_seconds is None else self._tracker(index)
            for start, frames in source.iter_chunks(self.chunk_frames):
                frames = np.asarray(frames, dtype=np.float32)
                flat = frames.reshape(len(frames), PIXELS)
                bad = ~np.isfinite(flat).all(axis=1)
                if bad.any():
                    raise TrainingError(
                        f"{source.name}: frame {start + int(np.flatnonzero(bad)[0])} holds NaN or infinite values "
                        f"({int(bad.sum())} such frames in this part); drop them from the recording before training")
                # The AMG8833 cannot report outside its specified range: such values are a
                # broken sensor or a units mix-up (Kelvin, Fahrenheit, raw counts).
                absurd = ((flat < PIXEL_RANGE_C[0]) | (flat > PIXEL_RANGE_C[1])).any(axis=1)
                if absurd.any():
                    raise TrainingError(
                        f"{source.name}: frame {start + int(np.flatnonzero(absurd)[0])} has pixels outside the "
                        f"sensor's range {PIXEL_RANGE_C[0]:g}..{PIXEL_RANGE_C[1]:g} °C ({int(absurd.sum())} such "
                        "frames in this part); check the units or drop those frames before training")
                digest.update(np.ascontiguousarray(frames, dtype="<f4").tobytes())
                if tracker is not None:
                    self._pattern_at[(index, start)] = tracker.state()
                    flat = tracker.correct(frames).reshape(-1, PIXELS)
                is_val, keys = self._split(index, start, len(frames))
                self.sample.offer(keys[~is_val], flat[~is_val])
                self.validation.offer(keys[is_val], flat[is_val])
                n_val += int(is_val.sum())
                self._account(len(frames) + self.sample.capacity + self.validation.capacity)
                if on_chunk:
                    on_chunk(len(frames))
            files.append({"name": source.name, "frames": source.n_frames, "sha256": digest.hexdigest(),
                          "fps": source.fps})
            total += source.n_frames
        self.summary = DataSummary(files, total, total - n_val, n_val)
        return self.summary

    def _split(self, source_index: int, start: int, n: int) -> tuple:
        rng = np.random.default_rng([self.seed, source_index, start, 7])
        keys = rng.random(n)
        is_val = rng.random(n) < self.val_split
        return is_val, keys

    def _account(self, frames_held: int) -> None:
        self.peak_frames_in_memory = max(self.peak_frames_in_memory, frames_held)

    # -- training passes ---------------------------------------------------------------------
    def chunk_index(self) -> list:
        return [(i, start) for i, source in enumerate(self.sources)
                for start in range(0, source.n_frames, self.chunk_frames)]

    def minibatches(self, epoch: int, batch_size: int) -> Iterator[np.ndarray]:
        """(B, 64) float32 °C training frames; chunks in shuffled order, pooled and shuffled."""
        rng = np.random.default_rng([self.seed, epoch, 11])
        chunks = self.chunk_index()
        order = rng.permutation(len(chunks))
        carry = np.empty((0, PIXELS), np.float32)
        for first in range(0, len(order), self.pool_chunks):
            parts = [carry]
            for position in order[first:first + self.pool_chunks]:
                index, start = chunks[position]
                frames = self.sources[index].read(start, start + self.chunk_frames)
                flat = self.corrected(index, start, np.asarray(frames, dtype=np.float32).reshape(-1, PIXELS))
                is_val, _ = self._split(index, start, len(flat))
                parts.append(flat[~is_val])
            pool = np.concatenate(parts)
            self._account(len(pool))
            pool = pool[rng.permutation(len(pool))]
            full = len(pool) // batch_size * batch_size
            for begin in range(0, full, batch_size):
                yield pool[begin:begin + batch_size]
            carry = pool[full:]
        if len(carry):
            yield carry

    def iter_all(self) -> Iterator[tuple]:
        """(source index, start, (n, 64) frames) for every frame in order (assignment pass),
        the per-pixel background removed; after :meth:`scan`."""
        for index, source in enumerate(self.sources):
            for start, frames in source.iter_chunks(self.chunk_frames):
                flat = self.corrected(index, start, np.asarray(frames, dtype=np.float32).reshape(-1, PIXELS))
                self._account(len(flat))
                yield index, start, flat
