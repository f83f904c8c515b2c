"""Wires a ``run`` session together: set-up errors first, then the live loop until stopped.

Set-up problems (no sensor, unreadable model, unknown light on a reachable bridge, a bad
MQTT URL) raise a one-line :class:`ThermalcountError` before the first frame, so a systemd
unit exits non-zero and restarts. Everything after a good start is survived by the loop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Optional

from thermalcount.errors import SensorSetupError, UsageError
from thermalcount.support.redaction import redact, redact_url
from thermalcount.support.streams import print_line

log = logging.getLogger("thermalcount.run")


@dataclass
class RunOptions:
    sensor_spec: str = "amg8833"  # like record: sim and emulated only when named
    model_path: Optional[str] = "default"
    backend: str = "auto"
    flip: bool = False
    lights_kind: str = "console"
    bridge: Optional[str] = None
    light_names: tuple = ()
    group_name: Optional[str] = None
    off_delay: float = 30.0
    events_out: Optional[str] = None
    duration: Optional[float] = None
    max_frames: Optional[int] = None
    speed: Optional[float] = 1.0
    dashboard: bool = True
    fps: float = 10.0
    bus: int = 1
    address: int = 0x69
    #: "auto": find the travel axis from the frames (the CLI's default); None or "none": the
    #: frames as the sensor gives them; "rotate=90,...": turned so.
    orientation: Optional[str] = None
    scenario: Optional[str] = None
    seed: Optional[int] = None
    faults: Optional[str] = None
    mqtt_url: Optional[str] = None
    door: Optional[str] = None
    room: Optional[str] = None
    mqtt_ca: Optional[str] = None
    occupancy: int = 0  # people already in the room at start


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

    if options.off_delay < 0:
        raise UsageError(f"--off-delay {options.off_delay:g} is negative; use 0 or more seconds")
    given = orientation_setting(options.orientation)  # None: auto
    out = out or sys.stderr
    plain = not options.dashboard or not _is_terminal(out)
    # Made-up people switching real lights must be obvious in every line of the journal.
    made_up = simulated_label(options.sensor_spec)
    prefix = f"{made_up}: " if made_up else ""

    def report(message: str) -> None:
        if plain:
            # Redacted: a log line must not carry a password; dropped if `out` is full or closed.
            print_line(redact(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {prefix}{message}"), out)

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

        model = Model.load(None if options.model_path in (None, "default") else options.model_path,
                           backend=options.backend)
        counter = Counter(model.meanings, flip=options.flip)
        if options.occupancy < 0:
            raise UsageError(f"--occupancy {options.occupancy} is negative; use 0 or more people")
        if options.occupancy:
            counter.set_occupancy(options.occupancy)
        events_out = _open_events_out(options.events_out, stack)
        lights, policy = _open_lights(options, report, stack)
        publisher = _open_mqtt(options, stack)
        sensor = _open_sensor(options, given)
        stack.callback(sensor.close)
        # The live loop never reads the simulator's ground truth: keeping it would grow
        # memory with every crossing of a long `run --sensor sim` (benchmarks/soak_run.py).
        simulated = getattr(sensor, "inner", sensor)
        if hasattr(simulated, "keep_ground_truth"):
            simulated.keep_ground_truth = False

        loop = LiveLoop(sensor, model, counter, lights=lights, light_policy=policy, publisher=publisher,
                        model_label=f"{options.model_path or 'default'} ({model.backend})",
                        events_out=events_out, reporter=report, speed=options.speed,
                        status_interval=60.0 if plain else None, find_axis=given is None,
                        axis_label="" if given is None else f"the model's {model.travel_axis}; frames {_turned(given)}")
        if publisher is not None:
            publisher.on_command = loop.command
            publisher.publish_state(counter.occupancy, 0, 0)
        handler.loop = loop
        handler.flush_held()
        if on_loop is not None:
            on_loop(loop)
        report(
            f"counting: sensor {options.sensor_spec}, model {options.model_path or 'default'} "
            f"({model.backend}), lights {options.lights_kind}"
            + (f", mqtt {redact_url(options.mqtt_url)}" if options.mqtt_url else "")
            + (f", travel axis from the frames (the model's {model.travel_axis} until found)" if given is None
               else f", frames {_turned(given)}")
        )
        stack.enter_context(_stop_on_signals(loop))
        if plain:
            return loop.run(duration=options.duration, max_frames=options.max_frames)
        return _run_with_dashboard(loop, options, lights, publisher, made_up)


def _open_sensor(options: RunOptions, orientation):
    from thermalcount.sensors import open_sensor

    try:
        return open_sensor(
            options.sensor_spec, fps=options.fps, speed=options.speed, bus=options.bus,
            address=options.address, orientation=orientation, seed=options.seed,
            scenario=options.scenario, faults=options.faults,
        )
    except SensorSetupError as error:
        # The real sensor is the default now: on a laptop (no I2C at all) say how to try it.
        if options.sensor_spec.strip().lower() == "amg8833" and not os.path.exists(f"/dev/i2c-{options.bus}"):
            raise SensorSetupError(f"{error}; or use --sensor sim to try it without hardware") from None
        raise


def _turned(orientation) -> str:
    """What --orientation does to the frames, for the log and the dashboard."""
    return "as the sensor gives them" if orientation.is_identity else f"turned {orientation}"


def _run_with_dashboard(loop, options, lights, publisher, banner=None):
    from rich.console import Console
    from rich.live import Live

    from thermalcount.app.dashboard import render_dashboard

    console = Console(stderr=True)
    with Live(get_renderable=lambda: render_dashboard(loop, lights=lights, publisher=publisher, banner=banner),
              console=console, refresh_per_second=4, transient=False):
        return loop.run(duration=options.duration, max_frames=options.max_frames)


def _open_events_out(path: Optional[str], stack: ExitStack):
    if path is None:
        return None
    from thermalcount.runtime.event_log import EventLog

    # Append: a service that restarts keeps the events it already logged.
    events = EventLog.open(path)
    stack.callback(events.close)
    return events


def _open_lights(options: RunOptions, report, stack: ExitStack):
    from thermalcount.lights import open_lights
    from thermalcount.lights.policy import LightPolicy

    if options.lights_kind == "none":
        return None, None
    if options.lights_kind != "hue" and (options.light_names or options.group_name or options.bridge):
        raise UsageError("--bridge, --light and --group need --lights hue")
    lights = open_lights(
        options.lights_kind, bridge=options.bridge, lights=options.light_names, group=options.group_name,
    )
    stack.callback(lights.close)
    return lights, LightPolicy(off_delay=options.off_delay)


def _open_mqtt(options: RunOptions, stack: ExitStack):
    if options.mqtt_url is None:
        if options.door or options.room or options.mqtt_ca:
            raise UsageError("--door, --room and --mqtt-ca need --mqtt mqtt://HOST[:PORT]")
        return None
    from thermalcount.mqtt.door import DoorPublisher

    # door=None: the publisher uses the host name without its domain (ids cannot hold dots).
    publisher = DoorPublisher(options.mqtt_url, door=options.door, room=options.room, tls_ca=options.mqtt_ca)
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


class _stop_on_signals:
    """SIGTERM and SIGINT stop the loop between frames, so files are flushed and closed."""

    def __init__(self, loop):
        self.loop = loop
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.loop.stop()

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
