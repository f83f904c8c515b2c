"""The simulator as a sensor (``--sensor sim``): frames paced like a real part, with ground truth."""

from __future__ import annotations

from typing import Optional

from thermalcount.sensors.base import Pacer, Sensor, SensorFrame, SensorInfo
from thermalcount.sensors.sim.simulator import GroundTruthEvent, SimChunk, Simulator


class SimSensor(Sensor):
    """The simulator as a :class:`Sensor` (``--sensor sim``), paced like a real one.

    ``ground_truth`` holds the events of the frames read so far, unless
    ``keep_ground_truth`` is False (``run`` never reads it, and over weeks the list grows
    by ~200 bytes per crossing; measured with benchmarks/soak_run.py).
    """

    CHUNK = 256
    keep_ground_truth = True

    def __init__(self, scenario: str = "mixed", *, seed: int = 0, fps: float = 10.0,
                 speed: Optional[float] = 1.0, **kw):
        self.simulator = Simulator(scenario, seed=seed, fps=fps, **kw)
        sim = self.simulator
        self.info = SensorInfo(sensor="sim", fps=sim.fps, extra={
            "scenario": scenario, "seed": sim.seed, "travel_axis": sim.travel_axis, "reverse": sim.reverse})
        self.ground_truth: list[GroundTruthEvent] = []
        self._pacer = Pacer(sim.fps, speed)
        self._chunk: Optional[SimChunk] = None
        self._chunk_start = 0
        self._next = 0
        self._future_events: list[GroundTruthEvent] = []

    def read(self) -> SensorFrame:
        chunk = self._chunk
        if chunk is None or self._next >= self._chunk_start + len(chunk.frames):
            self._chunk_start = self.simulator.frames_generated
            chunk = self._chunk = self.simulator.generate(self.CHUNK)
            self._future_events.extend(chunk.events)
        k = self._next - self._chunk_start
        self._pacer.wait()
        while self._future_events and self._future_events[0].frame <= self._next:
            event = self._future_events.pop(0)
            if self.keep_ground_truth:
                self.ground_truth.append(event)
        frame = SensorFrame(chunk.frames[k].copy(), float(chunk.timestamps[k]), self._next,
                            float(chunk.thermistor[k]))
        self._next += 1
        return frame


def open_sim(*, fps: float = 10, speed: Optional[float] = 1.0, seed: Optional[int] = None,
             scenario: Optional[str] = None, **kw) -> SimSensor:
    """``--sensor sim``: the ``mixed`` scenario with seed 0 unless told otherwise."""
    return SimSensor(scenario or "mixed", seed=0 if seed is None else seed, fps=fps, speed=speed, **kw)

