"""``thermalcount simulate`` writes the simulator's stream and ground truth through the store."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from thermalcount.cli import cli
from thermalcount.errors import OutputPathError
from thermalcount.sensors.sim.simulator import simulate, write_simulation
from thermalcount.store import open_recording


def run(*args):
    return CliRunner().invoke(cli, ["simulate", *args])


def test_writes_frames_and_ground_truth_identical_to_the_library(tmp_path):
    out = tmp_path / "sim.h5"
    result = run("--out", str(out), "--frames", "5000", "--scenario", "busy", "--seed", "4")
    assert result.exit_code == 0, result.output
    expected = simulate(5000, "busy", seed=4)
    with open_recording(out) as rec:
        assert rec.n_frames == 5000 and rec.fps == 10.0
        np.testing.assert_array_equal(rec.read(), expected.frames)
        np.testing.assert_array_equal(rec.timestamps(), expected.timestamps)
        np.testing.assert_array_equal(rec.thermistor(), expected.thermistor)
        assert [(e.frame, e.direction) for e in rec.events] == [(e.frame, e.direction) for e in expected.events]
        assert [e.time for e in rec.events] == pytest.approx([e.time for e in expected.events])
        attrs = rec.attrs
    assert attrs["sensor"] == "sim" and attrs["scenario"] == "busy" and attrs["seed"] == 4
    assert attrs["travel_axis"] == "rows" and attrs["reverse"] in (False, 0)
    n_in = sum(e.direction == "in" for e in expected.events)
    n_out = len(expected.events) - n_in
    assert "5,000 frames" in result.output and f"({n_in:,} in, {n_out:,} out)" in result.output
    assert "frames/s" in result.output and len(result.output.strip().splitlines()) == 1


def test_duration_fps_axis_reverse_room_and_ambient_reach_the_file(tmp_path):
    out = tmp_path / "slow.h5"
    result = run("--out", str(out), "--duration", "5m", "--fps", "1", "--travel-axis", "columns",
                 "--reverse", "--room", "7", "--ambient", "26", "--scenario", "single", "--seed", "2")
    assert result.exit_code == 0, result.output
    expected = simulate(300, "single", seed=2, fps=1, travel_axis="columns", reverse=True, room=7, ambient=26.0)
    with open_recording(out) as rec:
        assert rec.n_frames == 300 and rec.fps == 1.0
        assert rec.attrs["travel_axis"] == "columns" and rec.attrs["reverse"] in (True, 1)
        assert rec.attrs["room"] == 7
        np.testing.assert_array_equal(rec.read(), expected.frames)
        assert 24.0 < float(np.median(rec.read())) < 28.0


def test_default_duration_is_ten_minutes(tmp_path):
    out = tmp_path / "default.h5"
    assert run("--out", str(out), "--scenario", "empty").exit_code == 0
    with open_recording(out) as rec:
        assert rec.n_frames == 6000 and rec.events == []


def test_chunked_writing_matches_one_piece(tmp_path):
    write_simulation(tmp_path / "a.h5", 3000, "mixed", seed=1, chunk_frames=1000)
    write_simulation(tmp_path / "b.h5", 3000, "mixed", seed=1, chunk_frames=65536)
    with open_recording(tmp_path / "a.h5") as a, open_recording(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.events == b.events


def test_existing_file_is_kept_without_overwrite_and_replaced_with_it(tmp_path):
    out = tmp_path / "keep.h5"
    assert run("--out", str(out), "--frames", "100", "--scenario", "empty").exit_code == 0
    before = out.read_bytes()
    result = run("--out", str(out), "--frames", "200")
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_bytes() == before
    with pytest.raises(OutputPathError):
        write_simulation(out, 10)
    assert run("--out", str(out), "--frames", "200", "--overwrite").exit_code == 0
    with open_recording(out) as rec:
        assert rec.n_frames == 200


@pytest.mark.parametrize("args,words", [
    (["--scenario", "crowded"], ["crowded", "busy"]),
    (["--fps", "5"], ["5", "10"]),
    (["--travel-axis", "diagonal"], ["rows", "columns"]),
    (["--frames", "10", "--duration", "1m"], ["--duration", "--frames"]),
    (["--frames", "-3"], ["-3"]),
])
def test_bad_options_fail_with_one_line_and_write_nothing(tmp_path, args, words):
    out = tmp_path / "bad.h5"
    result = run("--out", str(out), *args)
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and all(w in error_lines[0] for w in words), result.output
    assert not out.exists()


def test_out_is_required_unless_listing(tmp_path):
    result = run("--frames", "10")
    assert result.exit_code == 2 and "--out" in result.output


def test_list_scenarios_names_every_scenario():
    result = run("--list-scenarios")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert {"single", "following", "passing", "lingering", "turnback", "low_contrast", "warm_room",
            "drift", "warm_object", "busy", "mixed", "empty"} <= set(names)
