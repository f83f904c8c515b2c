"""The per-pixel background a stream remembers: the sensor's fixed pattern and static warm things.

Each AMG8833 pixel reads an empty room up to ~2 °C off its neighbours (the fixed pattern,
docs/hardware.md), and a laptop or radiator in view is a warm patch that never moves. A
single frame cannot tell either from a person standing still; a stream can, because they
stay. :class:`PatternTracker` keeps, per pixel, a slow average of how far that pixel sits
above or below the frame mean, and subtracts it from every new frame before the model's
graph sees it. What is left is what changed: people.

* **Relative to the frame mean.** The whole room warming or cooling (drift, sun, heating)
  moves the frame mean at once and is not learned pixel by pixel, so it never lags; the
  graph's own per-frame background removal takes it off. The pattern has mean 0, so the
  frame mean, and the room temperature the graph normalises contrast with, are unchanged.
* **Slow.** Time constant ``seconds`` (30 s for the default model): a person crossing in
  2 s leaves ~7 % of their heat in the pattern, a lingerer standing 8 s ~25 %; a warm object
  that appears is absorbed within a minute or two.
* **Quick start.** For the first ``seconds`` of a stream the pattern is the plain average
  of the frames seen so far, so the first frame already removes the room's pattern.
* **Causal.** Frame *t* is corrected with the pattern of frames before it; the same stream
  gives the same output frame by frame (:meth:`correct_one`, the live loop) or in chunks of
  any size (:meth:`correct`, ``count``), up to float rounding.

The parameters travel in the model's metadata (``preprocessing.pattern_seconds``), so the
model is still one file. No torch, no scikit-learn: this runs on the Pi.
"""

from __future__ import annotations

import numpy as np

PIXELS = 64
#: A pixel this much (°C) above its pattern holds something warm - most likely a person - and
#: learns at SLOW_FACTOR of the rate: a lingerer is not absorbed, a laptop still is, in minutes.
GATE_C = 1.0
SLOW_FACTOR = 0.2
#: Frames per step: which pixels are warm is judged against the pattern at the start of each
#: step of this many frames (the same steps live and in batches, so both agree), and each step
#: is one closed-form update in batches.
STEP = 32


class PatternTracker:
    """Per-pixel pattern of one frame stream. ``seconds`` time constant, ``fps`` of the stream."""

    def __init__(self, seconds: float, fps: float = 10.0):
        seconds, fps = float(seconds), float(fps)
        if not seconds > 0 or not fps > 0:
            raise ValueError("the pattern time constant and the frame rate must be positive")
        self.seconds = seconds
        self.fps = fps
        #: The slowest update rate per frame, reached after ``seconds`` of frames.
        self.floor_rate = 1.0 / max(seconds * fps, 1.0)
        self.reset()

    def reset(self) -> None:
        """Forget the pattern: the next frame starts a new stream."""
        self.frames_seen = 0
        self.pattern = np.zeros(PIXELS, np.float64)
        self._gate_reference = self.pattern
        self._flat = np.empty(PIXELS, np.float64)
        self._rate = np.empty(PIXELS, np.float64)

    def correct_one(self, frame: np.ndarray) -> np.ndarray:
        """(8, 8) °C -> (8, 8) float32 °C with the pattern so far removed; learns the frame."""
        flat = self._flat
        flat[:] = frame.reshape(PIXELS)
        if self.frames_seen == 0:
            self.pattern = flat - flat.mean()  # the first frame is all there is to go on
        out = (flat - self.pattern).astype(np.float32).reshape(8, 8)
        if self.frames_seen:
            if self.frames_seen % STEP == 0:
                self._gate_reference = self.pattern.copy()
            flat -= flat.mean()  # now relative to the frame mean
            rate = self._rate
            np.subtract(flat, self._gate_reference, out=rate)
            np.greater(rate, GATE_C, out=rate)  # 1.0 where warm
            rate *= SLOW_FACTOR - 1.0
            rate += 1.0
            rate *= max(1.0 / (self.frames_seen + 1), self.floor_rate)
            flat -= self.pattern
            flat *= rate
            self.pattern += flat
        else:
            self._gate_reference = self.pattern.copy()
        self.frames_seen += 1
        return out

    def correct(self, frames: np.ndarray) -> np.ndarray:
        """(N, 8, 8) °C -> (N, 8, 8) float32, as :meth:`correct_one` on each frame in turn."""
        frames = np.asarray(frames)
        n = len(frames)
        out = np.empty((n, 8, 8), np.float32)
        done = 0
        if n and self.frames_seen == 0:
            out[0] = self.correct_one(frames[0])
            done = 1
        while done < n:
            stop = min(n, done + STEP - self.frames_seen % STEP)
            out[done:stop] = self._correct_step(frames[done:stop])
            done = stop
        return out

    def _correct_step(self, frames: np.ndarray) -> np.ndarray:
        """Frames up to the next step boundary. The recurrence p_t = (1 - a_t) p_(t-1) + a_t r_t
        (per pixel) in closed form: p_t = P_t (p_0 + sum_k a_k r_k / P_k), P_t the running
        product of (1 - a); a step is short enough that P stays far from underflow."""
        if self.frames_seen % STEP == 0:
            self._gate_reference = self.pattern.copy()
        flat = np.asarray(frames, np.float64).reshape(-1, PIXELS)
        relative = flat - flat.mean(axis=1, keepdims=True)
        k = self.frames_seen + 1 + np.arange(len(flat), dtype=np.float64)
        rates = np.maximum(1.0 / k, self.floor_rate)[:, None] * np.where(
            relative - self._gate_reference > GATE_C, SLOW_FACTOR, 1.0)
        keep = np.cumprod(1.0 - rates, axis=0)
        after = keep * (self.pattern + np.cumsum(rates * relative / keep, axis=0))
        before = np.vstack((self.pattern[None, :], after[:-1]))  # frame t sees the pattern of frames < t
        self.pattern = after[-1].copy()
        self.frames_seen += len(flat)
        return (flat - before).astype(np.float32).reshape(-1, 8, 8)


__all__ = ["PatternTracker"]
