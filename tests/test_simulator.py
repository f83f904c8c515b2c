"""The thermal scene simulator: ground truth agrees with the frames, statistics match real rooms."""

from __future__ import annotations

import numpy as np
import pytest

from thermalcount.errors import UsageError
from thermalcount.sensors.scenarios import SCENARIOS, list_scenarios
from thermalcount.sensors.simulator import GroundTruthEvent, SimSensor, Simulator, simulate

# A scene without noise, quantisation, fixed pattern or drift: the background is constant
# and people only add warmth, so the per-pixel minimum is the background and the excess over
# it is exactly the people; geometry can then be checked against the ground truth.
CLEAN = dict(noise=0.0, quantum=0.0, fixed_pattern=0.0, drift=0.0)
MID = 3.5


def excess(chunk):
    background = chunk.frames.min(axis=0)
    return np.clip(chunk.frames - background, 0, None)


def travel_centroid(image: np.ndarray, axis: int) -> float:
    profile = image.sum(axis=1 - axis)
    return float((profile * np.arange(8)).sum() / profile.sum())


def visits(hot: np.ndarray) -> int:
    """Number of runs of True (separate times someone was in view)."""
    return int(np.sum(hot[1:] & ~hot[:-1]) + hot[0])


@pytest.mark.parametrize("travel_axis,reverse", [("rows", False), ("rows", True), ("columns", False)])
def test_blob_centroid_crosses_mid_line_at_event_frame_in_event_direction(travel_axis, reverse):
    chunk = simulate(6000, "single", seed=11, travel_axis=travel_axis, reverse=reverse, **CLEAN)
    warm = excess(chunk)
    axis = 0 if travel_axis == "rows" else 1
    assert len(chunk.events) >= 20
    for event in chunk.events:
        before = travel_centroid(warm[event.frame - 1], axis)
        at = travel_centroid(warm[event.frame], axis)
        if event.direction == "in":
            assert before < MID <= at, (event, before, at)
        else:
            assert before >= MID > at, (event, before, at)
    assert {e.direction for e in chunk.events} == {"in", "out"}


def test_every_completed_crossing_has_exactly_one_event():
    chunk = simulate(20000, "single", seed=5, **CLEAN)
    hot = excess(chunk).reshape(len(chunk.frames), -1).max(axis=1) > 0.5
    assert visits(hot) == len(chunk.events) > 30


@pytest.mark.parametrize("scenario,overrides", [
    ("turnback", {"episodes": {"turnback": 1.0}}),
    ("lingering", {"linger_continue_prob": 0.0}),
])
def test_people_who_go_back_produce_no_event(scenario, overrides):
    chunk = simulate(8000, scenario, seed=2, **CLEAN, **overrides)
    warm = excess(chunk).reshape(len(chunk.frames), -1).max(axis=1)
    assert visits(warm > 0.5) >= 10 and warm.max() > 3.0  # people were there, visibly
    assert chunk.events == []


def test_lingerers_who_continue_produce_one_event_each():
    chunk = simulate(8000, "lingering", seed=3, linger_continue_prob=1.0, **CLEAN)
    hot = excess(chunk).reshape(len(chunk.frames), -1).max(axis=1) > 0.5
    assert visits(hot) == len(chunk.events) >= 8
    # they stood in view for seconds: visits last much longer than a 15-20 frame crossing
    assert hot.sum() / visits(hot) > 40


def test_following_people_cross_three_to_four_frames_apart():
    chunk = simulate(8000, "following", seed=4, **CLEAN)
    frames = [e.frame for e in chunk.events]
    gaps = np.diff(frames)[::2]
    directions = [e.direction for e in chunk.events]
    assert len(frames) % 2 == 0 and len(frames) >= 20
    assert all(a == b for a, b in zip(directions[::2], directions[1::2]))
    assert set(gaps) <= {3, 4}
    # both people are in view at once
    assert np.max(chunk.people) == 2


def test_passing_people_go_opposite_ways():
    chunk = simulate(8000, "passing", seed=4, **CLEAN)
    pairs = list(zip(chunk.events[::2], chunk.events[1::2]))
    assert len(pairs) >= 10
    assert all({a.direction, b.direction} == {"in", "out"} for a, b in pairs)
    assert np.max(chunk.people) == 2


