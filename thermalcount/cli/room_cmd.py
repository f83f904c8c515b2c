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

    from thermalcount.app.room import run_room
    from thermalcount.support.streams import print_line, settle_std_streams

    name, stats = run_room(mqtt_url=mqtt_url, name=room_name, doors=doors, lights=lights, mqtt_ca=mqtt_ca,
                           dashboard=not no_dashboard, duration=duration)
    print_line(f"stopped: room {name} occupancy {stats.occupancy}, {stats.entries} in, "
               f"{stats.exits} out, {stats.duplicates} duplicates ignored", sys.stderr)
    settle_std_streams()  # a full or closed stderr does not turn a good run into exit 120
