"""``thermalcount doctor``: check everything ``run`` needs, one row each, with what to do.

Each check returns a :class:`Check`: a status (``ok``, ``warn``, ``fail``, ``skip``), what
was found, and the fix when it is not ok. The checks use the same code ``run`` uses (the
AMG8833 driver over smbus2, :meth:`Model.load`, :func:`load_config`, the phue driver, the
paho link's credentials), so a row that passes here means the same step passes in ``run``.

Nothing here imports torch or scikit-learn: doctor is what a user runs first on a Pi that
has neither. Nothing here writes to the sensor beyond its documented start-up sequence, to
the bridge or to the broker beyond one CONNECT.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

from thermalcount.errors import ThermalcountError
from thermalcount.sensors.registry import AMG8833_ADDRESSES, DEFAULT_ADDRESS, DEFAULT_BUS

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
# A day at 10 FPS: 864,000 frames of 64 float32 plus a timestamp, before compression.
BYTES_PER_DAY = 864_000 * (64 * 4 + 8)
DISK_FAIL_BYTES = 50 << 20  # below this, record stops almost at once (it keeps 1 MiB spare)


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class DoctorOptions:
    """What to check; mirrors ``run``'s options. ``None`` means "as ``run`` would decide"."""

    sensor: str = "amg8833"
    bus: int = DEFAULT_BUS
    address: int = DEFAULT_ADDRESS
    faults: Optional[str] = None
    model: str = "default"
    backend: str = "auto"
    orientation: str = "auto"
    bridge: Optional[str] = None
    lights: tuple = ()
    group: Optional[str] = None
    mqtt_url: Optional[str] = None
    mqtt_ca: Optional[str] = None
    data_dir: str = "."
    # For tests of the emulated part only: where it answers (default: ``address``) and what
    # feeds it (default: the simulator), to stage a wrong address or an odd thermistor.
    emulated_device_address: Optional[int] = None
    emulated_source: object = None
    config: object = field(default=None, repr=False)  # filled in by run_checks


def run_checks(options: DoctorOptions) -> List[Check]:
    """Every row, in the order a user would fix them."""
    checks: List[Check] = []
    checks.append(_python())
    checks.append(_backend(options.backend))
    checks.extend(_sensor(options))
    checks.append(_model(options))
    checks.append(_config(options))
    checks.extend(_hue(options))
    checks.extend(_mqtt(options))
    checks.append(_disk(options.data_dir))
    return checks


def failed(checks: List[Check]) -> List[Check]:
    return [check for check in checks if check.status == FAIL]


def as_json(checks: List[Check]) -> dict:
    """The bug-report form. Every string passes through redaction: no key or password."""
    from thermalcount import __version__
    from thermalcount.support.redaction import redact_values

    return redact_values({
        "thermalcount": __version__,
        "ok": not failed(checks),
        "checks": [asdict(check) for check in checks],
    })


# ----------------------------------------------------------------------------- the rows


def _guarded(name: str, body: Callable[[], Check]) -> Check:
    """A check that raises our one-line error is a failed row, not a stopped doctor."""
    try:
        return body()
    except ThermalcountError as error:
        return Check(name, FAIL, " ".join(str(error).split()))


def _python() -> Check:
    version = platform.python_version()
    where = f"Python {version} on {platform.system()} {platform.release()} ({platform.machine()})"
    if sys.version_info < (3, 9):
        return Check("python", FAIL, where, "thermalcount needs Python 3.9 or newer")
    if sys.version_info < (3, 11):
        try:
            import tomli  # noqa: F401  (config.toml needs it before 3.11)
        except ImportError:
            return Check("python", FAIL, where + "; tomli is missing, config.toml cannot be read",
                         "pip install tomli (or reinstall thermalcount in its venv)")
    return Check("python", OK, where)


def _backend(backend: str) -> Check:
    try:
        import onnxruntime
    except ImportError:
        machine = platform.machine()
        why = (f"onnxruntime publishes no wheel for {machine}" if machine in ("armv6l", "armv7l")
               else "onnxruntime is not installed")
        if backend == "onnxruntime":
            return Check("backend", FAIL, f"--backend onnxruntime, but {why}",
                         "pip install onnxruntime, or use --backend numpy (same graph, slower)")
        return Check("backend", OK, f"numpy ({why}; the numpy backend runs the same ONNX graph)")
    version = getattr(onnxruntime, "__version__", "?")
    if backend == "numpy":
        return Check("backend", OK, f"numpy (chosen with --backend numpy; onnxruntime {version} is installed)")
    reason = "chosen with --backend onnxruntime" if backend == "onnxruntime" else "auto: it is installed"
    return Check("backend", OK, f"onnxruntime {version} ({reason})")


