"""Sensors by name: each name, the factory that opens it, and the options it takes.

Adding a sensor is one module with a factory plus one :func:`register` line below. The
factory is named as ``"module:function"`` and imported only when that sensor is opened, so
this registry stays cheap to import (no smbus2, h5py or simulator).

A factory gets, as keywords, the settings it declares in ``takes`` (names from :data:`SETTINGS`),
the spec's argument first when it declares one (``replay:PATH``), and any extra keywords
the caller passed. A sensor that does not take ``orientation`` is turned by
:class:`~thermalcount.sensors.reorient.ReorientedSensor` around it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Optional, Union

from thermalcount.errors import UsageError

#: The AMG8833's I2C addresses (AD_SELECT low / high) and the defaults: the address of the
#: common breakout boards, on the Raspberry Pi's user I2C bus.
AMG8833_ADDRESSES = (0x68, 0x69)
DEFAULT_ADDRESS = 0x69
DEFAULT_BUS = 1
#: Every setting a sensor may take (the keywords of :func:`thermalcount.sensors.open_sensor`).
SETTINGS = ("fps", "speed", "bus", "address", "orientation", "seed", "scenario", "faults")
#: Settings refused with a one-line error when given to a sensor that does not take them
#: (the others have harmless defaults: --bus with --sensor sim is simply unused).
REFUSED_WHEN_UNUSED = ("faults", "scenario")


@dataclass(frozen=True)
class SensorType:
    name: str
    factory: Union[str, Callable]  # "module:function", imported when opened, or the callable
    takes: tuple = ()  # names from SETTINGS the factory accepts
    argument: Optional[str] = None  # "PATH" when the spec is NAME:PATH, None when it has none
    missing_argument: str = ""  # the one-line error for NAME without its argument
    #: The people are made up by the simulator: lights switched from it never pass for real counting.
    simulated: bool = False

    @property
    def choice(self) -> str:
        """How ``--sensor`` names it: ``sim``, ``replay:PATH``."""
        return f"{self.name}:{self.argument}" if self.argument else self.name

    def open_factory(self) -> Callable:
        if callable(self.factory):
            return self.factory
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)


SENSORS: dict[str, SensorType] = {}


def register(name: str, factory: Union[str, Callable], *, takes=(), argument: Optional[str] = None,
             missing_argument: str = "", simulated: bool = False) -> SensorType:
    """Make ``--sensor NAME`` (``NAME:ARGUMENT`` when ``argument`` is set) open ``factory``."""
    unknown = set(takes) - set(SETTINGS)
    if unknown:
        raise ValueError(f"sensor {name!r} takes unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")
    sensor_type = SensorType(name, factory, tuple(takes), argument,
                             missing_argument or f"{name} needs {argument}: use --sensor {name}:{argument}", simulated)
    SENSORS[name] = sensor_type
    return sensor_type


register("amg8833", "thermalcount.sensors.amg8833:open_amg8833",
         takes=("fps", "speed", "bus", "address", "orientation"))
register("emulated", "thermalcount.sensors.emulated.bus:open_emulated",
         takes=("fps", "speed", "bus", "address", "orientation", "seed", "scenario", "faults"), simulated=True)
register("sim", "thermalcount.sensors.sim.sensor:open_sim", takes=("fps", "speed", "seed", "scenario"),
         simulated=True)
register("replay", "thermalcount.sensors.replay:ReplaySensor", takes=("speed",), argument="PATH",
         missing_argument="replay needs a recording: use --sensor replay:PATH.h5")


def sensor_choices() -> tuple:
    return tuple(sensor_type.choice for sensor_type in SENSORS.values())


@dataclass(frozen=True)
class SensorSpec:
    """A parsed ``--sensor`` value: its type and its argument (``""`` when it has none)."""

    text: str
    type: SensorType
    argument: str = ""

    @property
    def name(self) -> str:
        return self.type.name

    @property
    def reads_file(self) -> Optional[str]:
        """The file this sensor reads (``replay:PATH``), None for a live source."""
        return self.argument if self.type.argument == "PATH" else None

    @property
    def simulated_label(self) -> Optional[str]:
        """``"SIMULATED sensor (sim)"`` for a simulator-fed sensor, None for real data."""
        return f"SIMULATED sensor ({self.name})" if self.type.simulated else None

    def refuse_unused(self, **given) -> None:
        """One-line UsageError for a setting given (not None) that this sensor does not take."""
        for option in REFUSED_WHEN_UNUSED:
            if given.get(option) is None or option in self.type.takes:
                continue
            takers = [t.name for t in SENSORS.values() if option in t.takes]
            if len(takers) == 1:
                raise UsageError(f"--{option} only applies to the {takers[0]} sensor (--sensor {takers[0]})")
            listed = ", ".join(takers[:-1]) + f" and {takers[-1]}"
            raise UsageError(f"--{option} only applies to the {listed} sensors, not {self.name!r}")


def parse_spec(spec) -> SensorSpec:
    """``"replay: x.h5"`` -> the replay type with argument ``"x.h5"``; UsageError when unknown.

    Names are case-insensitive and spaces around the name and argument are ignored.
    """
    text = str(spec)
    name, colon, argument = text.partition(":")
    sensor_type = SENSORS.get(name.strip().lower())
    argument = argument.strip()
    if sensor_type is not None and sensor_type.argument and not argument:
        raise UsageError(sensor_type.missing_argument)
    if sensor_type is None or (colon and not sensor_type.argument):
        raise UsageError(f"unknown sensor {text!r}; choose one of: {', '.join(sensor_choices())}")
    return SensorSpec(text, sensor_type, argument)