def test_columns_is_rows_transposed_and_reverse_flips_travel_axis():
    rows = simulate(5000, "mixed", seed=7)
    columns = simulate(5000, "mixed", seed=7, travel_axis="columns")
    flipped = simulate(5000, "mixed", seed=7, reverse=True)
    np.testing.assert_array_equal(columns.frames, rows.frames.transpose(0, 2, 1))
    np.testing.assert_array_equal(flipped.frames, rows.frames[:, ::-1, :])
    assert columns.events == rows.events
    swap = {"in": "out", "out": "in"}
    assert [(e.frame, swap[e.direction]) for e in rows.events] == [(e.frame, e.direction) for e in flipped.events]
    assert len(rows.events) > 0


def test_stream_is_deterministic_and_independent_of_chunking():
    whole = simulate(10000, "busy", seed=9)
    sim = Simulator("busy", seed=9)
    parts = [sim.generate(n) for n in (1, 4095, 0, 1, 5000, 903)]
    assert sim.frames_generated == 10000
    np.testing.assert_array_equal(whole.frames, np.concatenate([p.frames for p in parts]))
    np.testing.assert_array_equal(whole.thermistor, np.concatenate([p.thermistor for p in parts]))
    np.testing.assert_array_equal(whole.timestamps, np.concatenate([p.timestamps for p in parts]))
    assert whole.events == [e for p in parts for e in p.events]
    for part, start in zip(parts, np.cumsum([0, 1, 4095, 0, 1, 5000])):
        assert all(start <= e.frame < start + len(part.frames) for e in part.events)
    other = simulate(10000, "busy", seed=10)
    assert not np.array_equal(whole.frames, other.frames)
    assert [e.frame for e in whole.events] != [e.frame for e in other.events]


def test_events_carry_frame_times_and_timestamps_follow_fps():
    chunk = simulate(3000, "single", seed=1, start_time=1000.0)
    np.testing.assert_allclose(chunk.timestamps, 1000.0 + np.arange(3000) / 10.0)
    assert chunk.frames.dtype == np.float32 and chunk.frames.shape == (3000, 8, 8)
    assert chunk.timestamps.dtype == np.float64 and chunk.thermistor.dtype == np.float32
    for event in chunk.events:
        assert isinstance(event, GroundTruthEvent)
        assert event.time == pytest.approx(chunk.timestamps[event.frame])
    assert [e.frame for e in chunk.events] == sorted(e.frame for e in chunk.events)


def test_background_statistics_match_real_rooms():
    spreads = []
    for seed in range(4):
        chunk = simulate(3000, "empty", seed=seed, drift=0.0)
        frames = chunk.frames.astype(np.float64)
        assert np.all(np.mod(frames * 4, 1) == 0)  # 0.25 °C steps
        assert 19.0 <= frames.mean() <= 23.5
        # temporal noise ~0.37 °C (plus the quantisation's own 0.072 °C)
        assert frames.std(axis=0).mean() == pytest.approx(np.hypot(0.37, 0.25 / np.sqrt(12)), abs=0.015)
        spreads.append(np.ptp(frames.mean(axis=0)))
        board = chunk.thermistor - frames.mean()
        assert 0.8 < board.mean() < 3.2 and np.all(np.mod(chunk.thermistor * 16, 1) == 0)
    assert all(0.8 <= s <= 2.1 for s in spreads) and max(spreads) > 1.3


def test_rooms_are_seeded_separately_from_people():
    a = simulate(2000, "single", seed=1, room=5)
    b = simulate(2000, "single", seed=2, room=5)
    c = simulate(2000, "single", seed=1, room=6)
    pattern = lambda chunk: chunk.frames.mean(axis=0) - chunk.frames.mean()  # noqa: E731
    assert np.abs(pattern(a) - pattern(b)).max() < 0.3  # same room, different people/noise
    assert np.abs(pattern(a) - pattern(c)).max() > 0.4
    assert [e.frame for e in a.events] == [e.frame for e in c.events]


def _blob_stats(scenario, **kw):
    """Peak excess and pixels >= 2 °C above background when a blob is well inside the view."""
    chunk = simulate(20000, scenario, seed=8, **{**CLEAN, **kw})
    warm = excess(chunk)
    peaks, hot = [], []
    for image, people in zip(warm, chunk.people):
        if people == 1 and image.max() > 0.5 and 2.5 <= travel_centroid(image, 0) <= 4.5:
            peaks.append(image.max())
            hot.append(int((image >= 2.0).sum()))
    return np.array(peaks), np.array(hot)