# -- the sensor ---------------------------------------------------------------------------


def _sensor(options: DoctorOptions) -> List[Check]:
    from thermalcount.sensors import parse_spec

    name = parse_spec(options.sensor).name
    if name in ("amg8833", "emulated"):
        return _i2c_sensor(options, emulated=name == "emulated")
    return [_guarded("sensor", lambda: _other_sensor(options.sensor))]


def _other_sensor(spec: str) -> Check:
    """sim and replay:PATH have no I2C: open them as run would and read one frame."""
    from thermalcount.sensors import open_sensor

    sensor = open_sensor(spec, speed=None)
    try:
        frame = sensor.read()
    finally:
        sensor.close()
    return Check("sensor", OK, f"{spec}: one frame read ({frame.pixels.min():.1f}..{frame.pixels.max():.1f} °C); "
                               "no I2C checked (use --sensor amg8833 on the Pi)")


def _i2c_sensor(options: DoctorOptions, *, emulated: bool) -> List[Check]:
    if emulated:
        try:
            bus = _emulated_bus(options)
        except ThermalcountError as error:
            return [Check("i2c bus", FAIL, " ".join(str(error).split()))]
        return _i2c_rows(options, "emulated ", bus_factory=bus.smbus)
    return _i2c_rows(options, "")


def _emulated_bus(options: DoctorOptions):
    from thermalcount.sensors.emulated.bus import EmulatedI2CBus
    from thermalcount.sensors.emulated.device import AMG8833Device
    from thermalcount.sensors.emulated.sources import SimulatorSource

    source = options.emulated_source or SimulatorSource(None, seed=0, fps=10)
    # speed None: the emulated part makes a new frame per read, so doctor never waits.
    bus = EmulatedI2CBus(options.bus, faults=options.faults, speed=None, fps=10)
    where = options.address if options.emulated_device_address is None else options.emulated_device_address
    bus.attach(where, AMG8833Device(source))
    return bus


def _i2c_rows(options: DoctorOptions, kind: str, bus_factory=None) -> List[Check]:
    """The bus, the address and one frame; ``bus_factory`` opens the emulated bus (None: the real one)."""
    import errno as errno_codes

    try:
        from thermalcount.sensors.amg8833 import i2c_advice, probe_addresses
    except ImportError as error:  # smbus2 is a dependency; a broken venv lacks it
        return [Check("i2c bus", FAIL, f"smbus2 cannot be imported ({error})",
                      "reinstall thermalcount in its venv (scripts/install-pi.sh)")]
    bus, address = options.bus, options.address
    device = f"{kind}/dev/i2c-{bus}"
    asked = tuple(sorted({*AMG8833_ADDRESSES, address}))
    try:
        answers = probe_addresses(bus, asked, bus_factory)
    except OSError as error:
        # i2c_advice says "what: what to do"; the table has a column for each.
        what, _, fix = i2c_advice(error, bus, address).partition(": ")
        if error.errno == errno_codes.ENOENT:
            what = f"{device} does not exist: I2C is not enabled (or this is not a Raspberry Pi)"
            fix += " (Bullseye: /boot/config.txt)"
        return [Check("i2c bus", FAIL, what, fix),
                Check("sensor address", SKIP, "not checked: no I2C bus"),
                Check("sensor frame", SKIP, "not checked: no I2C bus")]
    rows = [Check("i2c bus", OK, f"{device} opens (I2C enabled, this user may use it)")]
    present = [hex(a) for a, error in answers.items() if error is None]
    if answers.get(address) is None:
        rows.append(Check("sensor address", OK, f"a device answers at 0x{address:02x}"
                          + (f" (all that answer: {', '.join(present)})" if len(present) > 1 else "")))
    else:
        error = answers[address]
        others = [a for a in present if a != hex(address)]
        if others and error.errno != errno_codes.EBUSY:
            fix = f"the sensor answers at {others[0]}: pass --address {others[0]} to run, record and doctor"
        else:
            fix = i2c_advice(error, bus, address).partition(": ")[2]
        rows.append(Check("sensor address", FAIL, f"nothing usable at 0x{address:02x} "
                          f"({error.strerror or error}); answering: {', '.join(present) or 'none'} of "
                          f"{', '.join(hex(a) for a in asked)}", fix))
        rows.append(Check("sensor frame", SKIP, "not checked: no sensor at the address"))
        return rows
    rows.append(_guarded("sensor frame", lambda: _one_frame(options, bus_factory)))
    return rows


