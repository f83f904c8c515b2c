"""``thermalcount run``: count people live and switch the lights."""

from __future__ import annotations

import sys

import click

from thermalcount.cli.options import DURATION, FiniteFloat, sensor_options


@click.command()
@sensor_options(orientation="auto", sensor_note="the simulated ones (sim, emulated) only when named, "
                                                  "and every log line then says so.")
@click.option("--model", "model_path", default="default", show_default=True,
              help="Exported ONNX model; 'default' is the embedded model.")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "numpy"]), default="auto",
              show_default=True, help="Inference backend; numpy runs where onnxruntime has no wheel.")
@click.option("--flip", is_flag=True, help="Swap in and out (the sensor is mounted the other way round).")
@click.option("--lights", "lights_kind", type=click.Choice(["hue", "console", "none"]), default="console",
              show_default=True, help="Where light changes go.")
@click.option("--bridge", default=None, metavar="HOST[:PORT]",
              help="Hue bridge address (default: the one stored by 'thermalcount hue pair').")
@click.option("--light", "light_names", multiple=True, metavar="NAME_OR_ID",
              help="Hue light to switch; repeat for several.")
@click.option("--group", "group_name", default=None, metavar="NAME_OR_ID", help="Hue group (room) to switch.")
@click.option("--occupancy", type=click.IntRange(min=0), default=0, show_default=True,
              help="People already in the room when counting starts (e.g. after a restart).")
@click.option("--off-delay", type=FiniteFloat(min=0), default=None,
              help="Seconds the room must stay empty before the lights go off "
                   "[default: [hue] off_delay in config.toml, else 30].")
@click.option("--events-out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Append each event as a JSON line to this file (flushed as it happens).")
@click.option("--duration", type=DURATION, default=None,
              help="Stop after this much sensor time, e.g. 10m (default: run until stopped).")
@click.option("--no-dashboard", is_flag=True, help="Plain log lines (for systemd/journald) instead of the dashboard.")
@click.option("--mqtt", "mqtt_url", default=None, metavar="mqtt://HOST[:PORT]",
              help="Publish to Home Assistant over MQTT (credentials from env or config, never here).")
@click.option("--door", default=None, help="This door's name for MQTT (default: the host name).")
@click.option("--room", default=None, help="Room this door belongs to, for 'thermalcount room'.")
@click.option("--mqtt-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificate for mqtts:// brokers.")
def run(sensor_spec, model_path, backend, flip, lights_kind, bridge, light_names, group_name, occupancy, off_delay,
        events_out, duration, speed, no_dashboard, fps, bus, address, orientation, scenario, seed, faults,
        mqtt_url, door, room, mqtt_ca):
    """Count people live and switch the lights.

    Reads the sensor, infers each frame with the model, turns the state sequence into
    entries and exits and keeps the room's occupancy. Lights go on when someone is in and
    off once the room has been empty for --off-delay seconds. Sensor and bridge faults are
    reported and survived; set-up errors (no sensor, unreadable model, unknown light) stop
    with a one-line message and a non-zero exit code, so systemd can restart the service.

    \b
    Example:
      thermalcount run --sensor sim --speed 10 --duration 10m
      thermalcount run --sensor amg8833 --lights hue --group "Living room" --no-dashboard
    """
    from thermalcount.app.run import RunOptions, run_session
    from thermalcount.sensors import simulated_label

    if off_delay is None:
        from thermalcount.config import load_config

        configured = load_config().off_delay
        off_delay = 30.0 if configured is None else configured  # 0 in the config means 0
    options = RunOptions(
        sensor_spec=sensor_spec, model_path=model_path, backend=backend, flip=flip,
        lights_kind=lights_kind, bridge=bridge, light_names=tuple(light_names), group_name=group_name,
        off_delay=off_delay, occupancy=occupancy, events_out=events_out, duration=duration, speed=speed,
        dashboard=not no_dashboard, fps=float(fps), bus=bus, address=address, orientation=orientation,
        scenario=scenario, seed=seed, faults=faults, mqtt_url=mqtt_url, door=door, room=room, mqtt_ca=mqtt_ca,
    )
    stats = run_session(options)
    reason = "end of recording" if stats.stopped_by == "end-of-stream" else stats.stopped_by
    simulated = simulated_label(sensor_spec)
    from thermalcount.support.streams import print_line, settle_std_streams

    print_line(
        (f"{simulated}: " if simulated else "")
        + f"stopped ({reason}): {stats.frames} frames, {stats.entries} in, {stats.exits} out, "
        f"occupancy {stats.occupancy}"
        + (f", {stats.sensor_errors} failed sensor reads" if stats.sensor_errors else ""),
        sys.stderr,
    )
    settle_std_streams()  # a full or closed stdout/stderr does not turn a good run into exit 120
