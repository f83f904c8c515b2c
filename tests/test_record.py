"""The record workflow (recorder.record) and the ``thermalcount record`` command."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.errors import EndOfStream, SensorError
from thermalcount.store.record import record
from thermalcount.sensors.base import Sensor, SensorFrame, SensorInfo
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.store import RecordingWriter, open_recording

THERMALCOUNT = [sys.executable, "-m", "thermalcount"]


class ScriptedSensor(Sensor):
    """Plays a script: an int is a frame with that stream index, an exception is raised."""

    def __init__(self, script, fps=10.0):
        self.info = SensorInfo("scripted", fps)
        self.script = list(script)
        self.reads = 0

    def read(self):
        self.reads += 1
        if not self.script:
            raise EndOfStream("done")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return SensorFrame(np.full((8, 8), float(item), np.float32), 100.0 + item / self.info.fps,
                           item, 25.0)


def test_record_counts_dropped_frames_glitches_and_reports_outages_once(tmp_path):
    glitch = SensorError("I2C input/output error")
    script = [0, 1, glitch, 2, glitch, 3, 6, glitch, glitch, glitch, 7, 8]  # 4 and 5 dropped
    notices = []
    seen = []
    with RecordingWriter(tmp_path / "r.h5", fps=10) as writer:
        # A clock that stands still: the second lone glitch falls inside the first one's minute.
        stats = record(ScriptedSensor(script), writer, speed=None, clock=lambda: 500.0,
                       on_notice=lambda kind, text: notices.append((kind, text)),
                       on_frame=lambda frame, st: seen.append(frame.index))
    assert stats.stopped_by == "end of stream"
    assert (stats.frames, stats.dropped, stats.sensor_errors, stats.outages) == (7, 2, 5, 1)
    assert seen == [0, 1, 2, 3, 6, 7, 8]
    assert stats.suspect_frames == 0 and stats.sensor_problem is None
    # The first lone glitch is said and ended, the second (within a minute) only counted; the
    # outage is said once, however many reads fail in it.
    assert [kind for kind, _ in notices] == ["glitch", "recovered", "fault", "recovered"]
    assert all("I2C input/output error" in text for kind, text in notices if kind != "recovered")
    assert "(recording pauses)" in notices[2][1] and "3 failed reads" in notices[3][1]
    with open_recording(tmp_path / "r.h5") as rec:
        np.testing.assert_array_equal(rec.read()[:, 0, 0], [0, 1, 2, 3, 6, 7, 8])
        np.testing.assert_array_equal(rec.thermistor(), np.full(7, 25.0, np.float32))


def test_record_counts_impossible_values_but_keeps_them(tmp_path):
    # The AMG8833 driver drops impossible frames itself; a replay of an old file does not.
    class OddValues(ScriptedSensor):
        def read(self):
            frame = super().read()
            if frame.index == 2:
                frame.pixels[3, 3] = 480.0  # the classic two's-complement bug
            if frame.index == 4:
                frame.pixels[0, 0] = np.nan
            return frame

    with RecordingWriter(tmp_path / "r.h5", fps=10) as writer:
        stats = record(OddValues(range(6)), writer)
    assert stats.suspect_frames == 2
    with open_recording(tmp_path / "r.h5") as rec:
        report = rec.check_values()
        assert rec.read()[2, 3, 3] == 480.0  # stored as read: the recording is the evidence
    assert (report.out_of_range_frames, report.nan_frames, report.first_bad_frame) == (1, 1, 2)


def test_record_stops_at_frame_limit_duration_and_stop_event(tmp_path):
    with RecordingWriter(tmp_path / "a.h5", fps=10) as writer:
        assert record(ScriptedSensor(range(100)), writer, max_frames=7).frames == 7
    # 2 s at 10 fps measured on the frames' timestamps: 20 frames, however fast they come.
    with RecordingWriter(tmp_path / "b.h5", fps=10) as writer:
        stats = record(ScriptedSensor(range(100)), writer, duration=2.0)
    assert (stats.frames, stats.stopped_by) == (20, "duration")
    stop = threading.Event()
    with RecordingWriter(tmp_path / "c.h5", fps=10) as writer:
        stats = record(ScriptedSensor(range(100)), writer,
                       on_frame=lambda frame, st: frame.index == 4 and stop.set(), stop_event=stop)
    assert (stats.frames, stats.stopped_by) == (5, "stop")


def test_record_stores_simulator_ground_truth_at_file_positions(tmp_path):
    from thermalcount.sensors import open_sensor

    path = tmp_path / "sim.h5"
    with RecordingWriter(path, fps=10) as writer:  # start with 10 frames already in the file
        writer.append_many(np.zeros((10, 8, 8)), np.arange(10.0))
    truth = simulate(3000, "mixed", seed=3)
    assert truth.events, "the scenario should contain crossings"
    with open_sensor("sim", speed=None, seed=3) as sensor, RecordingWriter(path, append=True) as writer:
        stats = record(sensor, writer, max_frames=3000)
    with open_recording(path) as rec:
        np.testing.assert_array_equal(rec.read(10), truth.frames)
        expected = [(e.frame + 10, e.direction) for e in truth.events]
        assert [(e.frame, e.direction) for e in rec.events] == expected
        assert stats.events == len(expected)


def run_cli(*args):
    return CliRunner().invoke(cli, ["record", *args], catch_exceptions=False)


def test_record_command_writes_a_simulated_recording(tmp_path):
    out = tmp_path / "sim.h5"
    result = run_cli("--sensor", "sim", "--speed", "max", "--frames", "500", "--seed", "2",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 500 frames" in result.output and "0 dropped" in result.output
    with open_recording(out) as rec:
        assert rec.n_frames == 500 and rec.attrs["sensor"] == "sim"
        assert rec.attrs["closed_cleanly"] is True and rec.travel_axis in ("rows", "columns")
        assert rec.attrs["ground_truth"] == "simulated"
        np.testing.assert_array_equal(rec.read(), simulate(500, "mixed", seed=2).frames)


def test_record_command_append_overwrite_and_refusals(tmp_path):
    out = tmp_path / "r.h5"
    base = ["--sensor", "sim", "--speed", "max", "--out", str(out)]
    assert run_cli(*base, "--frames", "30").exit_code == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()

    refused = run_cli(*base, "--frames", "30")
    assert refused.exit_code != 0
    assert "already exists" in refused.output and "--append" in refused.output
    assert "Traceback" not in refused.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest

    wrong_rate = run_cli(*base, "--frames", "3", "--append", "--fps", "1")
    assert wrong_rate.exit_code != 0 and "1 fps" in wrong_rate.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest

    assert run_cli(*base, "--frames", "20", "--append").exit_code == 0
    with open_recording(out) as rec:
        assert rec.n_frames == 50
    assert run_cli(*base, "--frames", "5", "--overwrite").exit_code == 0
    with open_recording(out) as rec:
        assert rec.n_frames == 5


@pytest.mark.parametrize("spec", ["replay:{path}", "replay: {path}", " Replay:{path}", "REPLAY :  {path} "])
def test_record_refuses_to_append_a_replay_to_itself_however_the_spec_is_spelled(tmp_path, spec):
    out = tmp_path / "r.h5"
    assert run_cli("--sensor", "sim", "--speed", "max", "--frames", "20", "--out", str(out)).exit_code == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    result = CliRunner().invoke(cli, ["record", "--sensor", spec.format(path=out), "--speed", "max", "--append",
                                      "--out", str(out), "--no-preview"])
    assert result.exit_code != 0 and "is the replayed recording" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest  # untouched


def test_record_command_unwritable_output_and_sensor_setup_error(tmp_path):
    missing = tmp_path / "no-such-folder" / "r.h5"
    result = run_cli("--sensor", "sim", "--speed", "max", "--frames", "3", "--out", str(missing))
    assert result.exit_code != 0 and "does not exist" in result.output
    # The emulated bus refusing to open (I2C disabled) is a set-up error: one line, no file.
    out = tmp_path / "r.h5"
    result = run_cli("--sensor", "emulated", "--faults", "open=2", "--frames", "3", "--out", str(out))
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_record_command_survives_emulated_sensor_faults(tmp_path):
    out = tmp_path / "faulty.h5"
    result = run_cli("--sensor", "emulated", "--speed", "max", "--frames", "300",
                     "--faults", "errno=5:0.05,disconnect=2s@10s,seed=4", "--out", str(out))
    assert result.exit_code == 0, result.output
    # The 2 s disconnect (~20 failed reads) is announced once, not once per read; lone
    # glitches are said at most once a minute.
    assert result.output.count("no ACK") == 1
    failed = int(result.output.split(" failed sensor reads")[0].rsplit(" ", 1)[1])
    assert failed >= 20 and result.output.count("sensor problem:") < failed / 4
    assert "sensor recovered" in result.output
    with open_recording(out) as rec:
        assert rec.n_frames == 300 and rec.check_values().ok


def _start(args, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*THERMALCOUNT, "record", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_finish_the_file_cleanly(tmp_path, signum):
    out = tmp_path / "r.h5"
    child = _start(["--sensor", "sim", "--speed", "20", "--out", str(out)], tmp_path)
    _wait_for_frames(out, child)
    with open_recording(out) as live:  # readable while the recorder holds the file lock
        assert live.n_frames >= 200 and live.recovered
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr
    assert stdout.startswith("stopped: wrote ")
    written = int(stdout.split("wrote ")[1].split()[0])
    with h5py.File(out, "r") as f:  # plain h5py, and every frame the summary promised
        assert f["frames"].shape[0] == written > 0
        assert bool(f.attrs["closed_cleanly"])
    with open_recording(out) as rec:
        np.testing.assert_array_equal(rec.read(), simulate(written, "mixed", seed=0).frames)


@pytest.mark.slow
def test_sigkill_leaves_a_readable_recording_of_the_stream(tmp_path):
    rng = random.Random(7)
    for attempt in range(3):
        out = tmp_path / f"killed-{attempt}.h5"
        child = _start(["--sensor", "sim", "--speed", "20", "--out", str(out)], tmp_path)
        _wait_for_frames(out, child)
        time.sleep(rng.uniform(0.0, 1.0))
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        with h5py.File(out, "r") as f:
            n = f["frames"].shape[0]
            assert not bool(f.attrs["closed_cleanly"])
        assert n >= 200  # written before _wait_for_frames returned: nothing already synced is lost
        with open_recording(out) as rec:
            truth = simulate(n, "mixed", seed=0)
            np.testing.assert_array_equal(rec.read(), truth.frames)
            np.testing.assert_array_equal(rec.timestamps(), truth.timestamps)


def _wait_for_frames(path, child, at_least=200, timeout=30.0):
    """Poll the file (as a reader would) until the recorder has synced ``at_least`` frames."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()[1]
        try:
            with h5py.File(path, "r", locking=False) as f:  # the recorder holds the lock
                if f["frames"].shape[0] >= at_least:
                    return
        except (OSError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError("the recorder wrote nothing")


def test_full_disk_stops_record_with_a_clear_message_and_an_intact_file(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        out = mount / "r.h5"
        result = subprocess.run([*THERMALCOUNT, "record", "--sensor", "sim", "--speed", "max",
                                 "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: disk nearly full") and "frames saved" in last
        saved = int(last.split("with ")[1].split()[0])
        with open_recording(out) as rec:
            assert rec.n_frames == saved > 1000
            np.testing.assert_array_equal(rec.read(), simulate(saved, "mixed", seed=0).frames)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_record_run_and_doctor_share_one_definition_of_the_sensor_options():
    from thermalcount.cli.doctor_cmd import doctor
    from thermalcount.cli.record_cmd import record as record_command
    from thermalcount.cli.run_cmd import run

    def options(command):
        return {p.name: (p.opts, p.default, p.type.name, p.help) for p in command.params}

    recorded, running, checking = options(record_command), options(run), options(doctor)
    for name in ("sensor_spec", "fps", "bus", "address", "speed", "scenario", "seed", "faults"):
        # --sensor's help in run adds a note on simulated sensors; everything else is identical.
        same = slice(0, 3) if name == "sensor_spec" else slice(None)
        assert recorded[name][same] == running[name][same], name
        if name in checking:
            assert checking[name][same] == recorded[name][same], name
    # --orientation is the one that differs, on purpose: stored by record, found by run.
    assert recorded["orientation"][1] is None and running["orientation"][1] == checking["orientation"][1] == "auto"
