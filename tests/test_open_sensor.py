"""open_sensor: choosing a sensor by name, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_python
from thermalcount.errors import SensorSetupError, UsageError
from thermalcount.sensors import open_sensor, parse_spec, sensor_choices, simulated_label
from thermalcount.sensors import registry
from thermalcount.sensors.amg8833 import AMG8833
from thermalcount.sensors.base import Sensor, SensorFrame, SensorInfo


@pytest.mark.parametrize("spec", ["amg", "camera", "replay", "sim:x", ""])
def test_unknown_spec_lists_the_choices(spec):
    with pytest.raises(UsageError) as excinfo:
        open_sensor(spec)
    message = str(excinfo.value)
    assert "\n" not in message
    if spec != "replay":
        for choice in ("amg8833", "emulated", "sim", "replay:PATH"):
            assert choice in message


def test_emulated_is_the_real_driver_over_the_simulator():
    sensor = open_sensor("emulated", speed=None, bus=21, seed=3, scenario="mixed")
    try:
        assert type(sensor) is AMG8833
        assert sensor.info.sensor == "emulated" and sensor.info.fps == 10
        frames = [sensor.read() for _ in range(20)]
        assert sensor.emulator.path == "/dev/i2c-21" and sensor.emulator.stats["opens"] == 1
    finally:
        sensor.close()
    stack = np.stack([f.pixels for f in frames])
    assert stack.dtype == np.float32 and 0 < stack.mean() < 40
    assert np.all(stack * 4 == np.round(stack * 4))  # 0.25 °C steps, as the part delivers
    assert all(f.thermistor is not None for f in frames)


def test_emulated_frames_equal_the_simulator_frames():
    from thermalcount.sensors.sim.simulator import Simulator

    expected = Simulator("mixed", seed=5, fps=10).generate(40).frames
    sensor = open_sensor("emulated", speed=None, bus=22, seed=5)
    try:
        frames = np.stack([sensor.read().pixels for _ in range(30)])
    finally:
        sensor.close()
    # Start-up discards the settling frames; after that every simulated frame arrives in order.
    offset = next(i for i in range(10) if np.array_equal(expected[i], frames[0]))
    assert np.array_equal(expected[offset:offset + 30], frames)


def test_emulated_with_a_fault_string():
    sensor = open_sensor("emulated", speed=None, bus=23, faults="absurd=1")
    try:
        with pytest.raises(Exception, match="outside what an AMG8833 can see"):
            sensor.read()
    finally:
        sensor.close()


def test_sim_sensor():
    sensor = open_sensor("sim", speed=None, fps=1, seed=1)
    assert sensor.info.sensor == "sim" and sensor.info.fps == 1
    assert sensor.read().pixels.shape == (8, 8)


def test_sim_with_orientation_is_wrapped():
    plain = open_sensor("sim", speed=None, seed=2).read().pixels
    turned = open_sensor("sim", speed=None, seed=2, orientation="rotate=180")
    assert turned.info.orientation == "rotate=180,mirror=none"
    assert np.array_equal(turned.read().pixels, plain[::-1, ::-1])
    assert hasattr(turned, "ground_truth")  # the simulator's extras stay reachable


@pytest.mark.parametrize("spec, kw, words", [
    ("amg8833", {"speed": None}, "real time"),
    ("amg8833", {"faults": "absurd=0.1"}, "--faults"),
    ("sim", {"faults": "errno=5:0.1"}, "--faults"),
    ("amg8833", {"scenario": "busy"}, "--scenario"),
    ("emulated", {"fps": 5}, "1 or 10"),
    ("emulated", {"speed": 0}, "speed"),
    ("emulated", {"faults": "nonsense=1"}, "fault plan"),
    ("emulated", {"orientation": "rotate=45"}, "rotation"),
    ("replay:", {}, "replay:PATH"),
])
def test_bad_options_are_usage_errors(spec, kw, words):
    with pytest.raises(UsageError, match=words):
        open_sensor(spec, **{"bus": 24, **kw})


def test_real_amg8833_without_i2c_is_a_setup_error():
    with pytest.raises(SensorSetupError, match="raspi-config"):
        open_sensor("amg8833", bus=57)


def test_importing_sensors_is_light():
    result = run_python(
        "import sys, thermalcount.sensors\n"
        "heavy = [m for m in ('smbus2', 'h5py', 'torch', 'sklearn', 'thermalcount.sensors.sim.simulator') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_emulated_path_never_imports_torch():
    result = run_python(
        "import sys\nfrom thermalcount.sensors import open_sensor\n"
        "s = open_sensor('emulated', speed=None, bus=9)\ns.read(); s.close()\n"
        "print([m for m in ('torch', 'sklearn') if m in sys.modules])"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------ the registry


class ConstantSensor(Sensor):
    """A made-up sensor for the registry test: every pixel at one temperature."""

    def __init__(self, celsius, *, fps):
        self.info = SensorInfo(sensor="constant", fps=fps)
        self.celsius, self.index = float(celsius), 0

    def read(self):
        self.index += 1
        return SensorFrame(np.full((8, 8), self.celsius, np.float32), 100.0 + self.index / self.info.fps,
                           self.index - 1)


@pytest.fixture
def own_registry(monkeypatch):
    """The registry as it is, restored after the test whatever it registers."""
    monkeypatch.setattr(registry, "SENSORS", dict(registry.SENSORS))


def test_a_new_sensor_is_one_factory_and_one_registry_line(own_registry):
    registry.register("constant", ConstantSensor, takes=("fps",), argument="CELSIUS")

    sensor = open_sensor(" Constant:21.5 ", fps=1, orientation="rotate=90")
    frame = sensor.read()
    assert sensor.info.fps == 1 and np.all(frame.pixels == 21.5)
    assert sensor.info.orientation == "rotate=90,mirror=none"  # turned for it: it takes no orientation
    assert "constant:CELSIUS" in sensor_choices()
    with pytest.raises(UsageError, match="constant needs CELSIUS"):
        open_sensor("constant")
    with pytest.raises(UsageError, match=r"--faults only applies to the emulated sensor"):
        open_sensor("constant:20", faults="absurd=1")
    assert parse_spec("constant:20").simulated_label is None


def test_record_takes_a_sensor_added_by_one_registry_line(own_registry, tmp_path):
    """No command lists the sensors itself: once registered, ``record --sensor`` opens it."""
    from click.testing import CliRunner

    from thermalcount.cli import cli
    from thermalcount.store import open_recording

    registry.register("constant", ConstantSensor, takes=("fps",), argument="CELSIUS")
    out = tmp_path / "constant.h5"
    result = CliRunner().invoke(cli, ["record", "--sensor", "constant:21.5", "--fps", "1", "--frames", "5",
                                      "--no-preview", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open_recording(out) as recording:
        assert len(recording) == 5 and np.all(recording.read() == 21.5)


def test_a_registered_factory_named_by_module_is_imported_only_when_opened(own_registry):
    registry.register("later", "tests.no_such_module:factory")
    assert "later" in sensor_choices()  # registering imported nothing
    with pytest.raises(ModuleNotFoundError):
        open_sensor("later")


@pytest.mark.parametrize("text, name, argument", [
    ("replay:a.h5", "replay", "a.h5"), ("replay: a.h5", "replay", "a.h5"), (" REPLAY :a.h5 ", "replay", "a.h5"),
    ("Sim", "sim", ""), ("emulated", "emulated", ""), (" amg8833 ", "amg8833", ""),
])
def test_parse_spec_ignores_case_and_spaces(text, name, argument):
    parsed = parse_spec(text)
    assert (parsed.name, parsed.argument) == (name, argument)
    assert parsed.reads_file == (argument if name == "replay" else None)
    assert (parsed.simulated_label is not None) == (name in ("sim", "emulated"))


def test_simulated_label_comes_from_the_registry():
    assert simulated_label(" SIM ") == "SIMULATED sensor (sim)"
    assert simulated_label("emulated") == "SIMULATED sensor (emulated)"
    assert simulated_label("replay:x.h5") is None and simulated_label("amg8833") is None
