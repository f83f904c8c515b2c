"""Which module opens which light system: ``--lights NAME`` -> a module with ``open_lights``.

Adding a light system is one new module plus one line in :data:`BACKENDS`. The module
provides

* ``open_lights(settings: LightsSettings, on_status=None, **options) -> Lights``: raises
  :class:`LightsError` for a set-up problem on a device that answers; an unreachable device
  is not one (see :mod:`thermalcount.lights.worker`);
* ``TAKES_TARGETS``: True when ``--bridge``/``--light``/``--group`` mean something to it.

Modules are imported only when their name is opened, so phue loads only for ``hue``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from thermalcount.errors import LightsError, UsageError

#: name -> module. Kept as text, so listing the names imports none of them.
BACKENDS: Dict[str, str] = {
    "hue": "thermalcount.lights.hue",
    "console": "thermalcount.lights.console",
    "none": "thermalcount.lights.base",
}


@dataclass(frozen=True)
class LightsSettings:
    """What ``--lights``, ``--bridge``, ``--light``, ``--group`` and ``--off-delay`` say, as one
    group. ``off_delay`` None: ``[lights] off_delay`` in config.toml, else the policy's default."""

    kind: str = "console"
    bridge: Optional[str] = None
    names: tuple = ()
    group: Optional[str] = None
    off_delay: Optional[float] = None


def register(name: str, module: str) -> None:
    """Add a light system at run time (a plugin, or a test's fake) under ``name``."""
    BACKENDS[name.strip().lower()] = module


def names() -> tuple:
    return tuple(BACKENDS)


def _module(kind: str):
    name = str(kind).strip().lower()
    if name not in BACKENDS:
        raise LightsError(f"unknown lights back-end {kind!r}; use one of: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def open_lights(settings: LightsSettings, on_status: Optional[Callable] = None, **options):
    """Open the back-end ``settings.kind`` names. ``options`` go to its ``open_lights``
    (``stream`` for console; ``start_timeout``, ``check_interval``... for hue)."""
    module = check_targets(settings)
    return module.open_lights(settings, on_status, **options)


def check_targets(settings: LightsSettings):
    """Refuse ``--bridge``/``--light``/``--group`` for a back-end they mean nothing to (they
    would be silently ignored). Returns the back-end's module."""
    module = _module(settings.kind)
    if not module.TAKES_TARGETS and (settings.names or settings.group or settings.bridge):
        takers = [name for name in BACKENDS if name != settings.kind and _takes_targets(name)]
        raise UsageError(f"--bridge, --light and --group need --lights {' or '.join(takers)}")
    return module


def _takes_targets(name: str) -> bool:
    try:
        return bool(_module(name).TAKES_TARGETS)
    except Exception:  # a broken plugin must not hide the usage message
        return False
