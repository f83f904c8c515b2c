"""Lights you can audit afterwards (issue 15.5): every switch is logged with its time, what was
switched, why, and whether the bridge took it; an outage is reported whole; the dashboard's
notices collapse repeats and keep outages in view.

Real phue against the fake bridge over HTTP on 127.0.0.1; the runs read a recording made by
the simulator, so what the lights should do is known.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.config import save_hue_key
from thermalcount.lights import open_lights
from thermalcount.app.run import OutputOptions, RunOptions, SensorOptions, run_session
from thermalcount.lights.registry import LightsSettings
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.store import write_recording
from thermalcount.testing.fake_hue import FakeHueBridge

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
# "lights on: light 'Hall' (1); why: occupancy 1; the bridge took it"
TOOK = re.compile(r"lights (on|off): light 'Hall' \(1\); why: (.+); the bridge took it$")
REASON = re.compile(r"^(occupancy \d+|off-delay expired \(room empty for 1 s\))"
                    r"(, sent once the bridge answered again)?$|^re-applied after an outage$")


@pytest.fixture(scope="module")
def crossings(tmp_path_factory):
    """60 s of single crossings (the recording of tests/test_faults_live.py: seed 13's first
    entry, frame 113, falls inside a bridge outage that starts 0.5 s into a speed-10 replay)."""
    path = tmp_path_factory.mktemp("rec") / "single.h5"
    chunk = simulate(600, scenario="single", seed=13)
    write_recording(path, chunk.frames, chunk.timestamps, fps=10.0,
                    events=[(e.frame, e.time, e.direction) for e in chunk.events])
    return path


def _took(lines):
    return [(match.group(1) == "on", match.group(2)) for match in map(TOOK.search, lines) if match]


def _bridge_states(bridge):
    return [change.state["on"] for change in bridge.changes("light")]


# -- console lights ------------------------------------------------------------------------------


def test_console_lights_print_date_time_and_why():
    import io

    stream = io.StringIO()
    with open_lights("console", stream=stream) as lights:
        lights.set_on(True, reason="occupancy 1")
        lights.set_on(False, reason="off-delay expired (room empty for 30 s)")
    lines = stream.getvalue().splitlines()
    assert [STAMP.sub("", line) for line in lines if STAMP.match(line)] == [
        "lights on (occupancy 1)", "lights off (off-delay expired (room empty for 30 s))"]


def test_run_with_console_lights_stamps_every_switch(crossings):
    result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{crossings}", "--speed", "max", "--lights", "console",
                                      "--off-delay", "1", "--no-dashboard"])
    assert result.exit_code == 0, result.output
    switches = result.stdout.splitlines()
    assert len(switches) >= 2, switches  # off at the start (empty room), on for the first entry
    for line in switches:
        assert STAMP.match(line) and re.fullmatch(r"lights (on|off) \((.+)\)", STAMP.sub("", line)), line
        assert REASON.match(re.fullmatch(r"lights (?:on|off) \((.+)\)", STAMP.sub("", line)).group(1)), line


# -- Hue through `run --no-dashboard`: the journal says every switch --------------------------------


def test_plain_log_of_run_records_every_hue_switch(crossings):
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{crossings}", "--speed", "max",
                                          "--lights", "hue", "--bridge", bridge.host, "--light", "Hall",
                                          "--off-delay", "1", "--no-dashboard"])
        assert result.exit_code == 0, result.output
        reached = _bridge_states(bridge)
    log_lines = [line for line in result.stderr.splitlines() if not line.startswith("stopped")]
    assert log_lines and all(STAMP.match(line) for line in log_lines), log_lines
    took = _took(log_lines)
    # Every command the bridge accepted is in the log, in order, and nothing else claims to be.
    assert [on for on, _ in took] == reached and reached, (took, reached)
    assert all(REASON.match(why) for _, why in took), took


@pytest.mark.slow  # a 6 s replay at speed 10 around a 2.5 s outage
def test_an_outage_in_run_is_logged_whole_and_the_switches_after_it_say_why(crossings, tmp_path):
    class Lines:
        def __init__(self):
            self.lines = []

        def write(self, text):
            self.lines += [line for line in text.splitlines() if line]

        def flush(self):
            pass

    loops = []
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        out = Lines()

        def started(loop):  # the lights are open: the bridge goes away 0.5 s into the replay
            loops.append(loop)
            threading.Timer(0.5, bridge.go_down, args=(2.5,)).start()

        run_session(RunOptions(sensor=SensorOptions(spec=f"replay:{crossings}", speed=10.0),
                               lights=LightsSettings(kind="hue", bridge=bridge.host, names=("Hall",), off_delay=1.0),
                               output=OutputOptions(dashboard=False)), out=out, on_loop=started)
        reached = _bridge_states(bridge)
    lines = [STAMP.sub("", line) for line in out.lines if STAMP.match(line)]
    assert len(lines) == len(out.lines)  # every line has its time
    down = [i for i, line in enumerate(lines) if "connection refused" in line]
    back = [i for i, line in enumerate(lines) if re.search(r"answers again after \d+ s \(since the first failed "
                                                            r"request at \d\d:\d\d:\d\d\); lights re-applied", line)]
    assert len(down) == 1 and len(back) == 1 and down[0] < back[0], lines
    # The entry that fell into the outage is said, and said again when the bridge took it.
    not_taken = [line for line in lines[down[0]:back[0]] if "NOT taken yet" in line]
    assert not_taken and "why: occupancy 1" in not_taken[0], lines
    took = _took(lines)
    assert [on for on, _ in took] == reached, (took, reached)
    assert all(REASON.match(why) for _, why in took), took
    assert any("sent once the bridge answered again" in why for _, why in took), took
    # The dashboard's four notice lines still show the outage's end after all the switches.
    assert any("answers again" in line for line in loops[0].snapshot.notices.lines(4))


# -- the worker itself: re-applied after an outage, and how long an outage lasted ------------------


def _wait_until(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _worker_lines(caplog):
    return [record.getMessage() for record in caplog.records if record.name == "thermalcount.lights.worker"]


def test_a_quiet_outage_is_followed_by_re_applied_lines(caplog):
    caplog.set_level(logging.INFO)
    with FakeHueBridge(lights={"1": "Hall", "2": "Desk"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        lights = open_lights("hue", bridge=bridge.host, lights=["Hall", "Desk"], check_interval=0.2,
                             backoff_max=0.2)
        lights.set_on(True, reason="occupancy 1")
        assert lights.wait_in_sync(5)
        bridge.go_down()
        assert _wait_until(lambda: lights.status().error is not None)  # the idle check saw it
        bridge.come_up()
        assert lights.wait_in_sync(5), lights.status()
        lights.close()
    lines = _worker_lines(caplog)
    expected = [f"lights on: light {name}; why: {why}; the bridge took it"
                for why in ("occupancy 1", "re-applied after an outage") for name in ("'Hall' (1)", "'Desk' (2)")]
    assert [line for line in lines if "the bridge took it" in line] == expected, lines
    assert "answers again" in lines[-1]


@pytest.mark.slow  # waits out a 3 s bridge hang
def test_a_hang_is_reported_from_the_first_failed_request_to_the_first_good_one(caplog):
    caplog.set_level(logging.INFO)
    with FakeHueBridge(lights={"1": "Hall"}) as bridge:
        save_hue_key(bridge.host, bridge.create_key())
        lights = open_lights("hue", bridge=bridge.host, lights=["Hall"], check_interval=None)
        lights.set_on(True, reason="occupancy 1")
        assert lights.wait_in_sync(5)
        bridge.hang(3)
        lights.set_on(False, reason="off-delay expired (room empty for 1 s)")
        assert _wait_until(lambda: lights.status().error is not None)
        assert lights.wait_in_sync(10), lights.status()
        lights.close()
        puts = [when for when, method, path in bridge.requests if method == "PUT"]
    lines = _worker_lines(caplog)
    back = [line for line in lines if "answers again" in line]
    assert len(back) == 1, lines
    reported = int(re.search(r"answers again after (\d+) s", back[0]).group(1))
    # The bridge saw the hung command and, after it, the good one: the outage spans both
    # (the old report started when phue gave up, and said 0 or 1 s here).
    hung, good = puts[-2], puts[-1]
    assert reported >= good - hung - 1, (reported, good - hung, lines)
    assert lines.index(back[0]) > lines.index(
        "lights off: light 'Hall' (1); why: off-delay expired (room empty for 1 s), sent once the bridge answered "
        "again; the bridge took it")


# -- the dashboard's notices -------------------------------------------------------------------------


def test_repeated_notices_collapse_and_outages_stay_in_view():
    from rich.console import Console

    from thermalcount.app.dashboard import render_dashboard
    from thermalcount.runtime.live import LiveSnapshot

    snapshot = LiveSnapshot()
    snapshot.notices.append("Hue bridge 127.0.0.1:8000: connection refused (retrying in the background)",
                            warning=True)
    for frame in range(100, 1200, 100):  # 11 times, as in 5 simulated minutes of issue 15
        snapshot.notices.append(f"exit at frame {frame} with occupancy already 0; occupancy stays 0")
    for n in range(6):
        snapshot.notices.append(f"lights {'on' if n % 2 else 'off'}: group 'Living room' (1); why: occupancy {n}; "
                                "the bridge took it")
    snapshot.notices.append("exit at frame 1300 with occupancy already 0; occupancy stays 0")
    console = Console(record=True, width=200)
    console.print(render_dashboard(SimpleNamespace(snapshot=snapshot)))
    shown = console.export_text()
    exits = [line for line in shown.splitlines() if "exit at frame" in line]
    assert len(exits) == 1 and "exit at frame 1300" in exits[0] and "(x12)" in exits[0], shown
    assert "connection refused" in shown, shown  # the outage was not pushed out by info lines
    lines = snapshot.notices.lines(4)
    assert len(lines) == 4 and all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines), lines
