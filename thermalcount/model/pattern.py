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
* **Slow.** Time constant ``seconds`` (60 s for the default model). A pixel more than
  ``GATE_C`` above its pattern (someone there) learns 5x slower still, so a lingerer is not
  absorbed; a warm object that appears is, in a few minutes. A pixel far BELOW its pattern
  (something warm has left) learns within seconds.
* **Quick start.** The first frame is the first pattern, so the room's fixed pattern is gone
  from the start; for the first ``seconds`` the pattern is the plain average of the frames.
* **In steps.** The pattern is brought up to date every ``STEP`` frames (3.2 s at 10 FPS),
  in closed form over the step's frames, and each frame is corrected with the pattern of the
  last step boundary before it. A live frame costs one subtraction and one copy; the same
  stream gives the same output frame by frame (:meth:`correct_one`, the live loop) or in
  chunks of any size (:meth:`correct`, ``count``), up to float rounding.
* **Off the frame's critical path.** The step update (``_advance``, ~30-55 us) used to run
  inside every 32nd live frame, which made it the whole frame's p99 by construction.
  :meth:`correct_one` now leaves a full step pending and the live loop calls :meth:`settle`
  after the frame's decision; whoever does not settle gets the same output, because
  :meth:`correct_one`, :meth:`correct` and :meth:`state` run a pending step first.

  Two paths for one job, kept because each is the fast one for its caller and
  tests/test_pattern.py pins them together bit for bit (simulated doorways at 10 and 1 FPS,
  random cuts, broken frames): both advance the pattern with the same :meth:`_advance`, and
  ``correct`` only moves the per-frame work out of the step loop. Measured on a 300,000-frame
  simulated recording (2 cores, load ~3.5), ``correct_one`` costs 3.5 us a frame against
  10.3 us for ``correct`` of one frame (live budget: 50 us a frame), and ``correct`` in
  batches ran at 0.50 M frames/s against 0.29 M for ``correct_one`` in a loop (``count``);
  since, on 131,072 frames of a 1 M-frame recording (2 cores, load 2-4, same run), 0.49 M
  frames/s before the step loop was slimmed and 0.77 M after.

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
#: constant of COOL_SECONDS (at most MAX_COOL_RATE per frame: at 1 FPS a frame is 1 s).
#: Noise rarely reaches it (4 standard deviations).
COOL_C = 1.5
COOL_SECONDS = 1.0
MAX_COOL_RATE = 0.3
#: Frames per step: the pattern is updated at every multiple of STEP frames of the stream.
STEP = 32


#: The frame rate assumed for a stream that does not say (the AMG8833's default).
DEFAULT_FPS = 10.0


