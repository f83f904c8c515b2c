"""Light back-ends behind one interface: ``none``, ``console`` and ``hue``.

``open_lights(kind, ...)`` picks one by name. phue is imported only when ``kind == "hue"``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from thermalcount.errors import LightsError
from thermalcount.lights.base import Lights, LightStatus, NoLights
from thermalcount.lights.policy import DEFAULT_OFF_DELAY, LightPolicy

KINDS = ("hue", "console", "none")

__all__ = ["open_lights", "Lights", "LightStatus", "LightPolicy", "DEFAULT_OFF_DELAY", "KINDS"]


def open_lights(
    kind: str,
    *,
    bridge: Optional[str] = None,
    lights: Iterable[str] = (),
    group: Optional[str] = None,
    on_status: Optional[Callable[[LightStatus], None]] = None,
    **kw,
) -> Lights:
    """Open a back-end.

    ``hue``: ``bridge`` is ``HOST[:PORT]`` (default: config.toml, then the paired bridge),
    ``lights`` names or ids, ``group`` a name or id (``"0"`` = all lights); with neither, the
    defaults in config.toml. Extra keywords: ``start_timeout`` (s to wait for the bridge at
    start, default 3), ``backoff_max``, ``check_interval``. ``console``: ``stream``.
    Raises :class:`LightsError` for a set-up problem (unknown light on a reachable bridge,
    unpaired bridge); an unreachable bridge is not one.
    """
    name = str(kind).strip().lower()
    if name == "none":
        return NoLights()
    if name == "console":
        from thermalcount.lights.console import ConsoleLights

        return ConsoleLights(stream=kw.get("stream"))
    if name == "hue":
        from thermalcount.lights.hue import open_hue

        return open_hue(bridge, lights, group, on_status, **kw)
    raise LightsError(f"unknown lights back-end {kind!r}; use one of: {', '.join(KINDS)}")
