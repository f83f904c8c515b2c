"""Frame sources for the emulated AMG8833: what its pixel registers show, frame after frame.

A source has ``next_frame()`` returning ``(pixels °C (8, 8), thermistor °C or None)``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


class CallableSource:
    """Frames from ``fn(index)`` returning an (8, 8) array in °C, or ``(array, thermistor_celsius)``."""

    def __init__(self, fn, thermistor: float = 24.0):
        self._fn, self._index, self._thermistor = fn, 0, thermistor

    def next_frame(self):
        result = self._fn(self._index)
        self._index += 1
        if isinstance(result, tuple):
            return result
        return result, self._thermistor


class SimulatorSource:
    """Frames from :class:`thermalcount.sensors.sim.simulator.Simulator`, generated in chunks."""

    def __init__(self, scenario: Optional[str] = None, *, seed: Optional[int] = None, fps: float = 10.0,
                 chunk_frames: int = 256):
        from thermalcount.sensors.sim.simulator import Simulator  # imported lazily: numpy-heavy

        self._sim = Simulator(scenario or "mixed", seed=0 if seed is None else seed, fps=fps)
        self._chunk_frames = chunk_frames
        self._frames, self._thermistor, self._pos = None, None, 0

    def next_frame(self):
        if self._frames is None or self._pos >= len(self._frames):
            chunk = self._sim.generate(self._chunk_frames)
            self._frames, self._thermistor, self._pos = chunk.frames, chunk.thermistor, 0
        frame = self._frames[self._pos]
        thermistor = float(self._thermistor[self._pos])
        self._pos += 1
        return frame, thermistor


def as_frame_source(source):
    """Accept an object with ``next_frame()``, a callable ``fn(index)``, or a (n, 8, 8) array (looped)."""
    if hasattr(source, "next_frame"):
        return source
    if callable(source):
        return CallableSource(source)
    frames = np.asarray(source, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (8, 8) or len(frames) == 0:
        raise TypeError("a frame source is an object with next_frame(), a callable or an (n, 8, 8) array")
    return CallableSource(lambda i: frames[i % len(frames)])
