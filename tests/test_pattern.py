"""The per-pixel background a stream keeps (thermalcount.model.pattern) and where it is used:
the runtime model, training, and the same result live (frame by frame) and in batches."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thermalcount.model.pattern import GATE_C, STEP, PatternTracker
from thermalcount.sensors.sim.simulator import Simulator, simulate


def _frame_by_frame(tracker, frames):
    return np.stack([tracker.correct_one(frame) for frame in frames])


@pytest.mark.parametrize("fps", [10.0, pytest.param(1.0, marks=pytest.mark.slow)])
def test_batches_of_any_size_give_what_frame_by_frame_gives(fps):
    frames = simulate(2000, "busy", seed=5, fps=fps).frames
    live = _frame_by_frame(PatternTracker(60, fps), frames)
    batched = PatternTracker(60, fps)
    cuts = [0, 1, 2, STEP - 1, STEP + 5, 700, 701, 2000]
    parts = [batched.correct(frames[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    # Bit for bit: both paths advance the pattern with the same _advance and decide a frame
    # is broken the same way (its mean is not finite).
    np.testing.assert_array_equal(np.concatenate(parts), live)
    assert batched.frames_seen == 2000


def test_random_cuts_through_broken_frames_and_step_boundaries_give_the_same_bits():
    frames = simulate(3000, "busy", seed=8).frames.copy()
    frames[:3] = np.nan  # before the stream starts
    frames[40] = np.inf
    frames[41, 0, 0] = -np.inf
    frames[100:140] = np.nan  # a whole step and more
    live_tracker = PatternTracker(60, 10)
    live = _frame_by_frame(live_tracker, frames)
    rng = np.random.default_rng(1)
    for _ in range(10):
        cuts = np.sort(rng.choice(np.arange(1, len(frames)), rng.integers(1, 60), replace=False))
        batched = PatternTracker(60, 10)
        out = np.concatenate([batched.correct(part) for part in np.split(frames, cuts)])
        np.testing.assert_array_equal(out, live)
        np.testing.assert_array_equal(batched.pattern, live_tracker.pattern)
        assert (batched.frames_seen, batched._held) == (live_tracker.frames_seen, live_tracker._held)


def test_the_first_frame_already_removes_the_rooms_fixed_pattern():
    sim = Simulator("single", seed=3, noise=0.0, drift=0.0)
    frames = sim.generate(1).frames
    out = PatternTracker(60).correct(frames)
    spread_before = float(np.ptp(frames[0]))
    assert spread_before > 0.5  # the simulated room has a visible fixed pattern
    assert float(np.ptp(out[0])) < 0.01
    # The frame mean (the room temperature the graph normalises contrast with) is kept.
    assert out[0].mean() == pytest.approx(frames[0].mean(), abs=1e-4)


def _with_person(base, rows, peak=4.0):
    frames = np.repeat(base[None], len(rows), axis=0).astype(np.float32)
    for i, row in enumerate(rows):
        if row is not None:
            frames[i, row, 3:5] += peak
    return frames


def test_a_static_warm_patch_fades_and_a_person_walking_through_does_not():
    rng = np.random.default_rng(1)
    room = (21.0 + rng.normal(0, 0.6, (8, 8))).astype(np.float32)
    room[6:8, 0:2] += 6.0  # a radiator, there from the start
    tracker = PatternTracker(60, 10)
    quiet = tracker.correct(np.repeat(room[None], 600, axis=0))
    assert float(quiet[-1, 6:8, 0:2].max() - quiet[-1].mean()) < 0.05
    # Someone crosses (one row per 2 frames); the pattern keeps nearly nothing of them.
    walk = _with_person(room, [r for r in range(8) for _ in range(2)])
    out = tracker.correct(walk)
    seen = [float(out[i, i // 2, 3:5].mean() - out[i].mean()) for i in range(len(walk))]
    assert min(seen) > 3.4
    after = tracker.correct(np.repeat(room[None], 1, axis=0))
    assert float(np.abs(after[0] - after[0].mean()).max()) < 0.1


def test_a_lingerer_is_not_absorbed_but_a_new_warm_object_is_within_minutes():
    room = np.full((8, 8), 21.0, np.float32)
    tracker = PatternTracker(60, 10)
    tracker.correct(np.repeat(room[None], 1200, axis=0))  # two minutes of empty room
    stand = tracker.correct(_with_person(room, [4] * 80))  # 8 s standing at the door line
    contrast = stand[:, 4, 3:5].mean(axis=1) - stand.mean(axis=(1, 2))
    assert contrast[-1] > 0.9 * contrast[0]  # warm pixels learn 5x slower (GATE_C above)
    laptop = room.copy()
    laptop[0, 0] += 2 * GATE_C + 3.0
    out = tracker.correct(np.repeat(laptop[None], 10 * 60 * 15, axis=0))  # 15 minutes
    assert float(out[-1, 0, 0] - out[-1].mean()) < 0.5


def test_someone_standing_there_when_the_stream_starts_is_forgotten_when_they_leave():
    room = np.full((8, 8), 21.0, np.float32)
    person = room.copy()
    person[3:5, 3:5] += 4.0
    tracker = PatternTracker(60, 10)
    out = tracker.correct(np.concatenate([np.repeat(person[None], 30, axis=0), np.repeat(room[None], 70, axis=0)]))
    assert abs(float(out[0, 3:5, 3:5].mean() - out[0].mean())) < 0.01  # part of the first background
    # The pattern is updated every STEP (32) frames: 7 s after leaving they are forgotten.
    assert float(out[-1, 3:5, 3:5].mean() - out[-1].mean()) > -0.6
    back = tracker.correct(person[None])
    assert float(back[0, 3:5, 3:5].mean() - back[0].mean()) > 3.0  # seen when they come back


def test_a_broken_frame_passes_through_unlearnt_and_does_not_poison_the_stream():
    frames = simulate(300, "single", seed=4).frames.copy()
    frames[0, 2, 2] = np.nan  # even as the very first frame
    frames[100, 5, 5] = np.nan
    frames[101] = np.inf
    live = _frame_by_frame(PatternTracker(60, 10), frames)
    batched = PatternTracker(60, 10)
    parts = [batched.correct(frames[a:b]) for a, b in ((0, 1), (1, 99), (99, 102), (102, 300))]
    np.testing.assert_array_equal(np.concatenate(parts), live)
    broken = ~np.isfinite(live).all(axis=(1, 2))
    assert broken.tolist() == [i in (0, 100, 101) for i in range(300)]
    assert np.isfinite(batched.pattern).all()
    assert np.isfinite(live[102:]).all()  # the frames after them are corrected as usual


@pytest.mark.slow
def test_odd_rates_and_chunkings_stay_finite_and_agree():
    frames = simulate(500, "busy", seed=6, fps=1.0).frames
    for seconds, fps in ((1.0, 1.0), (0.5, 1.0), (600.0, 10.0)):
        live = _frame_by_frame(PatternTracker(seconds, fps), frames)
        assert np.isfinite(live).all()
        for size in (1, 7, 33, 100, 500):
            batched = PatternTracker(seconds, fps)
            out = np.concatenate([batched.correct(frames[i:i + size]) for i in range(0, len(frames), size)])
            np.testing.assert_array_equal(out, live)


def test_reset_and_bad_parameters():
    tracker = PatternTracker(30, 10)
    tracker.correct(simulate(50, "single", seed=1).frames)
    tracker.reset()
    assert tracker.frames_seen == 0 and not tracker.pattern.any()
    for seconds, fps in ((0, 10), (30, 0), (-1, 10)):
        with pytest.raises(ValueError):
            PatternTracker(seconds, fps)


def test_the_default_model_keeps_a_per_pixel_background_and_gives_the_same_states_live_and_in_batches():
    from thermalcount.model.loader import Model

    model = Model.load("default", backend="numpy")
    assert model.pattern_seconds == 60.0
    assert json.loads(model.metadata["preprocessing"])["pattern_seconds"] == 60.0
    frames = simulate(1500, "mixed", seed=77).frames
    model.start_stream(10.0)
    batched = np.concatenate([model.infer_states(frames[:333]), model.infer_states(frames[333:])])
    model.start_stream(10.0)
    live = np.array([model.infer_one(frame) for frame in frames])
    np.testing.assert_array_equal(live, batched)  # one code path: the same states exactly
    # Without the stream's memory (a new stream per frame) every frame is its own background
    # and reads as empty; with it, the people in the stream are seen.
    empty = {m.cluster for m in model.meanings if m.people == 0}
    alone = []
    for frame in frames[:300]:
        model.start_stream(10.0)
        alone.append(model.infer_one(frame))
    assert set(alone) <= empty
    assert not set(batched[:300].tolist()) <= empty


def test_a_model_without_pattern_seconds_has_no_tracker(tmp_path):
    from tests.test_runtime_model import folded_model, save
    from thermalcount.model.loader import Model

    model = Model.load(save(folded_model(), tmp_path / "m.onnx"), backend="numpy")
    assert model.pattern_seconds is None and model.tracker is None
    frame = simulate(1, "single", seed=2).frames
    assert model.infer_one(frame[0]) == model.infer_states(frame)[0]


def test_training_data_removes_the_pattern_as_the_runtime_does_in_any_chunk_order():
    from thermalcount.training.data import ArraySource, TrainingData

    frames = simulate(3000, "single", seed=9).frames
    # 500 frames per chunk: the chunk starts fall inside the tracker's 32-frame steps.
    data = TrainingData([ArraySource(frames, "a")], chunk_frames=500, val_split=0.0, pattern_seconds=60.0)
    data.scan()
    expected = PatternTracker(60.0, 10.0).correct(frames).reshape(-1, 64)
    everything = np.concatenate([flat for _, _, flat in data.iter_all()])
    np.testing.assert_allclose(everything, expected, atol=1e-4)
    # minibatches read chunks in a shuffled order; each chunk must still be corrected with
    # the tracker state of ITS start.
    batch_rows = np.concatenate(list(data.minibatches(epoch=0, batch_size=256)))
    assert len(batch_rows) == len(frames)
    ordered = batch_rows[np.lexsort(batch_rows.T[::-1])]
    reference = expected[np.lexsort(expected.T[::-1])]
    np.testing.assert_allclose(ordered, reference, atol=1e-4)


def test_the_train_command_records_the_pattern_time_constant(tmp_path):
    from click.testing import CliRunner

    from thermalcount.cli import cli
    from thermalcount.model.trained_file import load_model

    runner = CliRunner()
    recording = tmp_path / "sim.h5"
    assert runner.invoke(cli, ["simulate", "--frames", "3000", "--out", str(recording)]).exit_code == 0
    out = tmp_path / "m.npz"
    result = runner.invoke(cli, ["train", str(recording), "--out", str(out), "--epochs", "2", "--clusters", "4",
                                 "--pattern-seconds", "45"])
    assert result.exit_code == 0, result.output
    assert load_model(out).preprocessing.pattern_seconds == 45.0
    off = tmp_path / "off.npz"
    result = runner.invoke(cli, ["train", str(recording), "--out", str(off), "--epochs", "2", "--clusters", "4",
                                 "--pattern-seconds", "0"])
    assert result.exit_code == 0, result.output
    assert load_model(off).preprocessing.pattern_seconds is None


def test_settling_after_each_frame_changes_no_output_and_runs_the_update_once_per_step():
    frames = simulate(700, "busy", seed=8).frames.copy()
    frames[64, 3, 3] = np.nan  # a broken frame at a step boundary: learnt as the pattern
    plain = _frame_by_frame(PatternTracker(60, 10), frames)
    settled, updates = PatternTracker(60, 10), []
    out = []
    for frame in frames:
        out.append(settled.correct_one(frame))
        updates.append(settled.settle())
    np.testing.assert_array_equal(np.stack(out), plain)
    # The update comes after the 32nd frame of each step, and only then.
    assert [i for i, done in enumerate(updates) if done] == list(range(STEP - 1, len(frames), STEP))
    assert settled.settle() is False
    # A step left pending is run first by the batch path and by state(): same as settled.
    pending, batched = PatternTracker(60, 10), PatternTracker(60, 10)
    _frame_by_frame(pending, frames[:2 * STEP])
    batched.correct(frames[:2 * STEP])
    np.testing.assert_array_equal(pending.correct(frames[2 * STEP:]), batched.correct(frames[2 * STEP:]))
    resumed, source = PatternTracker(60, 10), PatternTracker(60, 10)
    _frame_by_frame(source, frames[:STEP])
    resumed.restore(source.state())
    np.testing.assert_array_equal(_frame_by_frame(resumed, frames[STEP:]), plain[STEP:])


def test_the_live_loop_settles_the_pattern_after_each_frames_decision():
    from thermalcount.model.loader import Model
    from thermalcount.runtime.counter import Counter
    from thermalcount.errors import EndOfStream
    from thermalcount.runtime.live import LiveLoop
    from thermalcount.sensors.base import Sensor, SensorFrame, SensorInfo

    class Frames(Sensor):
        info = SensorInfo("sim", 10.0)
        finite = True

        def __init__(self, frames):
            self.frames, self.next = frames, 0

        def read(self):
            if self.next == len(self.frames):
                raise EndOfStream("done")
            self.next += 1
            return SensorFrame(self.frames[self.next - 1], self.next / 10.0, self.next - 1)

    model = Model.load("default", backend="numpy")
    frames = simulate(200, "single", seed=2).frames
    calls = []
    start_stream = model.start_stream

    def watched_start(fps=10.0):
        start_stream(fps)
        infer_one, settle = model.infer_one, model.settle
        model.infer_one = lambda frame: calls.append("infer") or infer_one(frame)
        model.settle = lambda: calls.append("settle") or settle()
    model.start_stream = watched_start
    counter = Counter(model.meanings)
    update = counter.update
    counter.update = lambda *args: calls.append("count") or update(*args)
    LiveLoop(Frames(frames), model, counter, speed=None).run()
    assert calls == ["infer", "count", "settle"] * len(frames)
    assert model.tracker.frames_seen == len(frames) and model.tracker._held == len(frames) % STEP
