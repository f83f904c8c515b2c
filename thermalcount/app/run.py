"""Wires a ``run`` session together: set-up errors first, then the live loop until stopped.

Set-up problems (no sensor, unreadable model, unknown light on a reachable bridge, a bad
MQTT URL) raise a one-line :class:`ThermalcountError` before the first frame, so a systemd
unit exits non-zero and restarts. Everything after a good start is survived by the loop.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Optional

from thermalcount.app.signals import stop_on_signals
from thermalcount.errors import SensorSetupError, UsageError
from thermalcount.lights.registry import LightsSettings
from thermalcount.sensors.registry import DEFAULT_ADDRESS, DEFAULT_BUS
from thermalcount.support.redaction import redact, redact_url
from thermalcount.support.streams import is_terminal, log_line_writer

log = logging.getLogger("thermalcount.run")


# --- what a run is asked to do, one group per concern: the CLI fills each group in one place


@dataclass(frozen=True)
class SensorOptions:
    spec: str = "amg8833"  # like record: sim and emulated only when named
    fps: float = 10.0
    bus: int = DEFAULT_BUS
    address: int = DEFAULT_ADDRESS
    scenario: Optional[str] = None
    seed: Optional[int] = None
    faults: Optional[str] = None
    #: Pacing of sim/replay/emulated: a factor of real time, None for flat out.
    speed: Optional[float] = 1.0


@dataclass(frozen=True)
class ModelOptions:
    path: Optional[str] = "default"
    backend: str = "auto"


@dataclass(frozen=True)
class CountingOptions:
    flip: bool = False
    occupancy: int = 0  # people already in the room at start
    #: "auto": find the travel axis from the frames (the CLI's default); None or "none": the
    #: frames as the sensor gives them; "rotate=90,...": turned so.
    orientation: Optional[str] = None


@dataclass(frozen=True)
class MqttOptions:
    url: Optional[str] = None  # None: no MQTT
    door: Optional[str] = None
    room: Optional[str] = None
    ca: Optional[str] = None


@dataclass(frozen=True)
class OutputOptions:
    events_out: Optional[str] = None
    dashboard: bool = True
    duration: Optional[float] = None
    max_frames: Optional[int] = None


@dataclass(frozen=True)
class RunOptions:
    sensor: SensorOptions = field(default_factory=SensorOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    counting: CountingOptions = field(default_factory=CountingOptions)
    lights: LightsSettings = field(default_factory=LightsSettings)
    mqtt: MqttOptions = field(default_factory=MqttOptions)
    output: OutputOptions = field(default_factory=OutputOptions)


def run_session(options: RunOptions, *, out=None, on_loop=None):
    """Run until the source ends, the duration passes, or SIGTERM/SIGINT. Returns LiveStats.

    ``out`` is the text stream for plain log lines (default stderr). ``on_loop`` is called
    with the :class:`LiveLoop` once it exists (tests use it to stop the loop or send commands).
    """
    from thermalcount.runtime.counter import Counter
    from thermalcount.runtime.live import LiveLoop
    from thermalcount.model.loader import Model
    from thermalcount.sensors import simulated_label
    from thermalcount.model.travel_axis import orientation_setting
    from thermalcount.lights.policy import LightPolicy, configured_off_delay

    # First, as config.toml is read on every start: a bad delay or config file is refused
    # before the model loads or a bridge is contacted.
    policy = LightPolicy(off_delay=configured_off_delay(options.lights.off_delay))
    sensor_options, model_options, counting, output = options.sensor, options.model, options.counting, options.output
    given = orientation_setting(counting.orientation)  # None: auto
    out = out or sys.stderr
    plain = not output.dashboard or not is_terminal(out)
    # Made-up people switching real lights must be obvious in every line of the journal.
    made_up = simulated_label(sensor_options.spec)
    write_line = log_line_writer(out, prefix=f"{made_up}: " if made_up else "")

    def report(message: str) -> None:
        if plain:
            write_line(message)

    with ExitStack() as stack:
        # Lights, MQTT and the sensor driver report outages through logging, once each;
        # route them to the same place as our own notices.
        handler = _ReportHandler(report)
        package_log = logging.getLogger("thermalcount")
        package_log.addHandler(handler)
        stack.callback(package_log.removeHandler, handler)
        # Our handler shows them; without this, Python's last-resort handler repeats them.
        previous_propagate = package_log.propagate
        package_log.propagate = False
        stack.callback(setattr, package_log, "propagate", previous_propagate)
        if package_log.level == logging.NOTSET or package_log.level > logging.INFO:
            previous_level = package_log.level
            package_log.setLevel(logging.INFO)
            stack.callback(package_log.setLevel, previous_level)

        model_label = model_options.path or "default"
        model = Model.load(None if model_options.path in (None, "default") else model_options.path,
                           backend=model_options.backend)
        counter = Counter(model.meanings, flip=counting.flip)
        if counting.occupancy < 0:
            raise UsageError(f"--occupancy {counting.occupancy} is negative; use 0 or more people")
        if counting.occupancy:
            counter.set_occupancy(counting.occupancy)
        events_out = _open_events_out(output.events_out, stack)
        lights = _open_lights(options.lights, stack)
        if lights is None:
            policy = None
        publisher = _open_mqtt(options.mqtt, stack)
        sensor = _open_sensor(sensor_options, given)
        stack.callback(sensor.close)
        # The live loop never reads the simulator's ground truth: keeping it would grow
        # memory with every crossing of a long `run --sensor sim` (benchmarks/soak_run.py).
        simulated = getattr(sensor, "inner", sensor)
        if hasattr(simulated, "keep_ground_truth"):
            simulated.keep_ground_truth = False

        loop = LiveLoop(sensor, model, counter, lights=lights, light_policy=policy, publisher=publisher,
                        model_label=f"{model_label} ({model.backend})",
                        events_out=events_out, reporter=report, speed=sensor_options.speed,
                        status_interval=60.0 if plain else None, find_axis=given is None,
                        axis_label="" if given is None else f"the model's {model.travel_axis}; frames {_turned(given)}")
        if publisher is not None:
            publisher.on_command = loop.command
            publisher.publish_state(counter.occupancy, 0, 0)
        handler.loop = loop
        handler.flush_held()
        if on_loop is not None:
            on_loop(loop)
        mqtt_url = options.mqtt.url
        report(
            f"counting: sensor {sensor_options.spec}, model {model_label} "
            f"({model.backend}), lights {options.lights.kind}"
            + (f", mqtt {redact_url(mqtt_url)}" if mqtt_url else "")
            + (f", travel axis from the frames (the model's {model.travel_axis} until found)" if given is None
               else f", frames {_turned(given)}")
        )
        stack.enter_context(stop_on_signals(loop.stop))
        if plain:
            return loop.run(duration=output.duration, max_frames=output.max_frames)
        return _run_with_dashboard(loop, output, lights, publisher, made_up)


def _open_sensor(options: SensorOptions, orientation):
    from thermalcount.sensors import open_sensor

    try:
        return open_sensor(
            options.spec, fps=options.fps, speed=options.speed, bus=options.bus,
            address=options.address, orientation=orientation, seed=options.seed,
            scenario=options.scenario, faults=options.faults,
        )
    except SensorSetupError as error:
        # The real sensor is the default now: on a laptop (no I2C at all) say how to try it.
        if options.spec.strip().lower() == "amg8833" and not os.path.exists(f"/dev/i2c-{options.bus}"):
            raise SensorSetupError(f"{error}; or use --sensor sim to try it without hardware") from None
        raise


def _turned(orientation) -> str:
    """What --orientation does to the frames, for the log and the dashboard."""
    return "as the sensor gives them" if orientation.is_identity else f"turned {orientation}"


def _run_with_dashboard(loop, output: OutputOptions, lights, publisher, banner=None):
    from rich.console import Console
    from rich.live import Live

    from thermalcount.app.dashboard import render_dashboard

    console = Console(stderr=True)
    with Live(get_renderable=lambda: render_dashboard(loop, lights=lights, publisher=publisher, banner=banner),
              console=console, refresh_per_second=4, transient=False):
        return loop.run(duration=output.duration, max_frames=output.max_frames)


def _open_events_out(path: Optional[str], stack: ExitStack):
    if path is None:
        return None
    from thermalcount.runtime.event_log import EventLog

    # Append: a service that restarts keeps the events it already logged.
    events = EventLog.open(path)
    stack.callback(events.close)
    return events


def _open_lights(settings: LightsSettings, stack: ExitStack):
    """The lights from the registry; None for ``--lights none`` (nothing to switch)."""
    from thermalcount.lights import registry

    registry.check_targets(settings)
    if settings.kind == "none":
        return None
    lights = registry.open_lights(settings)
    stack.callback(lights.close)
    return lights


def _open_mqtt(options: MqttOptions, stack: ExitStack):
    if options.url is None:
        if options.door or options.room or options.ca:
            raise UsageError("--door, --room and --mqtt-ca need --mqtt mqtt://HOST[:PORT]")
        return None
    from thermalcount.mqtt.door import DoorPublisher

    # door=None: the publisher uses the host name without its domain (ids cannot hold dots).
    publisher = DoorPublisher(options.url, door=options.door, room=options.room, tls_ca=options.ca)
    publisher.start()
    stack.callback(publisher.close)
    return publisher


class _ReportHandler(logging.Handler):
    """Log records from our components become notices: a log line or a dashboard line."""

    def __init__(self, report):
        super().__init__(level=logging.INFO)
        self.report = report
        self.loop = None
        # Until set-up succeeds, hold messages back: a set-up error is ONE line, not a
        # warning followed by the same problem again as the error.
        self._held: Optional[list] = []

    def emit(self, record):
        try:
            message = redact(record.getMessage())  # the dashboard shows notices too
        except Exception:  # a malformed log call must not break counting
            return
        warning = record.levelno >= logging.WARNING  # kept visible in the dashboard
        if self._held is not None:
            self._held.append((message, warning))
        else:
            self._show(message, warning)

    def flush_held(self):
        held, self._held = self._held or [], None
        for message, warning in held:
            self._show(message, warning)

    def _show(self, message, warning=False):
        if self.loop is not None:
            self.loop._notice(message, warning)  # the dashboard's notices and the log line
        else:
            self.report(message)
