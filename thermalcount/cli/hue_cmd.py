"""``thermalcount hue pair`` and ``thermalcount hue lights``: set up the Philips Hue bridge."""

from __future__ import annotations

import sys

import click

BRIDGE_HELP = "Bridge address HOST or HOST:PORT (no http://); default: config.toml, then the last paired bridge."


@click.group()
def hue():
    """Pair with a Philips Hue bridge and list its lights and groups.

    The key the bridge hands out is stored in the config directory with 0600 permissions
    (or set THERMALCOUNT_HUE_KEY); it is never printed.

    \b
    Example:
      thermalcount hue pair --bridge 192.168.1.20
      thermalcount hue lights
    """


@hue.command()
@click.option("--bridge", required=True, metavar="HOST[:PORT]", help="Address of the bridge to pair with (no http://).")
@click.option("--wait", type=click.IntRange(1, 600), default=30, show_default=True, metavar="SECONDS",
              help="How long to keep asking while you press the link button.")
def pair(bridge, wait):
    """Pair with a bridge: press its round link button, get a key, store it (0600).

    Run it, then press the button on the bridge within the countdown. The key is stored
    for this bridge in the config directory, which also makes it the default bridge.

    \b
    Example:
      thermalcount hue pair --bridge 192.168.1.20
      thermalcount hue pair --bridge 127.0.0.1:8000    # the fake bridge
    """
    from thermalcount.lights.hue import normalize_host, pair as pair_bridge

    host = normalize_host(bridge)
    live = sys.stderr.isatty()
    click.echo(f"Press the round link button on the Hue bridge at {host} now (waiting up to {wait} s)...", err=True)
    shown = {"last": None}

    def countdown(remaining: float) -> None:
        seconds = int(remaining + 0.999)
        if live:
            click.echo(f"\r  {seconds:3d} s left ", nl=False, err=True)
        elif shown["last"] is None or shown["last"] - seconds >= 5:
            click.echo(f"  {seconds} s left", err=True)
            shown["last"] = seconds

    try:
        path = pair_bridge(host, timeout=wait, on_wait=countdown)
    finally:
        if live:
            click.echo("", err=True)
    click.echo(f"Paired with the Hue bridge at {host}; key stored in {path} (readable only by you).")
    click.echo("Next: thermalcount hue lights")


@hue.command()
@click.option("--bridge", default=None, metavar="HOST[:PORT]", help=BRIDGE_HELP)
@click.option("--plain", is_flag=True, help="Tab-separated text instead of a table (the default when not on a terminal).")
def lights(bridge, plain):
    """List the bridge's lights and groups with ids, names, on/off and reachability.

    Use the names or ids with run --light (repeatable) or --group. Group 0 is every light.

    \b
    Example:
      thermalcount hue lights
      thermalcount hue lights --bridge 192.168.1.20 --plain
    """
    from thermalcount.lights.hue import list_bridge

    inventory = list_bridge(bridge)

    def word(value, yes="on", no="off"):
        return "?" if value is None else (yes if value else no)

    light_rows = [(l.id, l.name, word(l.on), word(l.reachable, "yes", "no"), l.type) for l in inventory.lights]
    group_rows = [
        (g.id, g.name, "on" if g.all_on else ("some" if g.any_on else word(g.any_on)), ",".join(g.lights), g.type)
        for g in inventory.groups
    ]
    if plain or not sys.stdout.isatty():
        click.echo("kind\tid\tname\ton\treachable/lights\ttype")
        for row in light_rows:
            click.echo("\t".join(("light",) + row))
        for row in group_rows:
            click.echo("\t".join(("group",) + row))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Lights on the Hue bridge {inventory.host}")
    for column in ("id", "name", "on", "reachable", "type"):
        table.add_column(column)
    for row in light_rows:
        table.add_row(*row)
    console.print(table)
    groups = Table(title="Groups (use with --group; 0 = all lights)")
    for column in ("id", "name", "on", "lights", "type"):
        groups.add_column(column)
    for row in group_rows:
        groups.add_row(*row)
    console.print(groups)
