"""Fault plans for the emulated AMG8833: what goes wrong, when, and how often.

A plan is a dataclass for Python callers and a short string for the command line::

    errno=5:0.02,disconnect=3s@10s,stuck=50@200,absurd=0.01

| item | meaning |
|---|---|
| ``errno=E:P`` | each I2C transfer fails with errno E (5 EIO, 110 ETIMEDOUT, 121 EREMOTEIO...) with probability P (``0.02`` or ``2%``); repeatable |
| ``disconnect=D@T`` | from device time T for D seconds the sensor is unplugged: every transfer gets no ACK (121); afterwards it powers up with default registers |
| ``vanish=D@T`` | the same, but the whole ``/dev/i2c-N`` disappears: opening it fails with ENOENT, open descriptors get ENODEV |
| ``stuck=N@F`` | from device frame F the pixel registers stop updating for N frames (an initial reset un-sticks them, as on the real part) |
| ``absurd=P`` | each new frame has, with probability P, one pixel holding an impossible value (hundreds of °C) |
| ``open=E`` | every open of the bus fails with errno E (2 I2C disabled, 13 permission denied) |
| ``busy`` | a kernel driver owns the address: selecting it (I2C_SLAVE) fails with EBUSY (16) |
| ``seed=N`` | seed of the fault dice (default 0) |

Durations take ``ms``, ``s``, ``m`` or ``h`` (plain numbers are seconds). Device time starts
when the emulated bus is created; with ``--speed max`` it advances one frame period per
frame read (see :class:`thermalcount.sensors.emulated.bus._DeviceClock`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from thermalcount.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_HELP = ("use e.g. 'errno=5:0.02,disconnect=3s@10s,vanish=2s@30s,stuck=50@200,absurd=0.01,open=13,busy,seed=1'")


@dataclass(frozen=True)
class Disconnect:
    start: float  # device seconds
    duration: float
    mode: str = "nack"  # "nack": transfers get no ACK; "vanish": the bus device file disappears

    def covers(self, now: float) -> bool:
        return self.start <= now < self.start + self.duration


@dataclass(frozen=True)
class Stuck:
    start_frame: int
    frames: float  # may be math.inf: stuck until the next initial reset

    def covers(self, frame: int) -> bool:
        return self.start_frame <= frame < self.start_frame + self.frames


@dataclass
class FaultPlan:
    """Everything the emulated bus and device should get wrong. The default plan is no faults."""

    errors: dict = field(default_factory=dict)  # errno -> probability per transfer
    disconnects: list = field(default_factory=list)  # [Disconnect]
    stuck: list = field(default_factory=list)  # [Stuck]
    absurd: float = 0.0
    open_errno: Optional[int] = None
    busy: bool = False
    seed: int = 0

    def disconnect_at(self, now: float) -> Optional[Disconnect]:
        for window in self.disconnects:
            if window.covers(now):
                return window
        return None

    @classmethod
    def parse(cls, plan: "FaultPlan | str | None") -> "FaultPlan":
        """A plan from its string form (see the module docs); a FaultPlan passes through."""
        if isinstance(plan, FaultPlan):
            return plan
        result = cls()
        if plan is None or not str(plan).strip() or str(plan).strip().lower() == "none":
            return result
        for item in str(plan).split(","):
            key, _, value = item.strip().partition("=")
            key = key.strip().lower()
            try:
                _apply(result, key, value.strip())
            except (ValueError, KeyError):
                raise UsageError(f"fault plan item {item.strip()!r} not understood; {_HELP}") from None
        return result


def _apply(plan: FaultPlan, key: str, value: str) -> None:
    if key == "errno":
        code, _, rate = value.partition(":")
        plan.errors[int(code)] = _probability(rate or "1")
    elif key in ("disconnect", "vanish"):
        duration, _, start = value.partition("@")
        plan.disconnects.append(Disconnect(_seconds(start or "0"), _seconds(duration),
                                           "nack" if key == "disconnect" else "vanish"))
    elif key == "stuck":
        frames, _, start = value.partition("@")
        count = math.inf if frames.strip().lower() in ("inf", "") else int(frames)
        plan.stuck.append(Stuck(int(start or 0), count))
    elif key == "absurd":
        plan.absurd = _probability(value)
    elif key == "open":
        plan.open_errno = int(value)
    elif key == "busy":
        plan.busy = value.lower() not in ("0", "false", "no", "off")
    elif key == "seed":
        plan.seed = int(value)
    else:
        raise KeyError(key)


def _probability(text: str) -> float:
    text = text.strip()
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _SECONDS[match.group(2)]
