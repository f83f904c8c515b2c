"""Faults while `run` and `record` are going, with real parts: the AMG8833 driver through real
smbus2 to the emulated device (its FaultPlan), the real phue client against the fake bridge
over HTTP, real signals. Each test says what was kept and what was lost.

I2C faults run on a fake clock (the device, the pacer and the frame times all follow it), so
a 5 s disconnect costs no real 5 s and a faulty run can be compared with a fault-free run of
the same seed frame for frame. Note what the emulator does during a disconnect: the part is
unpowered, so its scene does not advance; after the outage the same people walk on. So a
test can demand that NOTHING is lost and that the events after the outage are the fault-free
events shifted by the outage. On a real door the people who cross while the sensor is away
are not counted (see docs/troubleshooting.md).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from thermalcount.config import save_hue_key
from thermalcount.runtime.counter import Counter
from thermalcount.runtime.live import LiveLoop
from thermalcount.model.loader import Model
from thermalcount.app.run import RunOptions, run_session
from thermalcount.sensors.emulated.bus import FakeClock, open_emulated
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.store import write_recording
from thermalcount.testing.fake_hue import FakeHueBridge

_buses = itertools.count(120)  # a fresh emulated /dev/i2c-N per sensor


@pytest.fixture(scope="module")
def model():
    return Model.load(None)


class _Lines:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.extend(line for line in text.splitlines() if line)

    def flush(self):
        pass


def _live_run(model, faults, frames, seed=5):
    """`run`'s loop on the emulated sensor on a fake clock; returns (events, notices, stats, sensor)."""
    clock = FakeClock(1000.0)
    sensor = open_emulated(scenario="single", seed=seed, speed=1.0, clock=clock, sleep=clock.sleep,
                           wall_clock=clock, faults=faults, bus=next(_buses))
    events, notices = _Lines(), []
    loop = LiveLoop(sensor, model, Counter(model.meanings), events_out=events, reporter=notices.append,
                    speed=1.0, wall_clock=clock)
    try:
        stats = loop.run(max_frames=frames)
    finally:
        sensor.close()
    return [json.loads(line) for line in events.lines], notices, stats, sensor


@pytest.fixture(scope="module")
def clean_events(model):
    events, notices, stats, _ = _live_run(model, None, 1800)
    assert stats.sensor_errors == 0 and len(events) >= 8  # 3 min of one-person crossings: 10 with seed 5
    return events


def _problems(notices):
    return [n for n in notices if n.startswith("sensor problem")]


# (fault plan, outage start and length in device seconds or None, re-init expected, words in the notice)
I2C_CASES = [
    ("errno=5:0.03", None, False, "input/output error"),
    ("errno=110:0.03", None, False, "timeout"),
    ("errno=121:0.02", None, True, "no ACK"),
    ("disconnect=5s@40s", (40.0, 5.0), True, "no ACK"),
    ("vanish=5s@40s", (40.0, 5.0), True, "disappeared"),
    ("stuck=60@300", None, True, "not updating"),
    ("absurd=0.02", None, False, "outside what an AMG8833 can see"),
]


@pytest.mark.slow
@pytest.mark.parametrize("faults, outage, reinit, words", I2C_CASES, ids=[c[0] for c in I2C_CASES])
def test_run_survives_i2c_faults_and_counting_resumes(model, clean_events, faults, outage, reinit, words):
    events, notices, stats, sensor = _live_run(model, faults, 1200)
    assert stats.frames == 1200 and stats.sensor_errors > 0  # kept going to the end
    assert (sensor.stats["inits"] >= 2) == reinit  # re-ran the start-up sequence by itself
    problems = _problems(notices)
    # Said once per outage, never once per failed read.
    assert problems and words in problems[0]
    if outage is not None:
        assert len(problems) == 1 and sum(n.startswith("sensor recovered") for n in notices) == 1
    else:
        assert len(problems) <= max(1, stats.sensor_errors / 3), (len(problems), stats.sensor_errors)

    # Nothing lost, nothing invented: the faulty run's events are the fault-free run's, in order.
    reference = clean_events[:len(events)]
    assert [(e["direction"], e["occupancy"]) for e in events] == \
        [(e["direction"], e["occupancy"]) for e in reference]
    shifts = [e["time"] - c["time"] for e, c in zip(events, reference)]
    if outage is not None:
        start, length = outage
        before = [e for e in events if e["time"] - 1000.0 < start]
        assert before == clean_events[:len(before)]  # identical up to the outage, frame indices too
        after = shifts[len(before):]
        assert after, "events after the outage"
        # The scene paused while unplugged: later events are the same ones, one outage later.
        assert all(abs(shift - (length + 0.25)) < 0.35 for shift in after), after
    elif reinit:
        # Each re-initialisation pauses the scene for ~0.25 s: the delay only grows.
        assert all(b >= a - 0.15 for a, b in zip(shifts, shifts[1:])) and max(shifts) < 10
    else:
        # A dropped frame moves an event by at most about a frame.
        assert max(abs(shift) for shift in shifts) <= 0.35, shifts