def test_person_blob_size_and_peak():
    peaks, hot = _blob_stats("single")
    assert 4.0 <= np.median(peaks) <= 5.0 and peaks.max() <= 5.8
    assert 5 <= np.median(hot) <= 8 and np.percentile(hot, 5) >= 4 and np.percentile(hot, 95) <= 9


def test_hats_make_smaller_cooler_blobs_and_warm_rooms_shrink_contrast():
    peaks, hot = _blob_stats("low_contrast", ambient=21.0)
    assert 3.5 <= np.median(peaks) <= 4.3 and 4 <= np.median(hot) <= 6
    warm_peaks, _ = _blob_stats("warm_room", ambient=27.0, hat_prob=0.0)
    assert 1.8 <= np.median(warm_peaks) <= 3.0


def test_crossing_takes_15_to_20_frames_at_10_fps():
    chunk = simulate(20000, "single", seed=3, speed_mix=(0, 1, 0), **CLEAN)
    hot = excess(chunk).reshape(len(chunk.frames), -1).max(axis=1) >= 2.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], hot.astype(int), [0]])))
    lengths = edges[1::2] - edges[::2]
    assert 15 <= np.median(lengths) <= 20 and lengths.min() >= 12 and lengths.max() <= 23


def test_one_fps_crossing_spans_about_two_frames_with_low_noise():
    chunk = simulate(3000, "single", seed=3, fps=1, noise=0.0, quantum=0.0, fixed_pattern=0.0, drift=0.0)
    hot = excess(chunk).reshape(len(chunk.frames), -1).max(axis=1) >= 2.0
    assert 1 <= hot.sum() / visits(hot) <= 3
    assert visits(hot) == len(chunk.events)
    quiet = simulate(2000, "empty", seed=3, fps=1, drift=0.0, quantum=0.0)
    assert 0.05 <= quiet.frames.std(axis=0).mean() <= 0.1


def test_busy_shows_someone_in_35_to_65_percent_of_frames():
    for seed in (0, 1):
        chunk = simulate(30000, "busy", seed=seed)
        assert 0.35 <= np.mean(chunk.people > 0) <= 0.65
        clean = simulate(30000, "busy", seed=seed, **CLEAN)
        shows = excess(clean).reshape(len(clean.frames), -1).max(axis=1) >= 2.0
        assert 0.35 <= shows.mean() <= 0.65


def minute_levels(chunk):
    """Median frame mean per minute: the background level, robust to people and noise."""
    return np.median(chunk.frames.mean(axis=(1, 2)).reshape(-1, 600), axis=1)


def test_drift_moves_background_by_several_degrees_within_minutes():
    chunk = simulate(12000, "drift", seed=1)  # 20 minutes
    assert np.ptp(minute_levels(chunk)) >= 2.5
    steady = simulate(12000, "single", seed=1, drift=0.0)
    assert np.ptp(minute_levels(steady)) < 0.3


def test_warm_object_is_a_fixed_warm_patch():
    chunk = simulate(4000, "warm_object", seed=2)
    empty = chunk.frames[chunk.people == 0].mean(axis=0)
    assert empty.max() - np.median(empty) >= 2.5
    plain = simulate(4000, "single", seed=2)
    plain_empty = plain.frames[plain.people == 0].mean(axis=0)
    assert plain_empty.max() - np.median(plain_empty) < 1.5


def test_every_scenario_runs_and_is_listed():
    names = [name for name, _ in list_scenarios()]
    for required in ("single", "following", "passing", "lingering", "turnback", "low_contrast",
                     "warm_room", "drift", "warm_object", "busy", "mixed", "empty"):
        assert required in names and required in SCENARIOS
    for name in names:
        chunk = simulate(2000, name, seed=0)
        assert chunk.frames.shape == (2000, 8, 8) and np.isfinite(chunk.frames).all()
    assert simulate(20000, "empty", seed=0).events == []
    mixed = simulate(30000, "mixed", seed=0)
    assert np.max(mixed.people) == 2 and len(mixed.events) > 50


@pytest.mark.parametrize("kwargs,words", [
    ({"scenario": "crowded"}, ["crowded", "single", "mixed"]),
    ({"travel_axis": "diagonal"}, ["rows", "columns"]),
    ({"fps": 5}, ["10", "1"]),
    ({"gravity": 9.8}, ["gravity", "ambient"]),
    ({"seed": -1}, ["seed", ">= 0"]),
    ({"room": 1.5}, ["room", ">= 0"]),
])
def test_bad_arguments_raise_one_line_usage_errors(kwargs, words):
    with pytest.raises(UsageError) as info:
        Simulator(**kwargs)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words)


