"""Option types and decorators shared by several commands."""

from __future__ import annotations

import math
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
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} must be longer than zero", param, ctx)
        if seconds > MAX_DURATION_SECONDS:
            self.fail(f"{value!r} is longer than 10 years; leave the option out to run until stopped", param, ctx)
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
        if not MIN_SPEED <= speed <= MAX_SPEED:  # also refuses nan
            self.fail(f"{value!r} must be greater than zero, from {MIN_SPEED:g} to {MAX_SPEED:.0f} times "
                      "real time (or 'max')", param, ctx)
        return speed


class FiniteFloat(click.FloatRange):
    """A float in a range that is never nan or infinite.

    click's FloatRange lets ``nan`` through every bound (every comparison with nan is false)
    and ``inf`` through an open upper end; both then break arithmetic deep in a run.
    """

    name = "number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


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


# Beyond these the pacing arithmetic overflows (a frame 1e299 s away) or means nothing.
MIN_SPEED = 0.001
MAX_SPEED = 1e6
MAX_DURATION_SECONDS = 10 * 365 * 86400.0

# Seeds are stored in the recording's HDF5 attributes, which hold at most 64-bit integers.
SEED = click.IntRange(0, 2**63 - 1)
# A billion frames is ~3 years at 10 FPS and ~250 GB: beyond that a frame count is a typo.
FRAME_COUNT = click.IntRange(1, 10**9)

DURATION = Duration()
SPEED = Speed()
I2C_ADDRESS = I2CAddress()