def test_record_keeps_every_good_frame_through_i2c_faults(tmp_path):
    """record through a vanished bus, stuck frames, impossible values and timeouts: every frame
    in the file is a frame of the fault-free stream, in order, with no value out of range."""
    from thermalcount.store.record import record
    from thermalcount.store import RecordingWriter, open_recording

    def run(faults, path, frames):
        clock = FakeClock(1000.0)
        sensor = open_emulated(scenario="busy", seed=2, speed=1.0, clock=clock, sleep=clock.sleep,
                               wall_clock=clock, faults=faults, bus=next(_buses))
        notices = []
        try:
            with RecordingWriter(path, sensor_info=sensor.info) as writer:
                stats = record(sensor, writer, max_frames=frames, speed=None, clock=clock,
                               on_notice=lambda kind, text: notices.append((kind, text)))
        finally:
            sensor.close()
        return stats, notices, sensor

    clean_stats, _, _ = run(None, tmp_path / "clean.h5", 1600)
    stats, notices, sensor = run("vanish=3s@20s,stuck=40@500,absurd=0.01,errno=110:0.02,seed=3",
                                 tmp_path / "faulty.h5", 1000)
    assert stats.frames == 1000 and stats.sensor_errors > 20
    assert sensor.stats["inits"] >= 3  # after the vanished bus and after the stuck frames
    kinds = [kind for kind, _ in notices]
    # Each outage said at most once (one that began as a said glitch is not said again); lone
    # glitches at most once a minute: ~100 s on the fake clock; every problem said has its end.
    assert kinds.count("fault") <= stats.outages <= 1 + stats.sensor_errors / 4
    assert kinds.count("glitch") <= 2
    assert kinds.count("recovered") == kinds.count("fault") + kinds.count("glitch") >= 1
    assert any("disappeared" in text for _, text in notices)
    with open_recording(tmp_path / "clean.h5") as clean, open_recording(tmp_path / "faulty.h5") as faulty:
        kept, reference = faulty.read(), clean.read()
        times = faulty.timestamps()
        assert faulty.check_values().ok  # the driver dropped the impossible frames
    # Never backwards. (Equal stamps happen here only because the fake clock stands still
    # between the reads that catch up after a re-initialisation.)
    assert np.all(np.diff(times) >= 0)
    assert np.diff(times).max() >= 3.0  # the outage shows as a gap in the timestamps
    # Every kept frame is a fault-free frame, in order (a subsequence of the clean stream);
    # frames repeated while the array was stuck match their predecessor.
    position = 0
    keys = [frame.tobytes() for frame in reference]
    for frame in kept:
        key = frame.tobytes()
        if position and keys[position - 1] == key:
            continue
        position = keys.index(key, position) + 1
    lost = position - len(kept)
    assert 0 <= lost < 0.1 * len(kept), lost  # dropped: the glitched reads and re-init settle frames


# ---------------------------------------------------------------------------------- bridge


@pytest.fixture(scope="module")
def crossings(tmp_path_factory):
    """60 s of single crossings; at speed 10 it replays in 6 s, a frame every 10 ms. Seed 13's
    first entry (frame 113, 1.1 s of wall time) falls inside the bridge outages below, so the
    lights must be switched while the bridge is down."""
    path = tmp_path_factory.mktemp("rec") / "single.h5"
    chunk = simulate(600, scenario="single", seed=13)
    assert 50 < chunk.events[0].frame < 250 and chunk.events[0].direction == "in"
    write_recording(path, chunk.frames, chunk.timestamps, fps=10.0,
                    events=[(e.frame, e.time, e.direction) for e in chunk.events])
    return path


def _expected_final_light(events, off_delay, end_time):
    if not events:
        return None
    last = events[-1]
    return last["occupancy"] > 0 or end_time - last["time"] < off_delay


def _run_with_bridge(path, bridge, tmp_path, fault, *, off_delay=1.0):
    events_file = tmp_path / "events.jsonl"
    lines = _Lines()
    threading.Thread(target=fault, daemon=True).start()
    stats = run_session(RunOptions(sensor_spec=f"replay:{path}", speed=10.0, lights_kind="hue", bridge=bridge.host,
                                   light_names=("Hall",), off_delay=off_delay, events_out=str(events_file),
                                   dashboard=False), out=lines)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    return stats, events, lines.lines


