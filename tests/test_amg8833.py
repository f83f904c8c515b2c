"""The real AMG8833 driver through the real smbus2 code, against the emulated part below smbus2."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from thermalcount.errors import SensorError, SensorSetupError, UsageError
from thermalcount.sensors.amg8833 import AMG8833, i2c_advice
from thermalcount.sensors.conversions import parse_orientation
from thermalcount.sensors.emulated.bus import FakeClock, open_emulated

PATTERN = 20.0 + 0.25 * np.arange(64, dtype=np.float64).reshape(8, 8)


def numbered_frame(index: int):
    """Pixel (0, 0) encodes the frame index; thermistor a negative value to test its sign."""
    frame = PATTERN.copy()
    frame[0, 0] = 10.0 + 0.25 * (index % 400)
    return frame, -3.25


def frame_index(pixels) -> int:
    return int(round((float(pixels[0, 0]) - 10.0) / 0.25))


@pytest.fixture
def sensors():
    """Open emulated sensors (bus 31 by default) for one test; always close them."""
    opened = []

    def open_one(**kw):
        kw.setdefault("bus", 31)
        kw.setdefault("speed", None)
        kw.setdefault("source", numbered_frame)
        sensor = open_emulated(**kw)
        opened.append(sensor)
        return sensor

    yield open_one
    for sensor in opened:
        sensor.close()


def read_until_frame(sensor, limit=200):
    """Call read() as the live loops do: retry on SensorError. Returns (frame, errors)."""
    errors = []
    for _ in range(limit):
        try:
            return sensor.read(), errors
        except SensorError as error:
            assert not isinstance(error, SensorSetupError)
            errors.append(str(error))
    raise AssertionError(f"no frame after {limit} reads: {errors[-3:]}")


# ------------------------------------------------------------------ start-up and frames


@pytest.mark.parametrize("fps, fpsc", [(10, 0x00), (1, 0x01)])
def test_init_sequence_seen_by_the_device(sensors, fps, fpsc):
    sensor = sensors(fps=fps)
    device = sensor.emulator.device
    writes = [(register, value) for _, register, value, accepted in device.writes if accepted]
    assert writes == [(0x00, 0x00), (0x01, 0x3F), (0x01, 0x30), (0x02, fpsc)]
    assert device.regs[0x02] == fpsc and device.fps == fps
    assert sensor.info.sensor == "emulated" and sensor.info.fps == fps
    assert (sensor.info.bus, sensor.info.address) == (31, 0x69)


def test_start_up_waits_follow_the_datasheet():
    clock = FakeClock()
    sleeps = []

    def sleep(seconds):
        sleeps.append(round(seconds, 6))
        clock.sleep(seconds)

    sensor = open_emulated(bus=32, speed=1.0, clock=clock, sleep=sleep, source=numbered_frame)
    try:
        assert sleeps == [0.05, 0.002, 0.1, 0.1]  # wake, reset, then two frames to settle
        frame = sensor.read()
        assert frame.pixels[0, 0] != 0  # never the invalid data right after the reset
    finally:
        sensor.close()


def test_one_combined_128_byte_transaction_per_frame(sensors):
    sensor = sensors()
    bus, device = sensor.emulator, sensor.emulator.device
    sensor.read()
    rdwr_before, reads_before, smbus_before = bus.stats["rdwr"], device.stats["pixel_reads"], bus.stats["smbus"]
    for _ in range(50):
        sensor.read()
    assert bus.stats["rdwr"] - rdwr_before == 50
    assert device.stats["pixel_reads"] - reads_before == 50
    assert device.stats["partial_pixel_reads"] == 0
    assert bus.stats["smbus"] - smbus_before == 5  # thermistor once a second (every 10 frames)
    rdwr = [t for t in bus.transfers if t[0] == "rdwr"]
    assert set(rdwr[-50:]) == {("rdwr", (("w", 0x69, b"\x80"), ("r", 0x69, 128)))}


def test_frames_are_consecutive_exact_and_carry_the_thermistor(sensors):
    sensor = sensors()
    frames = [sensor.read() for _ in range(30)]
    indices = [frame_index(f.pixels) for f in frames]
    assert indices == list(range(indices[0], indices[0] + 30))
    assert [f.index for f in frames] == list(range(30))
    expected = PATTERN.copy()
    expected[0, 0] = frames[0].pixels[0, 0]
    assert frames[0].pixels.dtype == np.float32 and frames[0].pixels.shape == (8, 8)
    assert np.array_equal(frames[0].pixels, expected)
    assert all(f.thermistor == -3.25 for f in frames)  # sign-magnitude survives the round trip
    assert frames[-1].time >= frames[0].time


@pytest.mark.parametrize("orientation", ["rotate=90", "rotate=180,mirror=horizontal", "rotate=270,mirror=vertical"])
def test_orientation(sensors, orientation):
    sensor = sensors(orientation=orientation)
    frame = sensor.read()
    # Undo the orientation with the inverse permutation: the source frame must come back.
    raw = np.empty(64)
    raw[parse_orientation(orientation).permutation()] = frame.pixels.reshape(64)
    unrotated = raw.reshape(8, 8)
    assert np.array_equal(unrotated[1:], PATTERN[1:]) and np.array_equal(unrotated[0, 1:], PATTERN[0, 1:])
    assert np.array_equal(frame.pixels, parse_orientation(orientation).apply(unrotated))
    assert not np.array_equal(frame.pixels, unrotated)
    assert sensor.info.orientation == str(parse_orientation(orientation))


def test_paced_at_the_frame_rate_with_a_fake_clock():
    clock = FakeClock()
    sensor = open_emulated(bus=33, fps=1, speed=1.0, clock=clock, sleep=clock.sleep, source=numbered_frame)
    try:
        start = clock()
        frames = [sensor.read() for _ in range(5)]
        assert clock() - start == pytest.approx(4.0)  # one frame per second of (fake) time
        indices = [frame_index(f.pixels) for f in frames]
        assert indices == list(range(indices[0], indices[0] + 5))
    finally:
        sensor.close()


def test_bad_frame_rate_is_a_usage_error():
    with pytest.raises(UsageError, match="1 or 10"):
        AMG8833(31, fps=5)


# ------------------------------------------------------------------ errors at start-up


@pytest.mark.parametrize("faults, address, words", [
    ("open=13", 0x69, ["permission denied", "group i2c"]),
    ("errno=5:1", 0x69, ["input/output error", "wires"]),
    ("errno=110:1", 0x69, ["timeout", "pull-ups"]),
    ("busy", 0x69, ["kernel driver", "dtoverlay"]),
    (None, 0x68, ["no device answers", "0x68", "i2cdetect -y 34"]),
    ("disconnect=10s@0s", 0x69, ["no ACK", "wiring"]),
    ("vanish=10s@0s", 0x69, ["I2C is not enabled", "raspi-config"]),
])
def test_start_up_errors_are_one_line_setup_errors(faults, address, words):
    with pytest.raises(SensorSetupError) as excinfo:
        open_emulated(bus=34, address=address, device_address=0x69, faults=faults, speed=None, source=numbered_frame)
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("cannot start the AMG8833")
    for word in words:
        assert word in message


def test_a_glitch_during_start_up_is_retried():
    # Seed 0 makes the first start-up attempt hit one EIO; the second attempt succeeds.
    sensor = open_emulated(bus=37, speed=None, source=numbered_frame, faults="errno=5:0.3,seed=0")
    try:
        assert sensor.errors_by_errno == {5: 1} == {5: sensor.emulator.stats["errno_5"]}
        assert sensor.emulator.device.stats["initial_resets"] == 2
    finally:
        sensor.close()


def test_missing_bus_is_the_real_enoent():
    assert not os.path.exists("/dev/i2c-59")
    with pytest.raises(SensorSetupError, match="dtparam=i2c_arm=on"):
        AMG8833(59)


def test_advice_for_every_errno():
    for code, word in [(errno.ENOENT, "raspi-config"), (errno.EACCES, "adduser"), (121, "i2cdetect -y 1"),
                       (errno.EIO, "loose"), (errno.ETIMEDOUT, "timeout"), (errno.EBUSY, "kernel driver"),
                       (errno.EPIPE, "errno 32")]:
        assert word in i2c_advice(OSError(code, os.strerror(code)), 1, 0x69)


# ------------------------------------------------------------------ faults while running


@pytest.mark.parametrize("code, reinit", [(5, False), (110, False), (121, True), (16, False)])
def test_read_errors_are_transient_and_recover(sensors, code, reinit):
    sensor = sensors()
    bus, device = sensor.emulator, sensor.emulator.device
    sensor.read()
    resets = device.stats["initial_resets"]
    bus.faults.errors[code] = 1.0
    with pytest.raises(SensorError) as excinfo:
        sensor.read()
    assert not isinstance(excinfo.value, SensorSetupError)
    assert "retrying" in str(excinfo.value) and "\n" not in str(excinfo.value)
    del bus.faults.errors[code]
    sensor.read()
    assert (device.stats["initial_resets"] > resets) is reinit
    assert sensor.stats["recoveries"] == int(reinit)
    assert sensor.errors_by_errno == {code: 1}


def test_persistent_flaky_errors_lead_to_reinit(sensors):
    sensor = sensors()
    sensor.read()
    sensor.emulator.faults.errors[5] = 1.0
    for _ in range(3):
        with pytest.raises(SensorError):
            sensor.read()
    sensor.emulator.faults.errors.clear()
    sensor.read()
    assert sensor.emulator.device.stats["initial_resets"] == 2
    assert sensor.stats["recoveries"] == 1


def test_random_errors_each_cost_one_read(sensors):
    sensor = sensors(faults="seed=5")
    sensor.emulator.faults.errors.update({5: 0.03, 110: 0.02, 121: 0.01})  # after a clean start
    frames = errors = 0
    for _ in range(1500):
        try:
            sensor.read()
            frames += 1
        except SensorError:
            errors += 1
    injected = sum(sensor.emulator.stats[f"errno_{c}"] for c in (5, 110, 121))
    assert errors == injected == sensor.stats["read_errors"] > 30
    assert frames == sensor.stats["frames"]


def test_disconnect_and_recovery_reinitialises_at_1_fps():
    clock = FakeClock()
    sensor = open_emulated(bus=35, fps=1, speed=1.0, clock=clock, sleep=clock.sleep, source=numbered_frame,
                           faults="disconnect=5s@10s")
    try:
        device = sensor.emulator.device
        errors, frames = [], []
        while clock() < 1000 + 25:
            try:
                frames.append(sensor.read())
            except SensorError as error:
                errors.append(str(error))
        assert errors and all("no ACK" in e for e in errors)
        assert len(errors) in (4, 5, 6)
        assert device.stats["power_ons"] == 2  # it came back with default registers...
        assert device.regs[0x02] == 0x01  # ...and the driver set 1 FPS again
        assert device.stats["initial_resets"] == 2 and sensor.stats["recoveries"] == 1
        assert [f.index for f in frames] == list(range(len(frames)))
        assert len(frames) >= 15
    finally:
        sensor.close()


def test_vanished_bus_reopens_when_it_returns():
    clock = FakeClock()
    sensor = open_emulated(bus=36, speed=1.0, clock=clock, sleep=clock.sleep, source=numbered_frame,
                           faults="vanish=2s@3s")
    try:
        bus = sensor.emulator
        errors = []
        while clock() < 1000 + 8:
            try:
                sensor.read()
            except SensorError as error:
                errors.append(str(error))
        assert any("disappeared" in e for e in errors)  # ENODEV on the open descriptor
        # ENOENT while re-opening: it was there at start, so not "I2C is not enabled" advice
        assert any("disappeared after a good start" in e for e in errors)
        assert bus.stats["open_errors"] >= 1
        assert bus.stats["opens"] - bus.stats["open_errors"] == 2  # the first open and one re-open
        frame, _ = read_until_frame(sensor)
        assert frame.pixels.shape == (8, 8)
    finally:
        sensor.close()


def test_stuck_frames_are_detected_and_cured_by_reinit(sensors):
    sensor = sensors(faults="stuck=inf@40")
    frames, errors = [], []
    for _ in range(80):
        try:
            frames.append(sensor.read())
        except SensorError as error:
            errors.append(str(error))
    assert len(errors) == 1 and "sensor frames are not updating" in errors[0]
    assert sensor.stats["stale"] == 1 and sensor.stats["recoveries"] == 1
    indices = [frame_index(f.pixels) for f in frames]
    assert indices[-1] > 45  # frames flow again after the re-init
    assert max(indices.count(i) for i in set(indices)) == sensor.stale_frames  # at most N repeats slipped out


def test_out_of_range_values_are_reported_and_dropped(sensors):
    sensor = sensors(faults="absurd=0.2,seed=4")
    device = sensor.emulator.device
    before = device.stats["absurd_frames"]
    errors = []
    for _ in range(300):
        try:
            frame = sensor.read()
            assert -40 <= frame.pixels.min() and frame.pixels.max() <= 150
        except SensorError as error:
            errors.append(str(error))
    assert len(errors) == device.stats["absurd_frames"] - before == sensor.stats["out_of_range"] > 20
    assert all("outside what an AMG8833 can see" in e for e in errors)


def test_out_of_range_thermistor_is_left_out(sensors):
    sensor = sensors(source=lambda i: (numbered_frame(i)[0], 110.0))
    frame = sensor.read()
    assert frame.thermistor is None
    assert sensor.stats["thermistor_out_of_range"] >= 1 and "thermistor" in sensor.last_error


# ------------------------------------------------------------------ real hardware


@pytest.mark.hardware
@pytest.mark.skipif("THERMALCOUNT_I2C_BUS" not in os.environ, reason="set THERMALCOUNT_I2C_BUS to test a wired AMG8833")
def test_real_sensor():
    bus = int(os.environ["THERMALCOUNT_I2C_BUS"])
    address = int(os.environ.get("THERMALCOUNT_I2C_ADDRESS", "0x69"), 0)
    with AMG8833(bus, address, fps=10) as sensor:
        frames = [sensor.read() for _ in range(5)]
    for frame in frames:
        assert frame.pixels.shape == (8, 8)
        assert -20 <= float(frame.pixels.mean()) <= 60
    assert frames[0].thermistor is not None and -20 <= frames[0].thermistor <= 80
    assert any(not np.array_equal(frames[0].pixels, f.pixels) for f in frames[1:])
