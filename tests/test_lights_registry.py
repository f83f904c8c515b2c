"""The lights registry: a light system is one module plus one registry line, and the worker
takes its rate limits from the driver."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from tests import dummy_lights
from thermalcount.cli import cli
from thermalcount.errors import UsageError
from thermalcount.lights import registry
from thermalcount.lights.base import Target
from thermalcount.lights.registry import LightsSettings
from thermalcount.lights.worker import WorkerLights
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.store import write_recording
from tests.light_rule import expected_light_changes


@pytest.fixture
def dummy(monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, "dummy", "tests.dummy_lights")  # the one registry line
    dummy_lights.TOLD.clear()
    return dummy_lights.TOLD


@pytest.fixture(scope="module")
def crossings(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "single.h5"
    chunk = simulate(1500, scenario="single", seed=5)
    write_recording(path, chunk.frames, chunk.timestamps, fps=10.0,
                    events=[(e.frame, e.time, e.direction) for e in chunk.events])
    return path, float(chunk.timestamps[-1])


def test_run_drives_a_light_system_added_by_one_module_and_one_registry_line(dummy, crossings, tmp_path):
    path, end_time = crossings
    events_file = tmp_path / "events.jsonl"
    result = CliRunner().invoke(cli, ["run", "--sensor", f"replay:{path}", "--speed", "max", "--lights", "dummy",
                                      "--off-delay", "4", "--events-out", str(events_file), "--no-dashboard"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert any(event["occupancy"] > 0 for event in events)  # the recording has people in it
    told = [on for on, _ in dummy]
    # The replay's first frame is at time 0 only if the recording says so: compare from the
    # first change on, which is always "on" once someone comes in.
    expected = expected_light_changes(events, 4.0, end_time, empty_from_start=True)
    assert told[told.index(True):] == expected[expected.index(True):]
    assert all(reason for _, reason in dummy)  # every change says why
    assert "lights dummy" in result.stderr


def test_the_command_line_lists_registered_light_systems(dummy):
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert re.search(r"--lights \[hue\|console\|none\|dummy\]", result.output), result.output


def test_targets_are_refused_for_a_system_without_them(dummy):
    with pytest.raises(UsageError, match="--bridge, --light and --group need --lights hue"):
        registry.open_lights(LightsSettings(kind="dummy", names=("Hall",)))


class _Driver:
    """A driver with its own kind of target and its own rate limit."""

    description = "test strip"
    min_interval = {"strip": 0.05}

    def __init__(self):
        self.sent = []  # (monotonic time, on)

    def resolve(self):
        return [Target("strip", "1", "shelf")]

    def send(self, target, on):
        self.sent.append((time.monotonic(), on))

    def check(self, targets):
        pass

    def describe(self, error):
        return str(error)


def test_the_worker_spaces_commands_by_the_drivers_own_limit():
    driver = _Driver()
    lights = WorkerLights(driver, backend="strip", check_interval=None).start()
    try:
        for on in (True, False, True, False):
            lights.set_on(on)
            assert lights.wait_in_sync(timeout=10)
        # Each change waited until the driver's interval had passed since the last answer.
        gaps = [b - a for (a, _), (b, _) in zip(driver.sent, driver.sent[1:])]
        assert [on for _, on in driver.sent] == [True, False, True, False]
        assert all(gap >= 0.05 for gap in gaps), gaps
    finally:
        lights.close()


@pytest.mark.parametrize("kind", ["none", "console"])
def test_run_refuses_hue_targets_for_a_system_without_them(kind):
    # --lights none used to drop --light silently; every back-end without targets refuses them.
    result = CliRunner().invoke(cli, ["run", "--sensor", "sim", "--lights", kind, "--light", "Hall", "--no-dashboard"])
    assert result.exit_code == 2, result.output
    assert "--bridge, --light and --group need --lights hue" in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