def _converges(bridge, wanted, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if bridge.is_on("1") == wanted:
            return True
        time.sleep(0.05)
    return False


BRIDGE_FAULTS = {
    "refused": lambda bridge: bridge.go_down(2.5),
    "error-arrays": lambda bridge: bridge.fail(seconds=2.5),
    "non-json": lambda bridge: bridge.garbage(seconds=2.5),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(BRIDGE_FAULTS))
def test_bridge_faults_during_run_never_stall_the_loop_and_lights_converge(crossings, tmp_path, kind):
    from thermalcount.store import open_recording

    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())

        def fault():
            time.sleep(0.5)
            BRIDGE_FAULTS[kind](bridge)

        stats, events, lines = _run_with_bridge(crossings, bridge, tmp_path, fault)
        assert stats.stopped_by == "end-of-stream" and stats.frames == 600
        # The frame period is 10 ms; the loop never waited on the bridge.
        assert stats.max_frame_gap < 0.1, stats.max_frame_gap
        with open_recording(crossings) as recording:
            end = float(recording.timestamps()[-1])
        wanted = _expected_final_light(events, 1.0, end)
        assert wanted is not None
        assert _converges(bridge, wanted), (kind, bridge.is_on("1"), wanted)
        # The outage's own lines (not the light log's "the bridge took it" lines).
        outage_lines = [line for line in lines if "Hue bridge" in line and "counting:" not in line]
        assert 1 <= len(outage_lines) <= 4, outage_lines  # reported once (and its end), not per frame


@pytest.mark.slow
def test_revoked_key_during_run_is_reported_once_and_counting_goes_on(crossings, tmp_path):
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        key = bridge.create_key()
        save_hue_key(bridge.host, key)

        def revoke():
            time.sleep(0.5)
            bridge.revoke(key)

        stats, events, lines = _run_with_bridge(crossings, bridge, tmp_path, revoke)
        assert stats.frames == 600 and stats.max_frame_gap < 0.1
        from click.testing import CliRunner

        from thermalcount.cli import cli

        offline = json.loads(CliRunner().invoke(cli, ["count", str(crossings), "--json"]).stdout)["events"]
        assert events == offline and events  # counting went on, nothing lost
        rejected = [line for line in lines if "rejected the key" in line]
        assert len(rejected) == 1 and "hue pair" in rejected[0]


@pytest.mark.slow
def test_bridge_unreachable_at_start_counting_starts_and_lights_catch_up(crossings, tmp_path):
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        bridge.go_down()
        started = time.monotonic()
        # Back after 1.2 s: the worker's backoff (0.5 s doubling, at most 10 s) tries again at 1.5 s.
        stats, events, lines = _run_with_bridge(crossings, bridge, tmp_path,
                                                lambda: (time.sleep(1.2), bridge.come_up()))
        assert time.monotonic() - started < 15  # start waited at most a few seconds for the bridge
        assert stats.frames == 600 and stats.max_frame_gap < 0.1 and events
        assert bridge.changes("light"), "the lights caught up once the bridge answered"
        from thermalcount.store import open_recording

        with open_recording(crossings) as recording:
            end = float(recording.timestamps()[-1])
        assert _converges(bridge, _expected_final_light(events, 1.0, end))


# ----------------------------------------------------------------------------------- signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_run_flushes_the_event_log_and_leaves_the_lights_as_they_are(tmp_path, signum):
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        save_hue_key(bridge.host, bridge.create_key())
        events_file = tmp_path / "events.jsonl"
        process = subprocess.Popen(
            [sys.executable, "-m", "thermalcount", "run", "--sensor", "sim", "--scenario", "busy", "--speed", "20",
             "--lights", "hue", "--bridge", bridge.host, "--light", "Hall", "--off-delay", "3600",
             "--events-out", str(events_file), "--no-dashboard"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not bridge.is_on("1"):
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        assert bridge.is_on("1"), "someone came in and the light went on"
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        # A simulated run prefixes the line with "SIMULATED sensor (sim): ".
        summary = [line for line in err.splitlines() if line.startswith("SIMULATED sensor (sim): stopped (signal)")]
        assert len(summary) == 1 and "Traceback" not in err
        logged = [json.loads(line) for line in events_file.read_text().splitlines()]  # every line complete
        counted = int(summary[0].split(" in,")[0].rsplit(" ", 1)[1]) + int(summary[0].split(" out,")[0].rsplit(" ", 1)[1])
        assert len(logged) == counted  # the log holds every event the summary counted
        # Documented: the lights are left as they are (no "off" on the way out).
        assert bridge.is_on("1") and bridge.changes("light")[-1].state["on"] is True
