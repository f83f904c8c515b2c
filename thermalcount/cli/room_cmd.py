"""``thermalcount room``: one room's occupancy from several doors over MQTT."""

from __future__ import annotations

import click

from thermalcount.cli.lights_options import lights_options
from thermalcount.cli.options import DURATION


@click.command()
@click.option("--mqtt", "mqtt_url", default=None, metavar="mqtt://HOST[:PORT]",
              help="Broker the doors publish to (default: url under [mqtt] in config.toml). "
                   "Credentials come from the environment or config, never from here.")
@click.option("--door", "doors", multiple=True, metavar="NAME",
              help="A door of this room, as given to 'run --door'; repeat for each door.")
@click.option("--name", "room_name", required=True, metavar="ROOM", help="The room's name (its MQTT/Home Assistant id).")
@lights_options(default="none",
                lights_help="Switch lights from the room count (then the doors should use --lights none).")
@click.option("--mqtt-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificate for mqtts:// brokers.")
@click.option("--no-dashboard", is_flag=True, help="Plain log lines (for systemd/journald) instead of the dashboard.")
@click.option("--duration", type=DURATION, default=None, help="Stop after this long, e.g. 10m (default: run until stopped).")
def room(mqtt_url, doors, room_name, lights, mqtt_ca, no_dashboard, duration):
    """Keep one room's occupancy from several doors and publish it.

    Each door is a Pi running 'thermalcount run --mqtt URL --door NAME'. This command
    subscribes to their events, keeps one count for the room (in adds one, out removes one,
    never below 0), publishes it to Home Assistant with discovery, takes 'reset' or a number
    on thermalcount/room/ROOM/set, and can switch the lights itself. A door that goes
    offline is shown as unavailable; the others keep counting.

    \b
    Example:
      thermalcount room --mqtt mqtt://192.168.1.10 --name living \\
          --door front --door garden --lights hue --group "Living room"
    """
    import sys

    from thermalcount.app.signals import stop_on_signals
    from thermalcount.config import load_config
    from thermalcount.errors import UsageError
    from thermalcount.lights import registry
    from thermalcount.lights.policy import configured_off_delay
    from thermalcount.mqtt.room import RoomService
    from thermalcount.support.streams import log_line_writer, print_line, settle_std_streams

    if not doors:
        raise UsageError("give each door of the room with --door NAME (as the doors' run --door)")
    registry.check_targets(lights)
    # As run: --off-delay, else [lights] off_delay in config.toml, else the policy's default.
    off_delay = configured_off_delay(lights.off_delay)
    if mqtt_url is None:
        mqtt_url = load_config().mqtt_url
        if mqtt_url is None:
            raise UsageError("no broker: give --mqtt mqtt://HOST[:PORT] or url under [mqtt] in config.toml")

    plain = no_dashboard or not sys.stderr.isatty()
    write_line = log_line_writer(None)

    def report(message: str) -> None:
        if plain:
            write_line(message)

    switched = None if lights.kind == "none" else registry.open_lights(lights)
    service = None
    try:
        service = RoomService(mqtt_url, name=room_name, doors=doors, lights=switched, off_delay=off_delay,
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
    print_line(f"stopped: room {service.name} occupancy {stats.occupancy}, {stats.entries} in, "
               f"{stats.exits} out, {stats.duplicates} duplicates ignored", sys.stderr)
    settle_std_streams()  # a full or closed stderr does not turn a good run into exit 120


def _run_with_dashboard(service, duration):
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render():
        count = service.count
        table = Table(title=f"thermalcount room {service.name}", show_header=False, expand=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("occupancy", f"{count.occupancy}")
        table.add_row("in / out", f"{count.entries} / {count.exits}")
        for door_id, door in count.status.items():
            state = {True: "[green]online[/]", False: "[red]offline[/]", None: "unknown"}[door.online]
            table.add_row(f"door {door.name}", f"{state} · {door.events} events")
        if service.lights is not None:
            desired = service.lights_desired
            table.add_row("lights", "-" if desired is None else ("on" if desired else "off"))
        status = service.status
        mqtt = "[green]connected[/]" if status["connected"] else f"[red]disconnected[/] {status['last_error'] or ''}"
        table.add_row("mqtt", f"{mqtt} · {status['broker']}")
        if count.last_event:
            event = count.last_event
            table.add_row("last event", f"{event['direction']} at {event['door_name']}")
        for notice in service.notices[-3:]:
            table.add_row("", f"[dim]{notice}[/]")
        return table

    with Live(get_renderable=render, console=Console(stderr=True), refresh_per_second=4, transient=False):
        return service.run(duration=duration)
