"""``--lights``, ``--bridge``, ``--light``, ``--group`` and ``--off-delay``: declared once here,
shared by ``run`` and ``room``, handed to the command as one ``LightsSettings``."""

from __future__ import annotations

import functools

import click

from thermalcount.cli.options import FiniteFloat
from thermalcount.lights import registry
from thermalcount.lights.policy import DEFAULT_OFF_DELAY
from thermalcount.lights.registry import LightsSettings


class LightsChoice(click.Choice):
    """The names in the lights registry when the command line is read, so a light system
    registered at run time (a plugin, a test's fake) is a valid ``--lights`` at once."""

    def __init__(self):
        super().__init__(registry.names())

    @property
    def choices(self):
        return registry.names()

    @choices.setter
    def choices(self, _value):
        pass  # always the registry's


def lights_options(*, default: str, lights_help: str):
    """Adds the light options; the command receives them as ``lights: LightsSettings``."""
    options = [
        click.option("--lights", "lights_kind", type=LightsChoice(), default=default, show_default=True,
                     help=lights_help),
        click.option("--bridge", default=None, metavar="HOST[:PORT]",
                     help="Hue bridge address (default: the one stored by 'thermalcount hue pair')."),
        click.option("--light", "light_names", multiple=True, metavar="NAME_OR_ID",
                     help="Hue light to switch; repeat for several."),
        click.option("--group", "group_name", default=None, metavar="NAME_OR_ID", help="Hue group (room) to switch."),
        click.option("--off-delay", type=FiniteFloat(min=0), default=None,
                     help="Seconds the room must stay empty before the lights go off "
                          f"[default: [lights] off_delay in config.toml, else {DEFAULT_OFF_DELAY:g}]."),
    ]

    def decorate(command):
        @functools.wraps(command)
        def with_lights(*args, lights_kind, bridge, light_names, group_name, off_delay, **kwargs):
            settings = LightsSettings(kind=lights_kind, bridge=bridge, names=tuple(light_names),
                                      group=group_name, off_delay=off_delay)
            return command(*args, lights=settings, **kwargs)

        for option in reversed(options):  # click lists the last one applied first
            with_lights = option(with_lights)
        return with_lights

    return decorate
