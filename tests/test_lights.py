"""The light policy (pure, synthetic times) and the none/console back-ends."""

from __future__ import annotations

import io

import pytest

from thermalcount.errors import LightsError
from thermalcount.lights import LightPolicy, open_lights


def run_policy(policy, samples):
    """samples: (time, occupancy) -> list of (time, change) where something changed."""
    out = []
    for t, occupancy in samples:
        change = policy.update(t, occupancy)
        if change is not None:
            out.append((t, change))
    return out


def test_on_at_first_entry_off_one_delay_after_empty():
    policy = LightPolicy(off_delay=30)
    samples = [(t / 10, 0) for t in range(0, 50)] + [(5 + t / 10, 1) for t in range(100)]
    samples += [(15 + t / 10, 0) for t in range(400)]
    # Empty from 0 s: off at 30 s would come after the entry at 5 s, so the first change is on.
    assert run_policy(policy, samples) == [(5.0, True), (45.0, False)]


def test_flicker_at_the_door_does_not_toggle():
    policy = LightPolicy(off_delay=10)
    occupancy = [1] * 10 + [0, 1, 0, 0, 1, 0, 1] * 5 + [1] * 10
    changes = run_policy(policy, [(i * 0.1, n) for i, n in enumerate(occupancy)])
    assert changes == [(0.0, True)]
    assert policy.desired is True


def test_start_empty_turns_off_after_delay():
    policy = LightPolicy(off_delay=2)
    assert run_policy(policy, [(100 + i * 0.5, 0) for i in range(10)]) == [(102.0, False)]
    assert policy.off_due() is None


def test_zero_delay_and_countdown():
    policy = LightPolicy(off_delay=0)
    assert run_policy(policy, [(0, 2), (1, 0), (2, 0)]) == [(0, True), (1, False)]
    waiting = LightPolicy(off_delay=5)
    waiting.update(0, 1)
    waiting.update(3, 0)
    assert waiting.off_due() == 8
    waiting.update(4, 1)
    assert waiting.off_due() is None


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_bad_delay_rejected(bad):
    with pytest.raises(ValueError):
        LightPolicy(off_delay=bad)


def test_none_backend_counts_changes_only():
    lights = open_lights("none")
    for value in (True, True, False, False, True):
        lights.set_on(value)
    status = lights.status()
    assert (status.backend, status.desired, status.applied, status.commands_sent) == ("none", True, True, 3)
    assert status.in_sync and status.error is None
    lights.close()


def test_console_backend_prints_one_line_per_change():
    stream = io.StringIO()
    with open_lights("console", stream=stream) as lights:
        for value in (True, True, True, False, True):
            lights.set_on(value)
        assert lights.status().commands_sent == 3
    lines = stream.getvalue().splitlines()
    # "2026-12-05 21:03:12 lights on": the date and time, as on every log line.
    assert [line.split(" ", 2)[2] for line in lines] == ["lights on", "lights off", "lights on"]


def test_unknown_backend():
    with pytest.raises(LightsError, match="hue, console, none"):
        open_lights("disco")


def test_light_backends_import_no_network_or_training_stack():
    from tests.conftest import modules_loaded_by

    code = (
        "from thermalcount.lights import open_lights\n"
        "open_lights('console').set_on(True); open_lights('none')\n"
    )
    assert modules_loaded_by(code, roots=("phue", "torch", "sklearn")) == []