def _one_frame(options: DoctorOptions, bus_factory) -> Check:
    from thermalcount.sensors.amg8833 import AMG8833, THERMISTOR_PLAUSIBLE_C

    emulated = bus_factory is not None
    # The driver's own start-up (wake, reset, 10 FPS, two settle frames) and one read.
    sensor = AMG8833(options.bus, options.address, fps=10, speed=None if emulated else 1.0,
                     sensor_name="emulated" if emulated else "amg8833", bus_factory=bus_factory)
    try:
        try:
            frame = sensor.read()
        except ThermalcountError as error:
            return Check("sensor frame", FAIL, f"the sensor started but a frame read failed: {error}",
                         "check the wiring and power (3V3, GND, SDA, SCL; short wires), then run doctor again")
        thermistor_bad = sensor.stats.get("thermistor_out_of_range", 0)
    finally:
        sensor.close()
    low, high = THERMISTOR_PLAUSIBLE_C
    pixels = f"{frame.pixels.min():.1f}..{frame.pixels.max():.1f} °C"
    if frame.thermistor is None or thermistor_bad:
        return Check("sensor frame", FAIL, f"one frame read ({pixels}) but the board "
                     f"{sensor.last_error or f'thermistor reads outside {low:g}..{high:g} °C'}",
                     "a wrong part or a damaged sensor: check that this is an AMG8833 and its supply is 3.3 V")
    return Check("sensor frame", OK, f"one frame read: pixels {pixels}, thermistor {frame.thermistor:.1f} °C")


# -- the model, the config -----------------------------------------------------------------


def _model(options: DoctorOptions) -> Check:
    def body() -> Check:
        from thermalcount.model.loader import Model

        model = Model.load(None if options.model in (None, "default") else options.model, backend=options.backend)
        # "low, low-2, low-3" -> "low x3": the names say what the model sees, the count how finely.
        kinds: dict = {}
        for meaning in model.meanings[:model.clusters]:
            base = meaning.name.rsplit("-", 1)[0] if meaning.name.rsplit("-", 1)[-1].isdigit() else meaning.name
            kinds[base] = kinds.get(base, 0) + 1
        names = ", ".join(name if n == 1 else f"{name} x{n}" for name, n in kinds.items())
        where = "embedded default model" if options.model in (None, "default") else str(model.path)
        orientation = str(options.orientation or "auto").strip().lower()
        if orientation == "auto":
            turned = (f"travel axis {model.travel_axis}; orientation auto: run finds the axis from the "
                      f"frames and uses the model's until then")
        else:
            turned = f"travel axis {model.travel_axis}; frames turned by --orientation {orientation}"
        return Check("model", OK, f"{where}: {model.clusters} states ({names}), {turned}, backend {model.backend}")

    check = _guarded("model", body)
    if check.status == FAIL:
        check.fix = check.fix or "re-export the model (thermalcount export) or use --model default"
    return check


def _config(options: DoctorOptions) -> Check:
    from thermalcount.config import load_config

    try:
        settings = load_config(warn=False)  # the row names the unknown keys; no second copy on stderr
    except ThermalcountError as error:
        return Check("config", FAIL, " ".join(str(error).split()), "fix or delete the file; run doctor again")
    options.config = settings
    if not settings.path.exists():
        return Check("config", OK, f"no {settings.path} (optional; every setting has a default)")
    if settings.unknown or settings.moved:
        return Check("config", WARN, f"{settings.path} parsed; "
                     + "; ".join([item.message for item in settings.unknown] + list(settings.moved)),
                     "rename, move or remove the keys named (see docs/lights.md)")
    return Check("config", OK, f"{settings.path} parsed, every key known")


# -- the bridge, the broker ------------------------------------------------------------------


def _hue(options: DoctorOptions) -> List[Check]:
    from thermalcount import config

    settings = options.config
    if settings is None:
        return [Check("hue bridge", SKIP, "not checked: config.toml cannot be read")]
    try:
        host_text = options.bridge or settings.hue_bridge or config.paired_bridge()
    except ThermalcountError as error:
        return [Check("hue bridge", FAIL, " ".join(str(error).split()))]
    lights = tuple(options.lights) or settings.hue_lights
    group = options.group if options.group is not None else settings.hue_group
    if not host_text:
        if lights or group is not None:
            return [Check("hue bridge", FAIL, "lights or a group are set but no bridge is",
                          "run thermalcount hue pair --bridge HOST, or set [hue] bridge in config.toml")]
        return [Check("hue bridge", SKIP, "not configured (no --bridge, no [hue] bridge, nothing paired)")]
    return _hue_rows(host_text, lights, group)


