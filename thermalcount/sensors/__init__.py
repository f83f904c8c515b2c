"""Sensors: everything that produces 8x8 thermal frames, chosen by name with :func:`open_sensor`.

Each implementation is imported only when it is opened, so importing this package is cheap
and never touches smbus2, h5py or the simulator.
"""

from __future__ import annotations

from typing import Optional

from thermalcount.errors import UsageError
from thermalcount.sensors.base import Pacer, Sensor, SensorFrame, SensorInfo

SENSOR_CHOICES = ("amg8833", "emulated", "sim", "replay:PATH")

__all__ = ["open_sensor", "simulated_label", "SENSOR_CHOICES", "Sensor", "SensorFrame", "SensorInfo", "Pacer"]

#: Sensors whose people are made up by the simulator (``emulated`` is the simulator behind
#: an emulated I2C part): lights switched from them must never pass for real counting.
SIMULATED = ("sim", "emulated")


def simulated_label(spec: str) -> Optional[str]:
    """``"SIMULATED sensor (sim)"`` for a simulator-fed sensor spec, None for real data."""
    name = str(spec).partition(":")[0].strip().lower()
    return f"SIMULATED sensor ({name})" if name in SIMULATED else None


def open_sensor(spec: str, *, fps: float = 10, speed: Optional[float] = 1.0, bus: int = 1, address: int = 0x69,
                orientation=None, seed: Optional[int] = None, scenario: Optional[str] = None,
                faults=None, **kw) -> Sensor:
    """Open a sensor by name.

    * ``amg8833``: the real part on ``/dev/i2c-<bus>`` at ``address`` (always real time);
    * ``emulated``: the same driver over smbus2, talking to an emulated AMG8833 fed by the
      simulator (``scenario``, ``seed``), with optional ``faults`` (a FaultPlan or its string);
    * ``sim``: the thermal scene simulator directly, no I2C;
    * ``replay:PATH``: a recording played back with its own timestamps and indices.

    ``speed`` is a factor of real time, or None for as fast as possible. ``orientation`` is a
    string such as ``"rotate=90,mirror=horizontal"``. Extra keywords go to the sensor class.
    """
    name, _, argument = str(spec).partition(":")
    name = name.strip().lower()
    if speed is not None and not speed > 0:
        raise UsageError(f"speed must be greater than zero or 'max', not {speed}")
    if fps is None or not fps > 0:
        raise UsageError(f"fps must be greater than zero, not {fps}")
    if faults is not None and name != "emulated":
        raise UsageError("--faults only applies to the emulated sensor (--sensor emulated)")
    if scenario is not None and name not in ("emulated", "sim"):
        raise UsageError(f"--scenario only applies to the sim and emulated sensors, not {name!r}")

    if name == "amg8833" and not argument:
        if speed != 1:
            raise UsageError("a real AMG8833 runs in real time: --speed only applies to emulated, sim and replay")
        from thermalcount.sensors.amg8833 import AMG8833

        return AMG8833(bus, address, fps=fps, orientation=orientation, **kw)
    if name == "emulated" and not argument:
        from thermalcount.sensors.emulated.bus import open_emulated

        return open_emulated(fps=fps, speed=speed, bus=bus, address=address, orientation=orientation,
                             seed=seed, scenario=scenario, faults=faults, **kw)
    if name == "sim" and not argument:
        from thermalcount.sensors.sim.sensor import SimSensor

        sensor = SimSensor(scenario or "mixed", seed=0 if seed is None else seed, fps=fps, speed=speed, **kw)
        return _maybe_reoriented(sensor, orientation)
    if name == "replay":
        if not argument.strip():
            raise UsageError("replay needs a recording: use --sensor replay:PATH.h5")
        from thermalcount.sensors.replay import ReplaySensor

        return _maybe_reoriented(ReplaySensor(argument.strip(), speed=speed, **kw), orientation)
    raise UsageError(f"unknown sensor {spec!r}; choose one of: {', '.join(SENSOR_CHOICES)}")


def _maybe_reoriented(sensor: Sensor, orientation) -> Sensor:
    from thermalcount.sensors.conversions import parse_orientation

    chosen = parse_orientation(orientation)
    return sensor if chosen.is_identity else ReorientedSensor(sensor, chosen)


class ReorientedSensor(Sensor):
    """Applies an orientation to another sensor's frames (for sim and replay sources)."""

    def __init__(self, inner: Sensor, orientation):
        import dataclasses

        self.inner, self.orientation = inner, orientation
        self.finite = inner.finite
        self.info = dataclasses.replace(inner.info, orientation=str(orientation))
        # One fancy index per frame, as the AMG8833 driver does (not a rotate and a copy).
        self._permutation = orientation.permutation()

    def read(self) -> SensorFrame:
        frame = self.inner.read()
        frame.pixels = frame.pixels.reshape(64)[self._permutation].reshape(8, 8)
        return frame

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):  # expose the wrapped sensor's extras (ground truth, emulator...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
