"""Wires a ``room`` session together: one room's count from several doors over MQTT.

Set-up problems (no door, no broker, a bad URL or room name, an unknown light on a reachable
bridge) raise a one-line :class:`ThermalcountError` before the room starts; after that, a
broker or bridge outage is reported and survived, as in ``run``.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional

from thermalcount.app.signals import stop_on_signals
from thermalcount.config import load_config
from thermalcount.errors import UsageError
from thermalcount.lights import registry
from thermalcount.lights.policy import configured_off_delay
from thermalcount.lights.registry import LightsSettings
from thermalcount.support.streams import is_terminal, log_line_writer


def run_room(*, mqtt_url: Optional[str], name: str, doors: Iterable[str], lights: LightsSettings,
             mqtt_ca: Optional[str] = None, dashboard: bool = True, duration: Optional[float] = None,
             out=None):
    """Run until the duration passes or SIGTERM/SIGINT. Returns ``(room name, RoomStats)``.

    ``mqtt_url`` None: ``url`` under ``[mqtt]`` in config.toml. ``out`` is the text stream
    for plain log lines (default stderr)."""
    from thermalcount.mqtt.room import RoomService

    doors = tuple(doors)
    if not doors:
        raise UsageError("give each door of the room with --door NAME (as the doors' run --door)")
    registry.check_targets(lights)
    # As run: --off-delay, else [lights] off_delay in config.toml, else the policy's default.
    off_delay = configured_off_delay(lights.off_delay)
    if mqtt_url is None:
        mqtt_url = load_config().mqtt_url
        if mqtt_url is None:
            raise UsageError("no broker: give --mqtt mqtt://HOST[:PORT] or url under [mqtt] in config.toml")

    out = out or sys.stderr
    plain = not dashboard or not is_terminal(out)
    write_line = log_line_writer(out)

    def report(message: str) -> None:
        if plain:
            write_line(message)

    switched = None if lights.kind == "none" else registry.open_lights(lights)
    service = None
    try:
        service = RoomService(mqtt_url, name=name, doors=doors, lights=switched, off_delay=off_delay,
                              tls_ca=mqtt_ca, reporter=report)
        service.start()
        report(f"room {service.name}: doors {', '.join(service.count.doors.values())} on {service.status['broker']}")
        with stop_on_signals(service.stop):
            if plain:
                stats = service.run(duration=duration)
            else:
                stats = _run_with_dashboard(service, duration)
    finally:
        if service is not None:
            service.close()
        if switched is not None:
            switched.close()
    return service.name, stats


def _run_with_dashboard(service, duration):
    from rich.console import Console
    from rich.live import Live

    from thermalcount.app.dashboard import render_room_dashboard

    with Live(get_renderable=lambda: render_room_dashboard(service), console=Console(stderr=True),
              refresh_per_second=4, transient=False):
        return service.run(duration=duration)
