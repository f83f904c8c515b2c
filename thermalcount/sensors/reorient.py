"""Orientation for sensors that have none of their own (sim, replay): frames turned on read."""

from __future__ import annotations

import dataclasses

from thermalcount.sensors.base import Sensor, SensorFrame


def reoriented(sensor: Sensor, orientation) -> Sensor:
    """``sensor`` turned by ``orientation`` (a string such as ``"rotate=90"``); unchanged when none."""
    from thermalcount.sensors.conversions import parse_orientation

    chosen = parse_orientation(orientation)
    return sensor if chosen.is_identity else ReorientedSensor(sensor, chosen)


class ReorientedSensor(Sensor):
    """Applies an orientation to another sensor's frames (for sim and replay sources)."""

    def __init__(self, inner: Sensor, orientation):
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
