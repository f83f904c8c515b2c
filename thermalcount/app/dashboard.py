"""The live ``run`` and ``room`` dashboards (rich); with no terminal both write plain log lines instead."""

from __future__ import annotations

import time
from typing import Optional

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def heatmap_text(pixels, low: Optional[float] = None, high: Optional[float] = None) -> Text:
    """An 8x8 frame as coloured blocks, two characters per pixel, row 0 at the top."""
    if pixels is None:
        return Text("waiting for the first frame…", style="dim")
    lo = float(pixels.min()) if low is None else low
    hi = float(pixels.max()) if high is None else high
    span = max(hi - lo, 2.0)  # below ~2 °C the picture would be all noise
    text = Text()
    for row in pixels:
        for value in row:
            level = min(max((float(value) - lo) / span, 0.0), 1.0)
            text.append("  ", style=f"on {_colour(level)}")
        text.append("\n")
    text.append(f"{lo:5.1f} °C … {hi:5.1f} °C", style="dim")
    return text


def _colour(level: float) -> str:
    # Dark blue → red → yellow: a perceptually ordered ramp readable on dark terminals.
    stops = [(0.0, (20, 30, 90)), (0.5, (200, 40, 40)), (1.0, (255, 230, 80))]
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if level <= x1:
            f = (level - x0) / (x1 - x0)
            r, g, b = (round(a + (b_ - a) * f) for a, b_ in zip(c0, c1))
            return f"rgb({r},{g},{b})"
    return "rgb(255,230,80)"


def render_dashboard(loop, *, lights=None, publisher=None, title: str = "thermalcount run",
                     banner: Optional[str] = None):
    """The whole dashboard. ``banner`` (e.g. "SIMULATED sensor (sim)") heads it in reverse red:
    lights switched from made-up people must not pass for real counting."""
    snap = loop.snapshot
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("occupancy", Text(str(snap.occupancy), style="bold green" if snap.occupancy else "bold"))
    facts.add_row("entries / exits", f"{snap.entries} / {snap.exits}")
    facts.add_row("state", snap.state_name)
    facts.add_row("frame", f"{snap.frame_index}  ({snap.frames} this run)")
    elapsed = max(time.monotonic() - snap.started, 1e-9)
    facts.add_row("rate", f"{snap.frames / elapsed:,.1f} frames/s")
    latency = snap.latency_percentiles()
    if latency:
        facts.add_row("latency", f"p50 {latency[0]:.0f} µs · p99 {latency[2]:.0f} µs")
    sensor = Text("ok", style="green") if snap.sensor_problem is None else Text(snap.sensor_problem, style="red")
    facts.add_row("sensor", sensor)
    if snap.travel_axis:
        facts.add_row("travel axis", snap.travel_axis)
    if snap.sensor_errors:
        facts.add_row("sensor errors", str(snap.sensor_errors))
    if lights is not None:
        facts.add_row("lights", light_status_text(lights))
    if publisher is not None:
        facts.add_row("mqtt", mqtt_status_text(publisher))

    events = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
    for column in ("frame", "direction", "occupancy"):
        events.add_column(column)
    for event in list(snap.last_events)[-6:]:
        events.add_row(str(event["frame"]), event["direction"], str(event["occupancy"]))

    body = Table.grid(padding=(0, 3))
    body.add_row(heatmap_text(snap.pixels), facts)
    parts = [body]
    if banner:
        parts.insert(0, Text(f" {banner}: the people counted are made up, not seen by a sensor ",
                             style="bold white on red"))
    if snap.last_events:
        parts.append(Panel(events, title="last events", title_align="left"))
    if snap.notices:
        # Repeats collapsed into one line with a count; outages kept before info lines.
        parts.append(Text("\n".join(snap.notices.lines(4)), style="yellow"))
    return Panel(Group(*parts), title=title, subtitle="Ctrl-C to stop")


def light_status_text(lights) -> Text:
    status = lights.status()
    text = Text(f"desired {_onoff(status.desired)} · applied {_onoff(status.applied)}")
    if status.error:
        text.append(f" · {status.error}", style="red")
    return text


def mqtt_status_text(publisher) -> Text:
    status = publisher.status
    connected = status.get("connected")
    text = Text("connected" if connected else "disconnected", style="green" if connected else "red")
    if status.get("queued"):
        text.append(f" · {status['queued']} queued")
    if status.get("dropped"):
        text.append(f" · {status['dropped']} dropped", style="yellow")
    return text


def _onoff(value) -> str:
    return "-" if value is None else ("on" if value else "off")


def render_room_dashboard(service) -> Table:
    """``room``: the count, each door online or not, the lights, the broker, recent notices."""
    count = service.count
    table = Table(title=f"thermalcount room {service.name}", show_header=False, expand=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("occupancy", f"{count.occupancy}")
    table.add_row("in / out", f"{count.entries} / {count.exits}")
    for door in count.status.values():
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
