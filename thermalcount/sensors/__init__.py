"""Sensors: everything that produces 8x8 thermal frames, chosen by name with :func:`open_sensor`.

Which names exist, what opens them and which options each takes is
:mod:`thermalcount.sensors.registry`. Each implementation is imported only when it is
opened, so importing this package is cheap and never touches smbus2, h5py or the simulator;
the interface types (``Sensor``, ``SensorFrame``...) load numpy, so they are imported when first
used: ``thermalcount --help`` reads the registry's defaults without numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from thermalcount.errors import UsageError
from thermalcount.sensors.registry import DEFAULT_ADDRESS, DEFAULT_BUS, SensorSpec, parse_spec, sensor_choices

__all__ = ["open_sensor", "parse_spec", "simulated_label", "sensor_choices", "SensorSpec", "Sensor",
           "SensorFrame", "SensorInfo", "Pacer"]
if TYPE_CHECKING:
    from thermalcount.sensors.base import Sensor
_BASE_TYPES = ("Pacer", "Sensor", "SensorFrame", "SensorInfo")


def __getattr__(name: str):
    if name in _BASE_TYPES:
        from thermalcount.sensors import base

        return getattr(base, name)
    raise AttributeError(f"module 'thermalcount.sensors' has no attribute {name!r}")


def simulated_label(spec: str) -> Optional[str]:
    """``"SIMULATED sensor (sim)"`` for a simulator-fed sensor spec, None for real data."""
    try:
        return parse_spec(spec).simulated_label
    except UsageError:
        return None


def open_sensor(spec: str, *, fps: float = 10, speed: Optional[float] = 1.0, bus: int = DEFAULT_BUS, address: int = DEFAULT_ADDRESS,
                orientation=None, seed: Optional[int] = None, scenario: Optional[str] = None,
                faults=None, **kw) -> "Sensor":
    """Open a sensor by name (see the registry for the names and what each takes).

    * ``amg8833``: the real part on ``/dev/i2c-<bus>`` at ``address`` (always real time);
    * ``emulated``: the same driver over smbus2, talking to an emulated AMG8833 fed by the
      simulator (``scenario``, ``seed``), with optional ``faults`` (a FaultPlan or its string);
    * ``sim``: the thermal scene simulator directly, no I2C;
    * ``replay:PATH``: a recording played back with its own timestamps and indices.

    ``speed`` is a factor of real time, or None for as fast as possible. ``orientation`` is a
    string such as ``"rotate=90,mirror=horizontal"``. Extra keywords go to the sensor's factory.
    """
    parsed = parse_spec(spec)
    if speed is not None and not speed > 0:
        raise UsageError(f"speed must be greater than zero or 'max', not {speed}")
    if fps is None or not fps > 0:
        raise UsageError(f"fps must be greater than zero, not {fps}")
    parsed.refuse_unused(faults=faults, scenario=scenario)
    settings = dict(fps=fps, speed=speed, bus=bus, address=address, orientation=orientation, seed=seed,
                    scenario=scenario, faults=faults)
    sensor_type = parsed.type
    taken = {name: settings[name] for name in sensor_type.takes}
    leading = (parsed.argument,) if sensor_type.argument else ()
    sensor = sensor_type.open_factory()(*leading, **taken, **kw)
    if "orientation" in sensor_type.takes:
        return sensor
    from thermalcount.sensors.reorient import reoriented

    return reoriented(sensor, orientation)
