"""The realism check: the measurement of thermal-scene figures (by the method of the real
reference recordings) is right on hand-built frames, a default simulated doorway lands on
the real figures, and ``thermalcount simulate --stats`` prints them or fails in one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import modules_loaded_by
from thermalcount.sensors.sim import scene_stats as ss
from thermalcount.cli import cli
from thermalcount.sensors.base import SensorInfo
from thermalcount.sensors.sim.simulator import Simulator, write_simulation
from thermalcount.store import RecordingWriter

# ---------------------------------------------------------------- hand-built scenes

#: Background: 20 °C plus a tilt of 0.1 °C per column (a fixed pattern of known spread).
BACKGROUND = 20.0 + 0.1 * np.tile(np.arange(8.0), (8, 1))
#: One person's rows at positions 0..7 along axis 0, across columns 2..4 (dT °C). At the
#: edges two of three pixels are hot (1.0 is heat but not hot); in the middle all three.
EDGE_ROW = (1.0, 2.0, 2.0)  # heat 5, 2 hot, peak 2
MID_ROW = (3.0, 4.0, 3.0)  # heat 10, 3 hot, peak 4
PEAK_ROW = (3.0, 5.0, 3.0)  # heat 11 at position 4, peak 5


def _walker(n=200, start=100):
    """``n`` frames of an empty room and one walker: position r at frame start + r, r = 0..7."""
    frames = np.repeat(BACKGROUND[None], n, axis=0).astype(np.float32)
    for r in range(8):
        row = PEAK_ROW if r == 4 else MID_ROW if 2 <= r <= 5 else EDGE_ROW
        frames[start + r, r, 2:5] += row
        # Below the heat threshold (0.8): must not pull the centroid towards row 7 - r.
        frames[start + r, 7 - r, 7] += 0.5
    return frames


def test_one_walker_by_hand():
    stats = ss.measure(_walker(), [104], 10.0, "rows")
    assert (stats.crossings, stats.seen, stats.shared) == (1, 1, 0)
    figures = {name: values.tolist() for name, values in stats.per_crossing.items()}
    assert figures == {"max_hot": [3], "median_hot": [2.5], "frames_in_view": [8], "peak_dt": [5.0],
                       "mid_edge_heat": [2.0]}  # mid median 10, edge median 5
    # Mid-view pairs (2,3), (3,4), (4,5): one row per frame each.
    np.testing.assert_allclose(stats.speed, [1.0, 1.0, 1.0], atol=1e-6)
    assert stats.position_frames == (1,) * 8
    np.testing.assert_allclose(stats.by_position["heat"], [5, 5, 10, 10, 11, 10, 5, 5], atol=1e-5)
    assert stats.by_position["hot"] == [2, 2, 3, 3, 3, 3, 2, 2]
    np.testing.assert_allclose(stats.by_position["peak_dt"], [2, 2, 4, 4, 5, 4, 2, 2], atol=1e-5)
    assert stats.percentiles("frames_in_view") == (8, 8, 8)
    scene = stats.scene
    assert scene["in_view"] == pytest.approx(8 / 200)
    assert scene["two_blob"] == 0.0
    assert scene["noise"] == 0.0  # empty frames are identical
    assert scene["fixed_pattern"] == pytest.approx(0.7, abs=1e-5)  # p95 - p5 of the 0..0.7 tilt
    assert scene["quantum"] == pytest.approx(0.1)
    assert scene["background"] == pytest.approx(20.35, abs=1e-5)


def test_travel_along_columns_is_the_transpose():
    frames = _walker()
    by_rows = ss.measure(frames, [104], 10.0, "rows")
    by_columns = ss.measure(frames.transpose(0, 2, 1), [104], 10.0, "columns")
    assert by_columns.to_json()["figures"] == by_rows.to_json()["figures"]
    assert by_columns.by_position == by_rows.by_position
    # Measured along the wrong axis, the walker never leaves columns 2..4: no edge, no ratio.
    wrong = ss.measure(frames, [104], 10.0, "columns")
    assert math.isnan(wrong.per_crossing["mid_edge_heat"][0])
    assert math.isnan(wrong.percentiles("mid_edge_heat")[1])


def test_which_run_belongs_to_a_crossing():
    frames = _walker(n=400, start=100)  # run: frames 100..107
    # Inside the run; 3 s after it; 6 s after its last frame (the edge of the window).
    for event in (100, 107, 137, 167):
        assert ss.measure(frames, [event], 10.0, "rows").seen == 1, event
    for event in (168, 30):  # 6.1 s after the run; 7 s before it
        stats = ss.measure(frames, [event], 10.0, "rows")
        assert stats.seen == 0 and stats.per_crossing["max_hot"].size == 0, event
    # The window scales with the frame rate: 6 s at 1 FPS is 6 frames.
    assert ss.measure(frames, [113], 1.0, "rows").seen == 1
    assert ss.measure(frames, [114], 1.0, "rows").seen == 0


def test_the_nearest_run_wins_and_ties_go_to_the_earlier():
    starts, ends = ss._runs(np.array([False, True, True, False, True]))
    assert starts.tolist() == [1, 4] and ends.tolist() == [3, 5]
    assert ss._runs(np.zeros(0, dtype=bool))[0].size == 0
    # Runs at frames 100..107 and 200..207, a 60-frame window (6 s at 10 FPS).
    run = lambda e: ss._run_for(e, np.array([100, 200]), np.array([108, 208]), 60)  # noqa: E731
    assert run(153) == 0 and run(154) == 1  # 46 frames after the first vs 47 before the second, and back
    assert run(104) == 0 and run(207) == 1 and run(20) is None and run(290) is None
    assert ss._run_for(150, np.array([100, 193]), np.array([108, 208]), 60) == 0  # 43 and 43: a tie
    # Measured: an event between two walkers takes the nearer one's run.
    frames = _walker(n=400, start=100)
    frames[200:208] = _walker(n=400, start=200)[200:208]
    stats = ss.measure(frames, [154], 10.0, "rows")
    assert stats.seen == 1 and stats.per_crossing["frames_in_view"].tolist() == [8]


def test_two_crossings_in_one_run_share_it():
    stats = ss.measure(_walker(), [103, 105], 10.0, "rows")
    assert (stats.crossings, stats.seen, stats.shared) == (2, 2, 2)
    assert stats.per_crossing["frames_in_view"].tolist() == [8, 8]  # each crossing measures its run
    assert stats.position_frames == (1,) * 8  # ...but the run's frames are pooled once
    assert stats.speed.size == 3


def test_blob_counts_use_four_connectivity_and_three_pixels():
    hot = np.zeros((4, 8, 8), dtype=bool)
    hot[0, 0, 0:3] = True  # one blob of 3
    hot[0, 5:8, 5] = True  # another of 3
    hot[1, 0, 0:3] = True  # an L of 3 ...
    hot[1, 1, 3] = True  # ... touches this one only diagonally: separate under 4-connectivity
    hot[1, 2, 3:5] = True  # 3 pixels with the one above
    hot[2, 3, 0:2] = True  # 2 pixels: too small
    hot[2, 6, 0:5] = True  # 5 in a row
    hot[3, 1:7, 1:7] = True  # one big square
    assert ss.blob_counts(hot).tolist() == [2, 2, 1, 1]
    assert ss.blob_counts(hot[:0]).tolist() == []


def test_two_blob_fraction_counts_in_view_frames():
    frames = np.repeat(BACKGROUND[None], 100, axis=0).astype(np.float32)
    frames[10:20, 0, 0:3] += 3.0  # one person, 10 frames
    frames[15:20, 7, 4:8] += 3.0  # a second, apart, in 5 of them
    stats = ss.measure(frames, [], 10.0, "rows")
    assert stats.crossings == 0 and stats.scene["in_view"] == pytest.approx(0.1)
    assert stats.scene["two_blob"] == pytest.approx(0.5)


def test_noise_ignores_drift_and_counts_only_empty_frames():
    rng = np.random.default_rng(5)
    n = 20000
    drift = 3.0 * np.sin(np.arange(n) / n * 2 * np.pi)[:, None, None]  # 6 °C peak to peak
    frames = (21.0 + drift + rng.normal(0, 0.3, (n, 8, 8))).astype(np.float32)
    frames = np.round(frames * 4) / 4  # the sensor's 0.25 °C steps
    stats = ss.measure(frames, [], 10.0, "rows")
    # Quantising at 0.25 adds 0.25 / sqrt(12) in quadrature: sqrt(0.3² + 0.072²) = 0.309.
    assert stats.scene["noise"] == pytest.approx(0.309, abs=0.015)
    assert stats.scene["quantum"] == 0.25


def test_frames_with_nan_are_left_out():
    frames = _walker()
    frames[50] = np.nan
    frames[104, 0, 0] = np.nan  # breaks the walker's run in two: 100..103 and 105..107
    stats = ss.measure(frames, [102], 10.0, "rows")
    assert stats.per_crossing["frames_in_view"].tolist() == [4]
    assert stats.scene["background"] == pytest.approx(20.35, abs=1e-5)
    with pytest.raises(ValueError):
        ss.measure(np.full((5, 8, 8), np.nan), [], 10.0, "rows")
    with pytest.raises(ValueError):
        ss.measure(frames, [], 10.0, "diagonal")


def test_verdicts_compare_the_p50_with_the_real_p10_to_p90():
    stats = ss.measure(_walker(), [104], 10.0, "rows")
    for name, (low, _, high) in ss.REAL_ALL.items():
        for value, expected in ((low, "inside"), (high, "inside"), (low - 0.01, "outside"),
                                (high + 0.01, "outside")):
            stats.per_crossing[name] = np.array([value])
            assert ss.verdicts(stats)[name] == expected, (name, value)
        stats.per_crossing[name] = np.array([])
        assert ss.verdicts(stats)[name] == "not measured"


def test_real_figures_are_the_reference_ones():
    assert ss.REAL_ALL == {"max_hot": (16, 19, 22), "frames_in_view": (34, 47, 89),
                           "peak_dt": (6.0, 7.0, 8.25), "mid_edge_heat": (1.4, 2.3, 3.4)}
    assert ss.REAL_ONE["max_hot"] == (15, 19, 21) and ss.REAL_ONE["speed"] == (0.26, 0.48, 0.68)
    assert ss.REAL_ONE["frames_in_view"] == (35, 42, 79)
    assert ss.REAL_SCENE["noise"] == 0.33 and ss.REAL_SCENE["fixed_pattern"] == 1.5


def test_the_module_needs_only_numpy():
    assert modules_loaded_by("import thermalcount.sensors.sim.scene_stats") == []


# ---------------------------------------------------------------- the simulator against the real figures


def test_a_default_simulated_doorway_lands_on_the_real_figures():
    """Ten minutes of the default (mixed) scene: every p50 inside the real p10..p90."""
    sim = Simulator("mixed", seed=0)
    chunk = sim.generate(6000)
    stats = ss.measure(chunk.frames, [event.frame for event in chunk.events], sim.fps, sim.travel_axis)
    assert stats.seen >= 0.9 * stats.crossings > 0
    verdicts = ss.verdicts(stats)
    report = "; ".join(f"{name} p50 {stats.percentiles(name)[1]:.2f}, real {low}..{high}: {verdicts[name]}"
                       for name, (low, _, high) in ss.REAL_ALL.items())
    assert verdicts == {name: "inside" for name in ss.REAL_ALL}, report


# ---------------------------------------------------------------- the command


def run(*args):
    return CliRunner().invoke(cli, ["simulate", *args])


def test_stats_prints_the_measured_and_the_real_figures():
    result = run("--stats", "--frames", "3000", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "Realism check of simulated mixed, seed 2: 3,000 frames" in result.output
    assert "real, all" in result.output and "16/19/22" in result.output and "34/47/89" in result.output
    assert "6/7/8.25" in result.output and "1.4/2.3/3.4" in result.output
    assert "0.26/0.48/0.68" in result.output  # one person's speed, for display
    assert ("inside" in result.output) or ("outside" in result.output)


def test_stats_of_a_recording_match_the_simulation_it_holds(tmp_path):
    path = tmp_path / "sim.h5"
    write_simulation(path, 3000, "busy", seed=3, travel_axis="columns")
    from_file = run("--stats", "--from", str(path), "--json")
    in_memory = run("--stats", "--frames", "3000", "--scenario", "busy", "--seed", "3",
                    "--travel-axis", "columns", "--json")
    assert from_file.exit_code == 0 and in_memory.exit_code == 0, from_file.output + in_memory.output
    a, b = json.loads(from_file.output), json.loads(in_memory.output)
    assert a["measured"] == b["measured"] and a["measured"]["travel_axis"] == "columns"
    assert a["measured"]["crossings"] > 0 and a["real"]["all"]["max_hot"] == [16, 19, 22]
    assert set(a["verdicts"]) == set(ss.REAL_ALL)
    # The stored travel axis is the truth: a different one is refused.
    result = run("--stats", "--from", str(path), "--travel-axis", "rows")
    assert result.exit_code != 0 and "columns" in result.output


def _recording(path, events=False, travel_axis=None):
    extra = {} if travel_axis is None else {"travel_axis": travel_axis}
    chunk = Simulator("single", seed=1).generate(600)
    with RecordingWriter(path, sensor_info=SensorInfo(sensor="amg8833", fps=10.0, extra=extra)) as writer:
        writer.append_many(chunk.frames, chunk.timestamps)
        if events:
            writer.add_events([e.frame for e in chunk.events], [e.time for e in chunk.events],
                              [e.direction for e in chunk.events])
    return path


def test_a_recording_without_travel_axis_needs_the_option(tmp_path):
    path = _recording(tmp_path / "labelled.h5", events=True)
    result = run("--stats", "--from", str(path))
    assert result.exit_code != 0 and "--travel-axis" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = run("--stats", "--from", str(path), "--travel-axis", "rows")
    assert result.exit_code == 0, result.output
    assert "16/19/22" in result.output


@pytest.mark.parametrize("case", ["no ground truth", "missing file", "simulation option", "with --out",
                                  "--from alone"])
def test_bad_input_is_one_line_and_non_zero(tmp_path, case):
    if case == "no ground truth":
        args = ["--stats", "--from", str(_recording(tmp_path / "plain.h5", travel_axis="rows"))]
        expected = "needs labelled crossings"
    elif case == "missing file":
        args = ["--stats", "--from", str(tmp_path / "nope.h5")]
        expected = "does not exist"
    elif case == "simulation option":
        args = ["--stats", "--from", str(tmp_path / "nope.h5"), "--scenario", "busy"]
        expected = "--scenario describes a simulation"
    elif case == "with --out":
        args = ["--stats", "--out", str(tmp_path / "x.h5")]
        expected = "--stats --from"
    else:
        args = ["--from", str(tmp_path / "x.h5")]
        expected = "--from goes with --stats"
    result = run(*args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expected in lines[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.h5").exists()
