"""The live-loop stages ``thermalcount bench`` times, each as a zero-argument callable.

Frames come from the emulated AMG8833 through the real driver and smbus2; the counter and
the light decision see the states of those frames in order, at 10 FPS times.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from thermalcount.lights.policy import DEFAULT_OFF_DELAY

FPS = 10.0


def capture_frames(n_frames: int, *, seed: int = 0, bus: int = 1):
    """``(sensor, frames, raw)``: n frames read from the emulated AMG8833 at full speed.

    The sensor stays open (the caller closes it): the interleaved loop keeps reading from it
    to time the full ``read()``. ``raw`` holds each frame's 128 register bytes.
    """
    from thermalcount.sensors import open_sensor
    from thermalcount.sensors.conversions import pixels_to_bytes

    sensor = open_sensor("emulated", speed=None, bus=bus, seed=seed)
    try:
        frames = np.empty((n_frames, 8, 8), np.float32)
        for i in range(n_frames):
            frames[i] = sensor.read().pixels
    except BaseException:
        sensor.close()
        raise
    # Orientation is the identity here, so the register bytes are the frame's own bytes.
    raw = [pixels_to_bytes(frame) for frame in frames]
    return sensor, frames, raw


class _Cursor:
    """A frame index that runs on forever over a pool, with 10 FPS times that never go back."""

    __slots__ = ("i", "n")

    def __init__(self, n: int):
        self.i, self.n = -1, n

    def next(self) -> tuple:
        self.i += 1
        return self.i % self.n, self.i * (1.0 / FPS)


def live_variants(models: dict, frames: np.ndarray, raw: list, sensor, meanings, off_delay: float = DEFAULT_OFF_DELAY):
    """Zero-argument callables, one per live stage and backend, each on its own cursor."""
    from thermalcount.lights.policy import LightPolicy
    from thermalcount.runtime.counter import Counter

    n = len(frames)
    first_model = next(iter(models.values()))
    states = first_model.infer_states(frames)
    occupancy = np.empty(n, np.int64)
    replay = Counter(meanings)
    for i in range(n):
        replay.update(i / FPS, int(states[i]), i)
        occupancy[i] = replay.occupancy
    states_list, occupancy_list = [int(s) for s in states], [int(o) for o in occupancy]
    variants = {}
    read = sensor.read
    variants["sensor_read"] = read

    # The driver's own decode of bytes already transferred (stale check, lookup, range,
    # orientation, the frame), on the same sensor the read row uses: the pool's frames differ
    # one from the next, so the stale check never fires.
    decode, decode_cursor = sensor.frame_from_bytes, _Cursor(n)

    def decode_step():
        i, _ = decode_cursor.next()
        decode(raw[i])
    variants["decode"] = decode_step

    counter, counter_cursor = Counter(meanings), _Cursor(n)

    def counter_step():
        i, t = counter_cursor.next()
        counter.update(t, states_list[i], counter_cursor.i)
    variants["counter"] = counter_step

    policy, policy_cursor = LightPolicy(off_delay), _Cursor(n)

    def light_step():
        i, t = policy_cursor.next()
        policy.update(t, occupancy_list[i])
    variants["light_decision"] = light_step

    for backend, model in models.items():
        variants[f"inference.{backend}"] = inference(model, frames)
        variants[f"whole_frame.{backend}"] = _whole_frame(
            model, raw, meanings, off_delay, decode=decode,
            rows=(f"pattern_update.{backend}", f"pattern_update_steps.{backend}", f"whole_frame_and_update.{backend}"))
        variants[f"whole_frame_with_read.{backend}"] = _whole_frame(model, raw, meanings, off_delay, read=read)
    return variants, states


class AfterDecision:
    """A live stage timed up to the frame's decision, then ``gap``: the work the live loop does
    after it, before the next frame (``Model.settle``, the pattern's step update).

    The interleaved loop times ``step`` as the stage's row and ``gap`` right after it; with
    ``rows`` = (update, steps, total) the gap gets rows of its own, so nothing is hidden:
    ``update`` every frame, ``steps`` only the frames where it did work (``gap`` returned
    True), ``total`` the stage and its gap added frame by frame.
    """

    __slots__ = ("step", "gap", "rows")

    def __init__(self, step: Callable, gap: Callable, rows=None):
        self.step, self.gap, self.rows = step, gap, rows

    def __call__(self) -> None:  # warm-up, and callers that want one whole frame
        self.step()
        self.gap()


def _whole_frame(model, raw: list, meanings, off_delay: float, *, read=None, decode=None, rows=None) -> AfterDecision:
    """One frame of the live loop: ``read()`` (transfer and decode) or ``decode(raw bytes)``,
    inference, counter, light decision; then, as the live loop does after the decision, the
    model's deferred work (settle)."""
    from thermalcount.lights.policy import LightPolicy
    from thermalcount.runtime.counter import Counter

    cursor = _Cursor(len(raw))
    counter, policy = Counter(meanings), LightPolicy(off_delay)
    model = own_stream(model)
    infer_one, settle = model.infer_one, model.settle
    update, decide = counter.update, policy.update

    def step():
        i, t = cursor.next()
        pixels = read().pixels if read is not None else decode(raw[i]).pixels
        update(t, infer_one(pixels), cursor.i)
        decide(t, counter.occupancy)
    return AfterDecision(step, settle, rows)


def inference(model, frames: np.ndarray) -> "AfterDecision":
    """``Model.infer_one`` (pattern correction + graph) on its own stream; the step update it
    leaves runs after each call, untimed (the whole-frame rows time it)."""
    stream = own_stream(model)
    return AfterDecision(on_frames(stream.infer_one, frames), stream.settle)


def own_stream(model):
    """The model (same backend session) with a frame stream of its own: the bench runs several
    stages on one model in turn, and each must see one continuous stream, its pattern steps
    settled by itself, not left pending by another stage."""
    import copy

    model = copy.copy(model)
    model.start_stream(FPS)  # binds infer_one and settle to this copy's own tracker
    return model


def on_frames(infer_one: Callable, frames: np.ndarray) -> Callable:
    cursor = _Cursor(len(frames))

    def step():
        infer_one(frames[cursor.next()[0]])
    return step
