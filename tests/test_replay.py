"""Replaying a recording through the real frame store."""

from __future__ import annotations

import numpy as np
import pytest

from thermalcount.errors import EndOfStream, RecordingError
from thermalcount.sensors import open_sensor
from thermalcount.sensors.base import SensorInfo
from thermalcount.sensors.emulated.bus import FakeClock
from thermalcount.sensors.replay import ReplaySensor
from thermalcount.store import write_recording

N = 23


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(3)
    frames = (20 + rng.integers(0, 40, size=(N, 8, 8)) * 0.25).astype(np.float32)
    timestamps = 1_700_000_000.0 + np.arange(N) * 0.1 + rng.uniform(0, 0.01, N)  # real jitter kept
    thermistor = np.linspace(22.0, 23.0, N).astype(np.float32)
    info = SensorInfo(sensor="amg8833", fps=10.0, address=0x69, bus=1, orientation="rotate=90,mirror=none")
    path = write_recording(tmp_path / "rec.h5", frames, timestamps, fps=10.0, sensor_info=info,
                           thermistor=thermistor)
    return path, frames, timestamps, thermistor


def test_replays_every_frame_with_its_own_time_index_and_thermistor(recording):
    path, frames, timestamps, thermistor = recording
    with ReplaySensor(path, speed=None, chunk_frames=5) as sensor:
        assert sensor.finite and sensor.info.sensor == "replay" and sensor.info.fps == 10.0
        assert sensor.info.orientation == "rotate=90,mirror=none"
        assert sensor.info.extra["recorded_with"] == "amg8833"
        read = [sensor.read() for _ in range(N)]
        with pytest.raises(EndOfStream):
            sensor.read()
        with pytest.raises(EndOfStream):  # stays at the end
            sensor.read()
    assert [f.index for f in read] == list(range(N))
    assert np.array_equal(np.stack([f.pixels for f in read]), frames)
    assert [f.time for f in read] == list(timestamps)
    assert np.allclose([f.thermistor for f in read], thermistor)


def test_reads_in_bounded_chunks(recording):
    path, frames, _, _ = recording
    with ReplaySensor(path, speed=None, chunk_frames=4) as sensor:
        sizes = set()
        for frame in sensor:  # iteration ends quietly at EndOfStream
            sizes.add(len(sensor._chunk[1]))
        assert frame.index == N - 1
    assert max(sizes) == 4


def test_start_skips_frames(recording):
    path, frames, _, _ = recording
    with ReplaySensor(path, speed=None, start=20) as sensor:
        assert [f.index for f in sensor] == [20, 21, 22]


@pytest.mark.parametrize("speed, period", [(1.0, 0.1), (4.0, 0.025)])
def test_paced_at_speed_times_fps(recording, speed, period):
    clock = FakeClock()
    with ReplaySensor(recording[0], speed=speed, clock=clock, sleep=clock.sleep) as sensor:
        start = clock()
        for _ in range(10):
            sensor.read()
        assert clock() - start == pytest.approx(9 * period)


def test_speed_max_never_sleeps(recording):
    def no_sleep(seconds):
        raise AssertionError("slept")

    with ReplaySensor(recording[0], speed=None, sleep=no_sleep) as sensor:
        assert len(list(sensor)) == N


def test_bad_files_are_recording_errors(tmp_path):
    with pytest.raises(RecordingError):
        ReplaySensor(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(RecordingError):
        open_sensor(f"replay:{junk}")


def test_open_sensor_replay_with_orientation(recording):
    path, frames, _, _ = recording
    with open_sensor(f"replay:{path}", speed=None, orientation="mirror=horizontal") as sensor:
        first = sensor.read()
        assert sensor.finite and sensor.info.orientation == "rotate=0,mirror=horizontal"
        assert sensor.n_frames == N  # the wrapped replay's attributes stay reachable
    assert np.array_equal(first.pixels, frames[0][:, ::-1])