def stream_fps(fps) -> float:
    """``fps`` when it is a positive number, else DEFAULT_FPS (a recording without the attribute)."""
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        return DEFAULT_FPS
    return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS


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
        #: The plain, warm and cool rates once every frame of a step is at the floor rate
        #: (after ``seconds`` of frames: nearly every step of a stream), as scalars.
        self._floor_rates = (self.floor_rate, SLOW_FACTOR * self.floor_rate,
                             max(self.floor_rate, self.cool_rate))
        self._step_frames = np.empty((STEP, PIXELS), np.float64)  # this step's frames, relative
        self._flat = np.empty(PIXELS, np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget the pattern: the next frame starts a new stream."""
        self.frames_seen = 0
        self.pattern = np.zeros(PIXELS, np.float64)
        self._held = 0  # frames of the current step so far

    # -- state, for training (chunks read in any order) --------------------------------------
    def state(self) -> tuple:
        """Everything the tracker knows, as a copy (see :meth:`restore`)."""
        self.settle()  # a pending step is part of the state either way; settled, it is smaller
        return self.pattern.copy(), self.frames_seen, self._step_frames[:self._held].copy()

    def restore(self, state: tuple) -> None:
        pattern, frames_seen, held = state
        self.pattern = pattern.copy()
        self.frames_seen = int(frames_seen)
        self._held = len(held)
        self._step_frames[:self._held] = held

    # -- correcting frames -------------------------------------------------------------------
    def correct_one(self, frame: np.ndarray) -> np.ndarray:
        """(8, 8) °C -> (8, 8) float32 °C with the pattern removed; learns the frame."""
        if self._held == STEP:
            self._advance(self._step_frames)  # the caller did not settle() the last step
        flat = self._flat
        flat[:] = frame.reshape(PIXELS)
        mean = flat.sum() * (1.0 / PIXELS)
        if not math.isfinite(mean):
            # A broken frame (NaN, inf) is passed on as it is - the caller marks it - and
            # not learnt: it must not poison the pattern for the rest of the stream.
            out = (flat - self.pattern).astype(np.float32).reshape(8, 8)
            if self.frames_seen == 0:
                return out  # nothing learnt yet: the next good frame starts the stream
            self._step_frames[self._held] = self.pattern
        else:
            if self.frames_seen == 0:
                self.pattern = flat - mean  # the first frame is all there is to go on
            out = (flat - self.pattern).astype(np.float32).reshape(8, 8)
            np.subtract(flat, mean, out=self._step_frames[self._held])
        self._held += 1
        self.frames_seen += 1
        # A full step is left pending (see settle): this frame's output does not depend on it.
        return out

    def settle(self) -> bool:
        """Bring the pattern up to date if :meth:`correct_one` left a full step pending.

        The live loop calls this after a frame's state is decided (counter, lights), in the
        wait for the next frame, so the step's update is off the frame's critical path. A
        caller that never calls it gets the same output: the next :meth:`correct_one` or
        :meth:`correct` runs a pending update first. True when there was one.
        """
        if self._held == STEP:
            self._advance(self._step_frames)
            return True
        return False

    def correct(self, frames: np.ndarray) -> np.ndarray:
        """(N, 8, 8) °C -> (N, 8, 8) float32, as :meth:`correct_one` on each frame in turn."""
        flat = np.asarray(frames, np.float64).reshape(-1, PIXELS)
        n = len(flat)
        if self._held == STEP:
            self._advance(self._step_frames)  # left pending by correct_one (see settle)
        out = np.empty((n, PIXELS), np.float32)
        mean = flat.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):  # inf - inf in a broken frame: NaN, not learnt
            relative = flat - mean
        # Broken (NaN, inf) exactly when the mean is not finite, as correct_one decides: 64
        # float32 values cannot overflow a float64 sum.
        broken = ~np.isfinite(mean[:, 0])
        start = 0
        if self.frames_seen == 0:
            # The first good frame starts the stream; broken ones before it pass unlearnt.
            good = np.flatnonzero(~broken)
            start = int(good[0]) if len(good) else n
            np.subtract(flat[:start], self.pattern, out=out[:start], casting="same_kind")
            if start < n:
                self.pattern = relative[start].copy()
        # Steps here: the rest of the one in progress, whole ones, the start of the next. The
        # pattern each sees (that of its start) is noted in the loop, which does only what is
        # sequential, and taken off all frames at once after it.
        first, held = start, self._held
        seen = np.empty((n // STEP + 2, PIXELS))
        steps = 0
        any_broken = broken[start:].any()
        while start < n:
            stop = min(n, start + STEP - self._held)
            seen[steps] = self.pattern
            steps += 1
            if any_broken:
                step_broken = broken[start:stop]
                if step_broken.any():
                    relative[start:stop][step_broken] = self.pattern  # not learnt (see correct_one)
            self.frames_seen += stop - start
            if self._held == 0 and stop - start == STEP:
                self._advance(relative[start:stop])  # a whole step in this batch: no copy
            else:
                self._step_frames[self._held:self._held + stop - start] = relative[start:stop]
                self._held += stop - start
                if self._held == STEP:
                    self._advance(self._step_frames)
            start = stop
        if first < n:
            head = min(n, first + STEP - held)  # the step in progress
            whole = (n - head) // STEP
            tail = head + whole * STEP
            np.subtract(flat[first:head], seen[0], out=out[first:head], casting="same_kind")
            np.subtract(flat[head:tail].reshape(whole, STEP, PIXELS), seen[1:1 + whole, None, :],
                        out=out[head:tail].reshape(whole, STEP, PIXELS), casting="same_kind")
            np.subtract(flat[tail:], seen[1 + whole], out=out[tail:], casting="same_kind")
        return out.reshape(n, 8, 8)

    def _advance(self, relative: np.ndarray) -> None:
        """Bring the pattern up to date with one full step of frames (relative to their mean).

        Per pixel p_t = (1 - a_t) p_(t-1) + a_t r_t, so after the step
        p = S_1 p_0 + sum_k a_k S_(k+1) r_k with S_k the product of (1 - a_j) for j >= k (a
        product from the end: no division, nothing to underflow). Rates: 1/k for the k-th
        frame of the stream, at least ``floor_rate``; SLOW_FACTOR of that where the pixel is
        warmer than its pattern by GATE_C; at least ``cool_rate`` where it is cooler by
        COOL_C (never both). This is most of the work of ``count`` (31,250 steps a million
        frames), so it makes as few passes over the step's values as it can: measured 15 %
        fewer microseconds a step than computing the rates in two multiplications.
        """
        first_k = self.frames_seen - len(relative) + 1
        if 1.0 / first_k <= self.floor_rate:  # 1/k <= floor_rate for every later k too
            plain, slow, quick = self._floor_rates
        else:
            k = first_k + np.arange(len(relative), dtype=np.float64)
            plain = np.maximum(1.0 / k, self.floor_rate)[:, None]
            slow, quick = SLOW_FACTOR * plain, np.maximum(plain, self.cool_rate)
        change = relative - self.pattern
        rates = np.where(change > GATE_C, slow, np.where(change < -COOL_C, quick, plain))
        keep = 1.0 - rates
        after = np.empty_like(rates)  # after[k]: product of (1 - a_j) for the frames after k
        after[-1] = 1.0
        np.multiply.accumulate(keep[:0:-1], axis=0, out=after[-2::-1])
        rates *= after
        rates *= relative
        self.pattern = (after[0] * keep[0]) * self.pattern + rates.sum(axis=0)
        self._held = 0


__all__ = ["DEFAULT_FPS", "PatternTracker", "stream_fps"]
