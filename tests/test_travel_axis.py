"""Finding the travel axis from the frames (thermalcount.model.travel_axis), and the live watch
that re-counts what ``run`` saw before it was found (thermalcount.runtime.axis_watch)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import modules_loaded_by
from thermalcount.errors import UsageError
from thermalcount.model.contract import StateMeaning
from thermalcount.runtime.axis_watch import AxisWatch
from thermalcount.runtime.counter import Counter
from thermalcount.sensors.base import SensorFrame
from thermalcount.sensors.conversions import Orientation
from thermalcount.sensors.sim.simulator import simulate
from thermalcount.model.travel_axis import (
    TRANSPOSE, TravelAxisFinder, choose, orientation_setting, stored_orientation,
)


def found(frames, fps=10.0, step=None):
    finder = TravelAxisFinder(fps)
    if step is None:
        finder.add(frames)
    else:
        for start in range(0, len(frames), step):
            finder.add(frames[start:start + step])
    return finder.finding


@pytest.mark.parametrize("scenario, seed", [("single", 1), ("busy", 2), ("lingering", 3), ("passing", 4)])
@pytest.mark.parametrize("axis", ["rows", "columns"])
def test_people_walking_give_their_axis(scenario, seed, axis):
    finding = found(simulate(6000, scenario, seed=seed, travel_axis=axis).frames)
    assert finding.axis == axis, finding
    assert finding.ratio >= 3.0 and finding.moves >= finding.needed


@pytest.mark.slow
def test_at_one_frame_per_second_too():
    for axis in ("rows", "columns"):
        assert found(simulate(1200, "mixed", seed=5, fps=1.0, travel_axis=axis).frames, fps=1.0).axis == axis


def test_the_stream_gives_the_same_finding_in_any_pieces():
    frames = simulate(3000, "busy", seed=6, travel_axis="columns").frames
    whole = found(frames)
    pieces = found(frames, step=32)
    assert pieces.axis == whole.axis == "columns"
    assert pieces.moves == whole.moves
    assert pieces.step_columns == pytest.approx(whole.step_columns, rel=1e-4)


def _room(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    frames = 21.0 + rng.normal(0, 0.25, (n, 8, 8)) + rng.normal(0, 0.8, (8, 8))  # noise, fixed pattern
    return np.round(frames * 4).astype(np.float32) / 4


def test_an_empty_recording_is_undecided():
    finding = found(simulate(6000, "empty", seed=7).frames)
    assert finding.axis is None and finding.moves < finding.needed
    assert found(np.empty((0, 8, 8), np.float32)).axis is None
    assert "no moving warm blob" in found(_room(100)).describe()


def test_a_static_warm_object_does_not_decide():
    """A laptop in view from the start, and one put down halfway, whose blob is long and
    narrow along the columns (the raw blob centre's spread would say 'columns'): no people,
    no decision."""
    frames = _room()
    frames[:, 2, 1:7] += 6.0  # from the start: the first background holds it
    frames[3000:, 6, 0:6] += 5.0  # appears later: a blob for minutes, but it does not move
    finding = found(frames)
    assert finding.axis is None, finding


def test_a_static_warm_object_does_not_outvote_people():
    """People walk along the rows past a warm patch that stretches along the columns: rows."""
    chunk = simulate(6000, "single", seed=8)
    frames = chunk.frames.copy()
    frames[:, 1, 0:8] += 4.0
    frames[:, 6, 1:7] += 3.0
    assert found(frames).axis == "rows"


def test_broken_frames_are_no_evidence():
    frames = simulate(3000, "busy", seed=9, travel_axis="columns").frames.copy()
    frames[::7] = np.nan
    assert found(frames).axis == "columns"


def test_orientation_settings():
    assert orientation_setting("auto") is None and orientation_setting(" AUTO ") is None
    assert orientation_setting("none") == Orientation() == orientation_setting("rotate=0,mirror=none")
    assert orientation_setting(None) == Orientation()
    assert orientation_setting("rotate=90") == Orientation(90, "none")
    with pytest.raises(UsageError, match="auto"):
        orientation_setting("sideways")
    with pytest.raises(UsageError, match="count and run"):
        stored_orientation("auto")
    assert stored_orientation("rotate=180") == Orientation(180, "none")


def test_transpose_turns_columns_into_rows_with_the_same_direction():
    frame = np.arange(64, dtype=np.float32).reshape(8, 8)
    np.testing.assert_array_equal(TRANSPOSE.apply(frame), frame.T)


def test_choices_and_what_they_say():
    columns = found(simulate(3000, "busy", seed=2, travel_axis="columns").frames)
    turned = choose("auto", "rows", columns)
    assert turned.orientation == TRANSPOSE and turned.found == "columns"
    assert "transposed to the model's rows" in turned.describe() and "rotate=90,mirror=horizontal" in turned.describe()
    same = choose("auto", "columns", columns)
    assert same.orientation.is_identity and "the model's own" in same.describe()
    undecided = choose("auto", "rows", found(_room(500)))
    assert undecided.orientation.is_identity and undecided.found is None
    assert "not found" in undecided.describe()
    given = choose("rotate=90", "rows")
    assert given.setting == "rotate=90,mirror=none" and given.finding is None and not given.auto
    assert choose("none", "rows").setting == "none"
    assert set(turned.to_json()) == {"setting", "model_axis", "found", "orientation", "evidence"}


def test_the_runtime_side_never_loads_the_training_stack():
    code = ("import numpy as np\n"
            "from thermalcount.model.travel_axis import TravelAxisFinder\n"
            "from thermalcount.runtime.axis_watch import AxisWatch\n"
            "TravelAxisFinder(10).add(np.full((40, 8, 8), 21, np.float32))\n")
    assert modules_loaded_by(code) == []


# ------------------------------------------------------------------------ the live watch


class _RowsModel:
    """Stands in for a model along the rows: empty, or where the warm pixel's row is."""

    travel_axis = "rows"
    meanings = [StateMeaning(0, "empty", None, 0), StateMeaning(1, "low", 0.1, 1),
                StateMeaning(2, "middle", 0.5, 1), StateMeaning(3, "high", 0.9, 1)]

    def start_stream(self, fps):
        pass

    def infer_states(self, frames):
        states = np.zeros(len(frames), np.int64)
        for i, frame in enumerate(frames):
            if frame.max() > 25:
                row = int(np.argmax(frame.max(axis=1)))
                states[i] = 1 if row <= 2 else 3 if row >= 5 else 2
        return states


def _columns_crossings(n, starts):
    """Frames of one warm pixel walking along the columns, 0 -> 7, from each start."""
    frames = np.full((n, 8, 8), 21.0, np.float32)
    for start in starts:
        for step in range(8):
            frames[start + 3 * step:start + 3 * step + 3, 4, step] = 30.0
    return frames


def _feed(watch, frames, states, first=0):
    for i, (pixels, state) in enumerate(zip(frames, states), start=first):
        watch.add(SensorFrame(pixels, 100.0 + i / 10, i, 20.0), int(state))


@pytest.mark.parametrize("set_at, expected", [(50, 5 + 1), (200, 5)])
def test_a_recount_applies_hand_corrections_where_they_happened(set_at, expected):
    model = _RowsModel()
    counter = Counter(model.meanings)
    watch = AxisWatch(model, counter, 10.0)
    frames = _columns_crossings(300, [100])
    provisional = model.infer_states(frames)  # along the rows: the pixel stays in row 4
    _feed(watch, frames[:set_at], provisional[:set_at])
    watch.correct(5)
    _feed(watch, frames[set_at:], provisional[set_at:], first=set_at)
    fresh, events = watch.recount(model, counter)
    assert [e.direction for e in events] == ["in"]
    assert 100 <= events[0].frame <= 124
    assert fresh.occupancy == expected and fresh.entries == 1


def test_the_buffer_is_cut_only_where_the_view_was_empty():
    model = _RowsModel()
    counter = Counter(model.meanings)
    watch = AxisWatch(model, counter, 10.0, buffer_seconds=20.0)  # 200 frames
    frames = _columns_crossings(1000, [190, 420, 700])
    states = np.where(frames.reshape(len(frames), -1).max(axis=1) > 25, 2, 0)  # someone, mid-view
    for i in range(len(frames)):
        if watch.add(SensorFrame(frames[i], 100.0 + i / 10, i, 20.0), int(states[i])):
            choice, _ = watch.check(counter)
            assert choice is None  # three crossings are not enough to decide
            assert watch.size <= watch.capacity
            # Never cut inside a crossing: the buffer's first frame had an empty view before it.
            first = watch.start
            if first:
                assert not states[max(first - watch.quiet_frames, 0):first].any()
    assert watch.start > 0 and watch.size <= watch.nominal + watch.slack