def _hue_rows(host_text: str, lights: tuple, group: Optional[str]) -> List[Check]:
    from thermalcount import config
    from thermalcount.errors import LightsError
    from thermalcount.lights.hue import HueDriver, list_bridge, normalize_host, rejected_key_error

    try:
        host = normalize_host(host_text)
        key = config.hue_key(host)
    except ThermalcountError as error:
        return [Check("hue bridge", FAIL, " ".join(str(error).split()))]
    if not key:
        return [Check("hue bridge", SKIP, f"{host}: not checked without a key"),
                Check("hue key", FAIL, f"no key stored for {host}", f"run thermalcount hue pair --bridge {host}")]
    try:
        inventory = list_bridge(host)  # GET lights and groups: reachability and the key at once
    except LightsError as error:
        if str(error) == str(rejected_key_error(host)):
            return [Check("hue bridge", OK, f"{host} answers"),
                    Check("hue key", FAIL, "the bridge rejected the stored key (unauthorized user)",
                          f"run thermalcount hue pair --bridge {host}")]
        return [Check("hue bridge", FAIL, " ".join(str(error).split()),
                      "check the bridge is on and the address (thermalcount hue pair --bridge HOST)"),
                Check("hue key", SKIP, "not checked: the bridge did not answer")]
    rows = [Check("hue bridge", OK, f"{host} answers: {len(inventory.lights)} lights, {len(inventory.groups)} groups"),
            Check("hue key", OK, "accepted")]
    if not lights and group is None:
        rows.append(Check("hue lights", FAIL, "no lights or group chosen",
                          "set [hue] lights or group in config.toml, or pass --light/--group (thermalcount hue lights)"))
        return rows
    try:
        targets = HueDriver(host, key, lights, group).resolve()
    except LightsError as error:
        rows.append(Check("hue lights", FAIL, " ".join(str(error).split()),
                          "use a name or id from thermalcount hue lights"))
        return rows
    except Exception as error:  # the bridge went away between the two requests
        from thermalcount.lights.hue import describe_error

        rows.append(Check("hue lights", FAIL, describe_error(error, host), "run doctor again"))
        return rows
    rows.append(Check("hue lights", OK, "present: " + ", ".join(f"{t.kind} {t.name} ({t.id})" for t in targets)))
    return rows


def _mqtt(options: DoctorOptions) -> List[Check]:
    settings = options.config
    url = options.mqtt_url or (settings.mqtt_url if settings is not None else None)
    if not url:
        return [Check("mqtt broker", SKIP, "not configured (no --mqtt, no [mqtt] url)")]

    from thermalcount.support.redaction import redact_url

    shown = redact_url(url)
    try:
        from thermalcount.mqtt.client import probe_broker

        outcome, why = probe_broker(url, tls_ca=options.mqtt_ca)
    except ThermalcountError as error:
        return [Check("mqtt broker", FAIL, " ".join(str(error).split()))]
    if outcome == "unreachable":
        return [Check("mqtt broker", FAIL, f"{shown}: {why}", "check the broker runs and the host and port"),
                Check("mqtt login", SKIP, "not checked: no connection")]
    rows = [Check("mqtt broker", OK, f"{shown} answers")]
    if outcome == "refused":
        rows.append(Check("mqtt login", FAIL, why.split("; set ")[0],
                          "set THERMALCOUNT_MQTT_USERNAME/THERMALCOUNT_MQTT_PASSWORD, or [mqtt] user and the "
                          "password in the credentials file"))
    else:
        rows.append(Check("mqtt login", OK, "accepted"))
    return rows


# -- the disk ----------------------------------------------------------------------------------


def _disk(data_dir: str) -> Check:
    path = Path(data_dir).expanduser()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # a folder that does not exist yet: where it would be created
    try:
        usage = shutil.disk_usage(probe)
    except OSError as error:
        return Check("disk", FAIL, f"cannot check {path}: {error.strerror or error}", "choose another --data-dir")
    free = usage.free
    days = free / BYTES_PER_DAY
    writable = os.access(probe, os.W_OK)
    detail = f"{path}: {free / (1 << 30):.1f} GiB free (about {days:.0f} days of recording at 10 FPS)"
    if not writable:
        return Check("disk", FAIL, f"{detail}; not writable by this user", f"choose a writable --data-dir or chown {probe}")
    if free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, detail, "free some space or record elsewhere (--data-dir, record --out)")
    if days < 1:
        return Check("disk", WARN, detail, "free some space before recording for long")
    return Check("disk", OK, detail)
