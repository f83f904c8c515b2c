"""Option types and decorators shared by several commands."""

from __future__ import annotations

import re

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'90' -> 90.0, '30s' -> 30.0, '10m' -> 600.0, '1.5h' -> 5400.0. Raises ValueError."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30s, 10m, 2h or a number of seconds")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Duration(click.ParamType):
    """A duration such as ``30s``, ``10m``, ``2h`` or plain seconds; converts to float seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(value)
            except ValueError as error:
                self.fail(str(error), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        return seconds


class Speed(click.ParamType):
    """Replay/simulation pacing: a positive factor of real time, or ``max``. ``max`` -> None."""

    name = "speed"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
            return None
        try:
            speed = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a speed; use a factor such as 1 or 10, or 'max'", param, ctx)
        if speed <= 0:
            self.fail(f"{value!r} must be greater than zero (or 'max')", param, ctx)
        return speed


class I2CAddress(click.ParamType):
    """An I2C address such as ``0x69`` or ``105``."""

    name = "address"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            address = value
        else:
            try:
                address = int(str(value), 0)
            except ValueError:
                self.fail(f"{value!r} is not an I2C address; use 0x69 or 0x68", param, ctx)
        if not 0x03 <= address <= 0x77:
            self.fail(f"{value!r} is outside the 7-bit I2C address range 0x03-0x77", param, ctx)
        return address


DURATION = Duration()
SPEED = Speed()
I2C_ADDRESS = I2CAddress()
