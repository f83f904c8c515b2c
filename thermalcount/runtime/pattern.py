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

import math

import numpy as np

PIXELS = 64
#: A pixel this much (°C) above its pattern holds something warm - most likely a person - and
#: learns at SLOW_FACTOR of the rate: a lingerer is not absorbed, a laptop still is, in minutes.
GATE_C = 1.0
SLOW_FACTOR = 0.2
#: A pixel this much (°C) BELOW its pattern shows where something warm has left - often
#: someone who stood under the sensor when the stream began - and learns with a time
#: constant of COOL_SECONDS (the rate capped at MAX_COOL_RATE per frame, which keeps the
#: closed form far from underflow at 1 FPS). Noise rarely reaches it (4 standard deviations).
COOL_C = 1.5
COOL_SECONDS = 1.0
MAX_COOL_RATE = 0.3
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
        self.cool_rate = min(1.0 - math.exp(-1.0 / (COOL_SECONDS * fps)), MAX_COOL_RATE)
        self.reset()

    def reset(self) -> None:
        """Forget the pattern: the next frame starts a new stream."""
        self.frames_seen = 0
        self.pattern = np.zeros(PIXELS, np.float64)
        self._gate_reference = self.pattern
        self._flat = np.empty(PIXELS, np.float64)

    def _rates(self, relative: np.ndarray, base) -> np.ndarray:
        """Per-pixel update rates for frames ``relative`` (to their mean): ``base`` where the
        pixel is near its pattern, 1/5 of it where warmer, ``cool_rate`` where much cooler."""
        change = relative - self._gate_reference
        rates = np.where(change > GATE_C, SLOW_FACTOR, 1.0) * base
        return np.where(change < -COOL_C, np.maximum(rates, self.cool_rate), rates)

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
            rate = self._rates(flat[None, :], max(1.0 / (self.frames_seen + 1), self.floor_rate))[0]
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
        out = np.empty((n, PIXELS), np.float32)
        done = 0
        if n and self.frames_seen == 0:
            out[0] = self.correct_one(frames[0]).reshape(PIXELS)
            done = 1
        if done < n:
            # Per frame, vectorised over the batch; only the recurrence goes step by step.
            flat = np.asarray(frames[done:], np.float64).reshape(-1, PIXELS)
            relative = flat - flat.mean(axis=1, keepdims=True)
            base = np.maximum(1.0 / (self.frames_seen + 1 + np.arange(len(flat), dtype=np.float64)), self.floor_rate)
            before = np.empty_like(flat)
            start = 0
            while start < len(flat):
                stop = min(len(flat), start + STEP - self.frames_seen % STEP)
                self._step(relative[start:stop], base[start:stop], before[start:stop])
                start = stop
            np.subtract(flat, before, out=flat)
            out[done:] = flat
        return out.reshape(n, 8, 8)

    def _step(self, relative: np.ndarray, base: np.ndarray, before: np.ndarray) -> None:
        """Frames up to the next step boundary: writes the pattern each frame sees into
        ``before`` and advances the state. The recurrence p_t = (1 - a_t) p_(t-1) + a_t r_t
        (per pixel) in closed form, p_t = P_t (p_0 + sum_k a_k r_k / P_k) with P_t the
        running product of (1 - a); a step is short enough that P stays far from underflow."""
        if self.frames_seen % STEP == 0:
            self._gate_reference = self.pattern.copy()
        rates = self._rates(relative, base[:, None])
        keep = np.multiply.accumulate(1.0 - rates, axis=0)  # cheaper than np.cumprod here
        rates *= relative
        rates /= keep
        after = np.add.accumulate(rates, axis=0)
        after += self.pattern
        after *= keep
        before[0] = self.pattern
        before[1:] = after[:-1]  # frame t sees the pattern of the frames before it
        self.pattern = after[-1].copy()
        self.frames_seen += len(relative)


__all__ = ["PatternTracker"]
