"""`thermalcount run` end to end: real sensors (sim, replay, emulated through smbus2), the
embedded model, the real phue client against the fake bridge over HTTP, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import modules_loaded_by
from thermalcount.cli import cli
from thermalcount.config import save_hue_key
from thermalcount.app.run import CountingOptions, OutputOptions, RunOptions, SensorOptions, run_session
from thermalcount.lights.registry import LightsSettings
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.store import write_recording
from thermalcount.testing.fake_hue import FakeHueBridge
from thermalcount.model.travel_axis import TRANSPOSE
from tests.light_rule import expected_light_changes


@pytest.fixture(scope="module")
def single_crossings(tmp_path_factory):
    """A recording of people crossing one at a time, well apart: counting it is exact."""
    path = tmp_path_factory.mktemp("rec") / "single.h5"
    chunk = simulate(3000, scenario="single", seed=11)
    write_recording(path, chunk.frames, chunk.timestamps, fps=10.0,
                    events=[(e.frame, e.time, e.direction) for e in chunk.events])
    return path, chunk


def _read_events(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_run_replay_matches_offline_count(single_crossings, tmp_path):
    path, chunk = single_crossings
    events_file = tmp_path / "events.jsonl"
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--sensor", f"replay:{path}", "--speed", "max", "--lights", "none",
                                 "--events-out", str(events_file), "--no-dashboard"])
    assert result.exit_code == 0, result.output
    live = _read_events(events_file)
    offline = runner.invoke(cli, ["count", str(path), "--json"])
    assert offline.exit_code == 0, offline.output
    counted = json.loads(offline.stdout)["events"]
    assert live == counted
    assert len(live) >= len(chunk.events) // 2  # it does count (accuracy is tests/test_accuracy.py's job)
    assert all(set(e) == {"frame", "time", "direction", "occupancy"} for e in live)


def test_run_event_log_appends_across_restarts(single_crossings, tmp_path):
    path, _ = single_crossings
    events_file = tmp_path / "events.jsonl"
    events_file.write_text('{"frame": 0, "time": 0.0, "direction": "in", "occupancy": 1}\n')
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{path}", speed=None),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=open(os.devnull, "w"))
    logged = _read_events(events_file)
    assert logged[0] == {"frame": 0, "time": 0.0, "direction": "in", "occupancy": 1}
    assert len(logged) == 1 + stats.entries + stats.exits


@pytest.mark.slow
def test_run_drives_hue_lights_through_a_hanging_bridge(single_crossings, tmp_path):
    """Lights follow occupancy via the real phue client; a 12 s hang (longer than phue's 10 s
    timeout) neither stalls the frame loop nor loses the count, and the lights converge."""
    path, chunk = single_crossings
    events_file = tmp_path / "events.jsonl"
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        key = bridge.create_key()
        save_hue_key(bridge.host, key)
        speed = 16.0  # 160 frames/s: 3000 frames in ~19 s of wall time, long enough for the hang
        hang_started = threading.Event()

        def hang_soon():
            time.sleep(1.0)
            bridge.hang(12.0)
            hang_started.set()

        threading.Thread(target=hang_soon, daemon=True).start()
        stats = run_session(
            RunOptions(sensor=SensorOptions(spec=f"replay:{path}", speed=speed),
                       lights=LightsSettings(kind="hue", bridge=bridge.host, names=("Hall",), off_delay=5.0),
                       output=OutputOptions(events_out=str(events_file), dashboard=False)),
            out=open(os.devnull, "w"),
        )
        assert hang_started.is_set()
        # The frame loop never waited on the bridge: no gap longer than the sensor's real
        # 100 ms frame period (a phue call blocks for up to 10 s).
        print(f"longest frame-loop gap while the bridge hung: {stats.max_frame_gap * 1e3:.1f} ms")
        assert stats.max_frame_gap < 0.1, stats.max_frame_gap
        events = _read_events(events_file)
        # The hang cost no count: the live events are exactly what offline counting finds.
        offline = CliRunner().invoke(cli, ["count", str(path), "--json"])
        assert events == json.loads(offline.stdout)["events"]

        expected = expected_light_changes(events, 5.0, float(chunk.timestamps[-1]))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and bridge.is_on("1") != expected[-1]:
            time.sleep(0.2)
        assert bridge.is_on("1") == expected[-1]
        sent = [change.state["on"] for change in bridge.changes("light")]
        # Only changes are sent; during the hang intermediate states may be coalesced away,
        # so what reached the bridge is the expected sequence with some pairs skipped.
        assert sent == [s for i, s in enumerate(sent) if i == 0 or sent[i - 1] != s]
        assert True in sent and sent[-1] == expected[-1]
        assert len(sent) <= len(expected) + 1  # + the initial "off" of an empty room


def test_run_hue_unknown_light_is_a_setup_error(tmp_path):
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        result = CliRunner().invoke(cli, ["run", "--sensor", "sim", "--lights", "hue", "--bridge", bridge.host,
                                          "--light", "Kitchen", "--no-dashboard", "--duration", "1s"])
    assert result.exit_code != 0
    assert "Kitchen" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_run_bad_model_is_a_setup_error(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not an onnx file at all")
    before = bogus.read_bytes()
    result = CliRunner().invoke(cli, ["run", "--sensor", "sim", "--model", str(bogus), "--no-dashboard", "--duration", "1s"])
    assert result.exit_code != 0
    assert result.output.startswith("Error:") and "Traceback" not in result.output
    assert bogus.read_bytes() == before


@pytest.mark.slow
def test_run_survives_i2c_faults_on_the_emulated_sensor(tmp_path):
    """Errors on 5 % of transfers and a 3 s disconnect: the loop keeps counting."""
    lines = []

    class Collect:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    stats = run_session(
        RunOptions(sensor=SensorOptions(spec="emulated", speed=None, faults="errno=5:0.05,disconnect=3s@20s",
                                        seed=3, bus=41),
                   lights=LightsSettings(kind="none"),
                   output=OutputOptions(dashboard=False, max_frames=1500)),
        out=Collect(),
    )
    assert stats.frames == 1500
    assert stats.sensor_errors > 0
    text = "".join(lines)
    assert "sensor problem" in text and "sensor recovered" in text
    # Said once per outage, not per failed read.
    assert text.count("sensor problem") < stats.sensor_errors


@pytest.mark.slow
def test_run_stops_cleanly_on_sigterm(tmp_path):
    events_file = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "thermalcount", "run", "--sensor", "sim", "--scenario", "busy", "--speed", "20",
         "--lights", "console", "--events-out", str(events_file), "--no-dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(4)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped (signal)" in err
    lines = events_file.read_text().splitlines()
    assert lines  # a busy doorway for 80 simulated seconds has events
    for line in lines:
        json.loads(line)  # every line complete


def test_run_never_imports_training_stack(single_crossings):
    path, _ = single_crossings
    code = (
        "import sys, os\n"
        "from thermalcount.app.run import OutputOptions, RunOptions, SensorOptions, run_session\n"
        "from thermalcount.lights.registry import LightsSettings\n"
        f"run_session(RunOptions(sensor=SensorOptions(spec='replay:{path}', speed=None), "
        "lights=LightsSettings(kind='console'), output=OutputOptions(dashboard=False)), out=open(os.devnull, 'w'))\n"
    )
    assert modules_loaded_by(code) == []


@pytest.mark.slow
def test_emulated_sensor_at_max_speed_counts_in_sensor_time(tmp_path):
    """At --speed max the emulated device's time (not the wall clock) stamps the frames, so
    the counter and --duration see the same 10 FPS stream as the simulator."""
    runner = CliRunner()
    results = {}
    for sensor in ("sim", "emulated"):
        events_file = tmp_path / f"{sensor}.jsonl"
        result = runner.invoke(cli, ["run", "--sensor", sensor, "--seed", "4", "--speed", "max", "--duration", "5m",
                                     "--lights", "none", "--no-dashboard", "--events-out", str(events_file)])
        assert result.exit_code == 0, result.output
        assert "3000 frames" in result.output  # 5 minutes at 10 FPS: frames 0..2999
        results[sensor] = [(e["frame"], e["direction"]) for e in _read_events(events_file)]
    # The driver discards its settling frames, so the emulated stream starts a frame or two
    # into the same scene; otherwise the same people are counted at the same moments.
    emulated, simulated = results["emulated"], results["sim"]
    assert emulated and [d for _, d in emulated] == [d for _, d in simulated][:len(emulated)]
    assert len(emulated) >= len(simulated) - 1
    assert all(abs(a - b) <= 3 for (a, _), (b, _) in zip(emulated, simulated))


def test_run_starts_with_the_given_occupancy(single_crossings, tmp_path):
    path, _ = single_crossings
    events_file = tmp_path / "events.jsonl"
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{path}", speed=None),
                                   counting=CountingOptions(occupancy=5),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=open(os.devnull, "w"))
    events = _read_events(events_file)
    first = events[0]
    assert first["occupancy"] == 5 + (1 if first["direction"] == "in" else -1)
    assert stats.occupancy == 5 + stats.entries - stats.exits


def test_run_command_passes_occupancy(single_crossings):
    # Through the CLI, not run_session: the options must reach the session.
    import re

    path, _ = single_crossings
    result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{path}", "--speed", "max", "--lights", "none",
                                      "--occupancy", "5", "--no-dashboard"])
    assert result.exit_code == 0, result.output
    entries, exits, occupancy = map(int, re.search(r"(\d+) in, (\d+) out, occupancy (\d+)", result.stderr).groups())
    assert occupancy == 5 + entries - exits


@pytest.mark.parametrize("config_text, option, delay", [
    ("[lights]\noff_delay = 0\n", [], "0"),  # 0 in the config means 0, not the default
    ("[hue]\noff_delay = 7\n", [], "7"),  # the old place is still read
    ("[lights]\noff_delay = 7\n", ["--off-delay", "3"], "3"),  # the option wins
    ("", [], "30"),
])
def test_run_takes_the_off_delay_from_the_option_then_config_toml(single_crossings, config_text, option, delay):
    from thermalcount.config import config_path

    path, _ = single_crossings
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(config_text)
    result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{path}", "--speed", "max", "--lights", "console",
                                      "--no-dashboard", *option])
    assert result.exit_code == 0, result.output
    # The console lights say why they went off: "off-delay expired (room empty for 7 s)".
    said = set(re.findall(r"room empty for (\S+) s", result.stdout))
    assert said == {delay}, result.stdout

def test_run_with_a_training_model_says_export_it(tmp_path):
    model = tmp_path / "door.tcmodel"
    model.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    result = CliRunner().invoke(cli, ["run", "--sensor", "sim", "--model", str(model), "--no-dashboard", "--duration", "1s"])
    assert result.exit_code != 0
    assert "thermalcount export" in result.output and len(result.output.strip().splitlines()) == 1


# ------------------------------------------------------------- the travel axis, found live


@pytest.fixture(scope="module")
def columns_walk(tmp_path_factory):
    """People crossing along the columns: the default model walks along the rows."""
    path = tmp_path_factory.mktemp("columns") / "columns.h5"
    chunk = simulate(6000, scenario="single", seed=11, travel_axis="columns")
    write_recording(path, chunk.frames, chunk.timestamps, fps=10.0,
                    events=[(e.frame, e.time, e.direction) for e in chunk.events])
    return path


def _count_events(path, *options):
    result = CliRunner().invoke(cli, ["count", str(path), "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["events"]


@pytest.mark.slow
def test_run_finds_the_axis_says_so_and_recounts_what_came_before(columns_walk, tmp_path):
    from rich.console import Console

    from thermalcount.app.dashboard import render_dashboard

    events_file = tmp_path / "events.jsonl"
    log, loops = [], []
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{columns_walk}", speed=None),
                                   counting=CountingOptions(orientation="auto"),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=_Lines(log), on_loop=loops.append)
    found = [line for line in log if "travel axis: columns (found from the frames" in line]
    assert len(found) == 1 and "re-counted" in found[0], log
    assert stats.axis.found == "columns" and stats.axis.orientation == TRANSPOSE
    live = _read_events(events_file)
    # Every crossing once: the log holds what the counter counted, and what count finds.
    assert len(live) == stats.entries + stats.exits
    assert live == _count_events(columns_walk)
    assert len(live) >= 10
    # The dashboard says it too.
    console = Console(width=120, record=True)
    console.print(render_dashboard(loops[0]))
    text = console.export_text()
    assert "travel axis" in text and "transposed to the model's rows" in text


def test_run_with_an_orientation_does_not_look(columns_walk, tmp_path):
    events_file = tmp_path / "events.jsonl"
    log = []
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{columns_walk}", speed=None),
                                   counting=CountingOptions(orientation="rotate=90,mirror=horizontal"),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=_Lines(log))
    assert stats.axis is None and not any("travel axis:" in line for line in log)
    assert _read_events(events_file) == _count_events(columns_walk)


def test_run_finds_the_models_own_axis_and_keeps_its_count(single_crossings, tmp_path):
    path, _ = single_crossings
    events_file = tmp_path / "events.jsonl"
    log = []
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{path}", speed=None),
                                   counting=CountingOptions(orientation="auto"),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=_Lines(log))
    assert stats.axis.found == "rows" and stats.axis.orientation.is_identity
    assert any("travel axis: rows (found from the frames" in line and "stand" in line for line in log)
    assert _read_events(events_file) == _count_events(path, "--orientation", "none")


def test_run_decides_late_and_counts_each_crossing_once(tmp_path, monkeypatch):
    """Three empty minutes, then people along the columns; the watch keeps one minute of
    frames. Crossings older than that when the axis is found stay as the model counted them
    along its rows; the rest are re-counted; none twice."""
    import re

    from thermalcount.runtime import axis_watch

    monkeypatch.setattr(axis_watch, "BUFFER_SECONDS", 60.0)
    empty = simulate(1800, scenario="empty", seed=3)
    people = simulate(6000, scenario="single", seed=11, travel_axis="columns")
    frames = np.concatenate([empty.frames, people.frames])
    times = 1_700_000_000.0 + np.arange(len(frames)) / 10.0
    path = tmp_path / "late.h5"
    write_recording(path, frames, times, fps=10.0,
                    events=[(e.frame + 1800, None, e.direction) for e in people.events])
    events_file = tmp_path / "events.jsonl"
    log = []
    stats = run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{path}", speed=None),
                                   counting=CountingOptions(orientation="auto"),
                                   lights=LightsSettings(kind="none"),
                                   output=OutputOptions(events_out=str(events_file), dashboard=False)),
                        out=_Lines(log))
    assert stats.axis.found == "columns", log
    notice = next(line for line in log if "re-counted" in line)
    kept = int(re.search(r"the last (\d+) frames re-counted", notice).group(1))
    decided = 10 * int(re.search(r"after (\d+) s of frames", notice).group(1))
    assert kept <= 700 and decided > 1800 + kept  # the buffer was cut before the decision
    live = _read_events(events_file)
    assert len(live) == stats.entries + stats.exits
    assert len({e["frame"] for e in live}) == len(live)
    window = decided - kept
    turned = [e for e in _count_events(path, "--orientation", "rotate=90,mirror=horizontal")
              if e["frame"] >= window + 50]
    # After the cut: as counted with the frames turned, give or take a frame (the re-count's
    # per-pixel background starts at the cut, count's at frame 0).
    after = [e for e in live if e["frame"] >= window + 50]
    assert [e["direction"] for e in after] == [e["direction"] for e in turned] and turned
    assert all(abs(a["frame"] - b["frame"]) <= 5 for a, b in zip(after, turned))
    as_stored = [(e["frame"], e["direction"]) for e in _count_events(path, "--orientation", "none")
                 if e["frame"] < window - 50]
    assert [(e["frame"], e["direction"]) for e in live if e["frame"] < window - 50] == as_stored


class _Lines:
    """A text stream that keeps the log lines."""

    def __init__(self, lines):
        self.lines = lines

    def write(self, text):
        self.lines.extend(line for line in text.splitlines() if line.strip())

    def flush(self):
        pass

    def isatty(self):
        return False
