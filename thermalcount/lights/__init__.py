"""Light back-ends behind one interface, picked by name in :mod:`thermalcount.lights.registry`.

``open_lights(kind, ...)`` opens one. phue is imported only when ``kind == "hue"``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from thermalcount.lights import registry
from thermalcount.lights.base import Lights, LightStatus
from thermalcount.lights.policy import DEFAULT_OFF_DELAY, LightPolicy
from thermalcount.lights.registry import LightsSettings

__all__ = ["open_lights", "Lights", "LightStatus", "LightPolicy", "LightsSettings", "DEFAULT_OFF_DELAY"]


def open_lights(
    kind: str,
    *,
    bridge: Optional[str] = None,
    lights: Iterable[str] = (),
    group: Optional[str] = None,
    on_status: Optional[Callable[[LightStatus], None]] = None,
    **options,
) -> Lights:
    """Open a back-end by name (one of :func:`thermalcount.lights.registry.names`).

    ``hue``: ``bridge`` is ``HOST[:PORT]`` (default: config.toml, then the paired bridge),
    ``lights`` names or ids, ``group`` a name or id (``"0"`` = all lights); with neither, the
    defaults in config.toml. Extra keywords: ``start_timeout`` (s to wait for the bridge at
    start, default 3), ``backoff_max``, ``check_interval``. ``console``: ``stream``.
    Raises :class:`LightsError` for a set-up problem (unknown light on a reachable bridge,
    unpaired bridge); an unreachable bridge is not one.
    """
    settings = LightsSettings(kind=kind, bridge=bridge, names=tuple(str(name) for name in lights), group=group)
    return registry.open_lights(settings, on_status, **options)