def test_negative_frame_count_is_a_usage_error():
    with pytest.raises(UsageError, match="n_frames"):
        Simulator("single").generate(-1)


def test_sim_sensor_reads_the_simulated_stream_with_ground_truth():
    sensor = SimSensor("single", seed=4, speed=None)
    assert sensor.info.sensor == "sim" and sensor.info.fps == 10.0
    assert sensor.info.extra["scenario"] == "single" and sensor.info.extra["seed"] == 4
    frames = [sensor.read() for _ in range(1500)]
    reference = simulate(1500, "single", seed=4)
    np.testing.assert_array_equal(np.stack([f.pixels for f in frames]), reference.frames)
    assert [f.index for f in frames] == list(range(1500))
    assert frames[10].time == pytest.approx(reference.timestamps[10])
    assert frames[10].thermistor == pytest.approx(reference.thermistor[10])
    assert sensor.ground_truth == reference.events and len(reference.events) > 5
    sensor.close()


def test_sim_sensor_paces_itself_with_an_injected_clock():
    sensor = SimSensor("single", seed=4, speed=2.0)
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    sensor._pacer._clock = lambda: now[0]
    sensor._pacer._sleep = sleep
    for _ in range(5):
        sensor.read()
    assert now[0] == pytest.approx(4 * 0.05)  # 10 FPS at speed 2: one frame every 50 ms


def _naive_counter(frames, threshold=1.5):
    """The naive counter of thermal-scenes.md: static background, hot-pixel centroid, count
    when the centroid changes half."""
    background = np.median(frames[:100], axis=0)
    events, side = [], None
    for index, frame in enumerate(frames):
        warm = np.where(frame - background > threshold, frame - background, 0.0)
        if np.count_nonzero(warm) < 2:
            side = None
            continue
        now = travel_centroid(warm, 0) >= MID
        if side is not None and now != side:
            events.append((index, "in" if now else "out"))
        side = now
    return events


def _f1(found, truth, tolerance=5):
    unmatched = list(truth)
    hits = 0
    for frame, direction in found:
        match = next((t for t in unmatched if t[1] == direction and abs(t[0] - frame) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    return 2 * hits / (len(found) + len(truth))


def test_mixed_is_about_as_hard_as_real_rooms_for_a_naive_counter():
    # Real doorway data: a naive counter scores ~0.92 F1. Far above means the simulator is
    # too easy to train on; far below means it is harder than any real room.
    scores = []
    for seed in (0, 1):
        chunk = simulate(20000, "mixed", seed=seed)
        scores.append(_f1(_naive_counter(chunk.frames), [(e.frame, e.direction) for e in chunk.events]))
    assert 0.75 <= np.mean(scores) <= 0.96, scores
    single = simulate(20000, "single", seed=0, drift=0.0)
    assert _f1(_naive_counter(single.frames), [(e.frame, e.direction) for e in single.events]) > 0.95


def test_lingerers_swaying_across_the_line_count_once_at_their_last_crossing():
    # Standing right on the line, the true centre crosses it back and forth; the ground
    # truth is the net crossing only, on the frame the person finally stays across.
    kw = dict(CLEAN, linger_distance=(-0.05, 0.05))
    chunk = simulate(8000, "lingering", seed=6, linger_continue_prob=1.0, **kw)
    warm = excess(chunk)
    hot = warm.reshape(len(warm), -1).max(axis=1) > 0.5
    finished = visits(hot) - int(hot[-1])  # the last person may still be standing there
    assert finished == len(chunk.events) >= 8
    for event in chunk.events:
        sign = 1 if event.direction == "in" else -1
        assert sign * (travel_centroid(warm[event.frame - 1], 0) - MID) < 0
        after = event.frame
        while after < len(hot) and hot[after]:
            assert sign * (travel_centroid(warm[after], 0) - MID) >= 0
            after += 1
    flips = 0
    for image_before, image in zip(warm[:-1], warm[1:]):
        if image_before.max() > 0.5 and image.max() > 0.5:
            flips += (travel_centroid(image_before, 0) >= MID) != (travel_centroid(image, 0) >= MID)
    assert flips > 2 * len(chunk.events)  # the centre really did cross more often
    back = simulate(8000, "lingering", seed=6, linger_continue_prob=0.0, **kw)
    assert back.events == []
