"""The one interface every sensor implements, and the frame it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class SensorFrame:
    """One 8x8 frame in °C as the sensor delivered it (after orientation).

    ``time`` is unix seconds: wall clock for real sensors, the recording's own timestamps
    for a replay, a virtual clock (start + index / fps) for the simulator. ``index`` counts
    frames in this sensor's stream from 0 (for a replay: the index in the recording).
    """

    pixels: np.ndarray  # float32 (8, 8), °C
    time: float
    index: int
    thermistor: Optional[float] = None  # board temperature in °C, when the sensor has one


@dataclass
class SensorInfo:
    """What a sensor tells the frame store about itself (stored as recording attributes)."""

    sensor: str  # "amg8833", "emulated", "sim", "replay"
    fps: float
    address: Optional[int] = None
    bus: Optional[int] = None
    orientation: str = "rotate=0,mirror=none"
    extra: dict = field(default_factory=dict)


class Sensor:
    """Base class: ``read()`` the next frame, ``close()`` when done; usable as a context manager.

    Every sensor paces itself: ``read()`` blocks until the next frame is due (a real AMG8833
    at its frame rate; the simulator, emulated device and replays at ``speed`` times real
    time, or not at all when ``speed`` is None, i.e. ``--speed max``). It raises
    :class:`~thermalcount.errors.SensorError` for a transient fault (the caller retries; the
    sensor re-initialises itself as needed), :class:`~thermalcount.errors.EndOfStream` when a
    finite source is exhausted.
    """

    info: SensorInfo
    #: True for sources that end (a replay); False for live sensors and the simulator.
    finite: bool = False

    def read(self) -> SensorFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __iter__(self):
        from thermalcount.errors import EndOfStream

        while True:
            try:
                yield self.read()
            except EndOfStream:
                return


class Pacer:
    """Sleeps so that frames come out at ``fps * speed`` per second of wall time.

    ``speed=None`` never sleeps. Deadlines advance by whole periods from the start, so a
    slow frame is caught up instead of shifting every later frame; if we fall more than one
    second behind we re-anchor rather than burst.
    """

    def __init__(self, fps: float, speed: Optional[float] = 1.0, clock=None, sleep=None):
        import time

        self.period = None if speed is None else 1.0 / (fps * speed)
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._next = None

    def wait(self) -> None:
        if self.period is None:
            return
        now = self._clock()
        if self._next is None or now - self._next > 1.0:
            self._next = now
        delay = self._next - now
        if delay > 0:
            self._sleep(delay)
        self._next += self.period
