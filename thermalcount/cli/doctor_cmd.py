"""``thermalcount doctor``: one table of everything ``run`` needs, with what to do."""

from __future__ import annotations

import click

from thermalcount.cli.options import sensor_options

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "-"}


@click.command()
@sensor_options("sensor", "bus", "address", "orientation", "faults", orientation="shown")
@click.option("--model", "model_path", default="default", show_default=True,
              help="Exported ONNX model run will use; 'default' is the embedded model.")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "numpy"]), default="auto",
              show_default=True, help="Inference backend run will use.")
@click.option("--bridge", default=None, metavar="HOST[:PORT]",
              help="Hue bridge (default: [hue] bridge in config.toml, then the paired one).")
@click.option("--light", "light_names", multiple=True, metavar="NAME_OR_ID",
              help="Hue light run will switch (default: config.toml); repeatable.")
@click.option("--group", "group_name", default=None, metavar="NAME_OR_ID", help="Hue group run will switch.")
@click.option("--mqtt", "mqtt_url", default=None, metavar="mqtt://HOST[:PORT]",
              help="MQTT broker (default: [mqtt] url in config.toml).")
@click.option("--mqtt-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificate for mqtts:// brokers.")
@click.option("--data-dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where recordings and the event log go (free space is checked there).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output for bug reports (no secrets).")
def doctor(sensor_spec, bus, address, faults, model_path, backend, orientation, bridge, light_names, group_name,
           mqtt_url, mqtt_ca, data_dir, as_json):
    """Check the set-up: run this first, and paste its --json into bug reports.

    One row per check, each with what to do when it fails: Python and platform, the
    inference backend, I2C and the sensor (bus, address 0x68/0x69, one frame and its
    thermistor), the model and its travel axis, config.toml (unknown keys named), the Hue
    bridge, key and lights, the MQTT broker and login, and free disk space. Hue and MQTT
    are skipped when not configured. Exits 1 when a check fails (something run needs is
    missing), 0 otherwise (warnings included).

    \b
    Example:
      thermalcount doctor
      thermalcount doctor --sensor emulated --json
    """
    import json

    from thermalcount.app.doctor import DoctorOptions, as_json as checks_as_json, failed, run_checks
    from thermalcount.support.redaction import redact

    from thermalcount.sensors import parse_spec

    parse_spec(sensor_spec).refuse_unused(faults=faults)
    options = DoctorOptions(sensor=sensor_spec, bus=bus, address=address, faults=faults, model=model_path,
                            backend=backend, orientation=orientation, bridge=bridge, lights=tuple(light_names),
                            group=group_name, mqtt_url=mqtt_url, mqtt_ca=mqtt_ca, data_dir=data_dir)
    checks = run_checks(options)
    problems = failed(checks)
    if as_json:
        click.echo(json.dumps(checks_as_json(checks), indent=2))
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            click.echo(redact(f"{_MARK[check.status]:<4}  {check.name:<{width}}  {check.detail}"))
            if check.fix and check.status in ("fail", "warn"):
                click.echo(redact(f"{'':<4}  {'':<{width}}  -> {check.fix}"))
        if problems:
            click.echo(f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: "
                       + ", ".join(check.name for check in problems), err=True)
        else:
            click.echo("everything run needs is in place", err=True)
    if problems:
        raise SystemExit(1)
