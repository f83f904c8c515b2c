"""The counter, fed with state sequences written from the model's meanings (no trained model).

Sequences are written as ``"E*5 L*4 M*4 H*4 E*5"``: a state name letter and a frame count.
The clusters are numbered in a scrambled order so no test depends on which index a state has.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from thermalcount.errors import ModelError
from thermalcount.runtime.counter import Counter, CounterTuning, CountEvent
from thermalcount.runtime.model import StateMeaning

# Scrambled cluster order, with an extra one-person state near the low edge.
MEANINGS = [
    StateMeaning(0, "high", 0.85, 1),
    StateMeaning(1, "two", 0.5, 2),
    StateMeaning(2, "empty", None, 0),
    StateMeaning(3, "middle", 0.5, 1),
    StateMeaning(4, "low", 0.15, 1),
    StateMeaning(5, "low-2", 0.3, 1),
    StateMeaning(6, "two-2", 0.7, 2),
    StateMeaning(7, "two-3", None, 2),  # two people apart (no position): meanings' "two humps"
    StateMeaning(8, "edge-low", 0.0, 1, "faint edge"),  # the frame rules' edge states
    StateMeaning(9, "edge-high", 1.0, 1, "faint edge"),
]
LETTERS = {"E": "empty", "L": "low", "l": "low-2", "M": "middle", "H": "high", "T": "two", "U": "two-2",
           "A": "two-3", "<": "edge-low", ">": "edge-high"}
INDEX = {letter: next(m.cluster for m in MEANINGS if m.name == name) for letter, name in LETTERS.items()}


def states_of(spec: str) -> list:
    out = []
    for token in spec.split():
        letter, _, count = token.partition("*")
        out += [INDEX[letter]] * int(count or 1)
    return out


def count(spec: str, fps: float = 10.0, occupancy: int = 0, **options):
    """Run a sequence through update() frame by frame and through process() in one call;
    both must agree. Returns (events as (direction, frame) pairs, counter)."""
    states = states_of(spec)
    times = np.arange(len(states)) / fps + 1000.0
    flip = options.pop("flip", False)
    stepwise = Counter(MEANINGS, flip=flip, **options)
    stepwise.set_occupancy(occupancy)
    events = []
    for time, state in zip(times, states):
        events += stepwise.update(time, state)
    batch = Counter(MEANINGS, flip=flip, **options)
    batch.set_occupancy(occupancy)
    assert batch.process(times, states) == events
    return [(e.direction, e.frame) for e in events], stepwise


def first_frame(spec: str, letter: str, after: int = 0) -> int:
    states = states_of(spec)
    return next(i for i in range(after, len(states)) if states[i] == INDEX[letter])


# ------------------------------------------------------------------------- one person


def test_walking_in_counts_one_entry_at_the_far_side():
    spec = "E*10 L*5 M*5 H*5 E*15"
    events, counter = count(spec)
    assert events == [("in", first_frame(spec, "H"))]
    assert (counter.entries, counter.exits, counter.occupancy) == (1, 0, 1)


def test_walking_out_counts_one_exit():
    spec = "E*10 H*5 M*5 L*5 E*15"
    events, counter = count(spec, occupancy=1)
    assert events == [("out", first_frame(spec, "L"))]
    assert (counter.entries, counter.exits, counter.occupancy) == (0, 1, 0)


def test_flip_swaps_directions():
    assert count("E*10 L*5 M*5 H*5 E*15", flip=True)[0][0][0] == "out"
    assert count("E*10 H*5 M*5 L*5 E*15", flip=True)[0][0][0] == "in"


def test_event_carries_time_of_its_frame_and_occupancy_after_it():
    counter = Counter(MEANINGS)
    states = states_of("E*10 L*5 M*5 H*5 E*10 L*5 M*5 H*5 E*15")
    times = 50.0 + np.arange(len(states)) * 0.1
    events = counter.process(times, states, start_frame=700)
    assert [e.occupancy for e in events] == [1, 2]
    for event in events:
        assert isinstance(event, CountEvent)
        assert event.time == pytest.approx(times[event.frame - 700])
        assert states[event.frame - 700] == INDEX["H"]


def test_extra_low_state_counts_as_the_low_side():
    assert count("E*10 l*5 M*5 H*5 E*15")[0][0][0] == "in"


def test_lingering_at_the_door_line_is_not_counted():
    # Comes in from the low side, stands on the line for 10 s swaying into the far side
    # (even for several frames), then leaves the way they came.
    spec = "E*10 L*5 " + "M*20 H*3 M*10 H " * 8 + "M*5 L*5 E*15"
    events, counter = count(spec)
    assert events == [] and counter.occupancy == 0


def test_turning_back_halfway_is_not_counted():
    assert count("E*10 L*6 M*4 L*6 E*15")[0] == []
    assert count("E*10 H*6 M*4 H*6 E*15")[0] == []


def test_single_frame_flicker_in_an_empty_room_is_ignored():
    spec = "E*30 L E*20 H E*20 M E*10 L M E*40 T E*30"
    assert count(spec)[0] == []


def test_flicker_between_states_during_a_crossing_counts_once():
    spec = "E*10 L*3 M L*2 M*3 L M*2 H M H*4 E*15"
    # Default debounce (0.08 s) sees one-frame states at 10 FPS: the crossing is the first H.
    assert count(spec)[0] == [("in", first_frame(spec, "H"))]
    # A debounce of 0.15 s ignores them: the final stay on the far side begins later.
    assert count(spec, min_state_seconds=0.15)[0] == [
        ("in", first_frame(spec, "H", after=first_frame(spec, "H") + 2))]


def test_missed_frames_inside_a_crossing_do_not_split_it():
    # One or two frames misread as empty (low contrast) do not end the passage.
    spec = "E*10 L*4 E*2 M*4 E H*4 E*15"
    events, counter = count(spec)
    assert [d for d, _ in events] == ["in"]
    # ...but an empty stretch longer than empty_seconds does, and then nobody crossed.
    assert count("E*10 L*4 E*12 H*4 E*15")[0] == []


def test_debounce_is_in_seconds_not_frames():
    # Each state for one frame: flicker at 10 FPS (with a 0.15 s debounce), a brisk
    # crossing at 1 FPS.
    spec = "E*3 L M H E*3"
    assert count(spec, fps=10, min_state_seconds=0.15)[0] == []
    assert count(spec, fps=1)[0] == [("in", 5)]
    assert count("E*3 H L E*3", fps=1, occupancy=1)[0] == [("out", 4)]


def test_one_fps_middle_first_crossing_is_inferred_from_where_they_left():
    spec = "E*3 M H E*3"
    assert count(spec, fps=1)[0] == [("in", 4)]
    assert count(spec, fps=1, infer_middle_entry=False)[0] == []
    # Appearing in the middle and going back to the middle only tells nothing.
    assert count("E*3 M*3 E*3", fps=1)[0] == []


def test_two_people_back_to_back_without_an_empty_frame_count_twice():
    # The first reaches the far side and leaves as the next appears at the near side.
    spec = "E*10 L*5 M*5 H*5 L*5 M*5 H*5 E*15"
    events, counter = count(spec)
    assert [d for d, _ in events] == ["in", "in"] and counter.occupancy == 2
    assert count(spec, split_on_jump_back=False)[0] == [("in", first_frame(spec, "H", 30))]


def test_two_people_following_closely_count_twice():
    spec = "E*10 L*3 T*14 H*3 E*15"
    events, counter = count(spec)
    assert [d for d, _ in events] == ["in", "in"]
    assert counter.occupancy == 2
    frames = [f for _, f in events]
    assert frames == sorted(frames) and frames[0] >= 13 - 1 and frames[1] <= 27 + 1


def test_two_people_passing_count_one_each_way():
    events, counter = count("E*10 L*3 T*12 L*3 E*15", occupancy=1)
    assert [d for d, _ in events] == ["in", "out"]
    assert counter.occupancy == 1
    events, _ = count("E*10 H*3 T*12 H*3 E*15", occupancy=1)
    assert [d for d, _ in events] == ["in", "out"]  # the entry first, whichever side began


def test_a_pass_in_an_empty_room_leaves_it_empty_without_a_clamped_exit():
    for flip in (False, True):
        for spec in ("E*10 L*3 T*12 L*3 E*15", "E*10 H*3 T*12 H*3 E*15", "E*10 A*6 E*15"):
            events, counter = count(spec, flip=flip)
            assert sorted(d for d, _ in events) == ["in", "out"]
            assert counter.occupancy == 0 and counter.clamped == 0, (spec, flip)


def test_two_people_leaving_together_follow_the_known_side():
    assert [d for d, _ in count("E*10 L*4 T*10 E*15")[0]] == ["in", "in"]
    assert [d for d, _ in count("E*10 T*10 L*4 E*15", occupancy=2)[0]] == ["out", "out"]


def test_two_people_with_no_side_at_all_are_reported_not_guessed():
    meanings = [StateMeaning(0, "empty", None, 0), StateMeaning(1, "low", 0.1, 1),
                StateMeaning(2, "high", 0.9, 1), StateMeaning(3, "two", 0.5, 2)]
    counter = Counter(meanings)
    states = [0] * 10 + [3] * 10 + [0] * 15
    assert counter.process(np.arange(35) * 0.1, states) == []
    warnings = counter.drain_warnings()
    assert len(warnings) == 1 and "two people" in warnings[0]


def test_passing_events_fall_halfway_through_the_pair():
    events, _ = count("E*10 L*3 T*12 L*3 E*15", occupancy=1)
    frames = [f for _, f in events]
    assert frames[0] == frames[1] and 13 + 3 <= frames[0] <= 13 + 12 - 3


def test_a_pair_flickering_between_two_people_states_is_one_pair():
    # Each two-people state lasts one frame (below two_seconds), together six frames.
    spec = "E*10 L*3 T U T U T U H*3 E*15"
    assert [d for d, _ in count(spec)[0]] == ["in", "in"]
    assert [d for d, _ in count(spec, merge_two_states=False)[0]] == ["in"]


def test_two_people_apart_in_the_view_are_passing_each_other():
    # One at each edge (a state without a position), then together, then apart again: a
    # pass, even though the ends of the passage show one side each.
    events, counter = count("E*10 L*3 A*3 T*4 A*3 H*3 E*15", occupancy=1)
    assert sorted(d for d, _ in events) == ["in", "out"] and counter.occupancy == 1
    events, _ = count("E*10 A*6 E*15", occupancy=1)
    assert sorted(d for d, _ in events) == ["in", "out"]
    # The apart state later in a run of two-people states still marks the pass.
    events, _ = count("E*10 L*2 T A*4 T H*2 E*15", occupancy=1)
    assert sorted(d for d, _ in events) == ["in", "out"]


def test_a_two_people_run_split_between_chunks_counts_as_in_one():
    states = np.array(states_of("E*10 T U*4 E*10"))
    times = np.arange(len(states)) / 10.0
    stepwise = Counter(MEANINGS)
    expected = [e for t, s in zip(times, states) for e in stepwise.update(t, s)]
    for cut in range(1, len(states)):
        batch = Counter(MEANINGS)
        got = batch.process(times[:cut], states[:cut]) + batch.process(times[cut:], states[cut:], start_frame=cut)
        assert got == expected, cut


def test_separate_people_make_separate_passages():
    spec = "E*10 L*5 M*5 H*5 E*10 H*5 M*5 L*5 E*10 L*5 M*5 H*5 E*15"
    assert [d for d, _ in count(spec)[0]] == ["in", "out", "in"]


# ---------------------------------------------------------------------- occupancy


def test_occupancy_never_goes_negative_and_says_so():
    events, counter = count("E*10 H*5 M*5 L*5 E*10 H*5 M*5 L*5 E*15")
    assert [e for e, _ in events] == ["out", "out"]
    assert counter.occupancy == 0 and counter.exits == 2 and counter.clamped == 2
    warnings = counter.drain_warnings()
    assert len(warnings) == 2 and "occupancy already 0" in warnings[0]
    assert counter.first_clamped_frame == first_frame("E*10 H*5 M*5 L*5 E*10", "L")
    assert counter.drain_warnings() == []


def test_set_occupancy_and_reset():
    counter = Counter(MEANINGS)
    counter.set_occupancy(3)
    states = states_of("E*10 H*5 M*5 L*5 E*15")
    events = counter.process(np.arange(len(states)) * 0.1, states)
    assert events[0].occupancy == 2 and counter.occupancy == 2
    with pytest.raises(ValueError):
        counter.set_occupancy(-1)
    counter.reset()
    assert (counter.occupancy, counter.entries, counter.exits, counter.in_passage) == (0, 0, 0, False)


def test_finish_closes_a_passage_at_the_end_of_a_recording():
    counter = Counter(MEANINGS)
    states = states_of("E*10 L*5 M*5 H*5")
    assert counter.process(np.arange(len(states)) * 0.1, states) == []
    assert counter.in_passage
    assert [e.direction for e in counter.finish()] == ["in"]
    assert not counter.in_passage


# ------------------------------------------------------------------ inputs and setup


def test_update_takes_the_frame_index_and_process_continues_it():
    counter = Counter(MEANINGS)
    states = states_of("E*10 L*5 M*5 H*5 E*15")
    events = []
    for i, state in enumerate(states[:12]):
        events += counter.update(i * 0.1, state, frame=500 + i)
    events += counter.process(np.arange(12, len(states)) * 0.1, states[12:])
    assert [e.frame for e in events] == [500 + first_frame("E*10 L*5 M*5 H*5 E*10", "H")]


def test_bad_states_and_lengths_are_refused():
    counter = Counter(MEANINGS)
    with pytest.raises(ValueError, match="not one of the model's 10 states"):
        counter.update(0.0, 10)
    with pytest.raises(ValueError, match="not one of"):
        counter.process([0.0, 0.1], [0, -1])
    with pytest.raises(ValueError, match="2 times for 3 states"):
        counter.process([0.0, 0.1], [0, 1, 2])
    assert counter.process([], []) == []


def test_models_without_positions_on_both_sides_are_refused():
    meanings = [StateMeaning(0, "empty", None, 0), StateMeaning(1, "middle", 0.5, 1),
                StateMeaning(2, "high", 0.9, 1)]
    with pytest.raises(ModelError, match="both sides"):
        Counter(meanings)


def test_tuning_is_validated_and_named():
    with pytest.raises(ValueError):
        Counter(MEANINGS, low_side_max=0.7, high_side_min=0.6)
    with pytest.raises(TypeError):
        Counter(MEANINGS, no_such_knob=1)
    counter = Counter(MEANINGS, min_state_seconds=0.5)
    assert counter.tuning == CounterTuning(min_state_seconds=0.5)
    # A longer debounce now rejects a 3-frame stay on the far side at 10 FPS.
    assert count("E*10 L*6 M*6 H*3 E*10", min_state_seconds=0.5)[0] == []
    assert count("E*10 L*6 M*6 H*3 E*15")[0] == [("in", 22)]


def test_meanings_may_be_plain_dicts():
    meanings = [{"cluster": m.cluster, "name": m.name, "position": m.position, "people": m.people}
                for m in MEANINGS]
    states = states_of("E*10 L*5 M*5 H*5 E*15")
    assert Counter(meanings).process(np.arange(len(states)) * 0.1, states) \
        == Counter(MEANINGS).process(np.arange(len(states)) * 0.1, states)


def test_a_long_quiet_stretch_is_processed_whole():
    # 2M frames, almost all empty: must not be a Python loop per frame (not timed here).
    states = np.full(2_000_000, INDEX["E"], np.int64)
    crossing = states_of("L*5 M*5 H*5")
    states[1_000_000:1_000_015] = crossing
    events = Counter(MEANINGS).process(np.arange(len(states)) * 0.1, states)
    assert [(e.direction, e.frame) for e in events] == [("in", 1_000_010)]


# ---------------------------------------------------------- process() == update()

_runs = st.lists(st.tuples(st.sampled_from(sorted(INDEX.values())), st.integers(1, 12)),
                 min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(runs=_runs, steps=st.lists(st.floats(0.0, 1.2), min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 400), max_size=6), flip=st.booleans(),
       backwards=st.booleans(), occupancy=st.integers(0, 3),
       min_state=st.sampled_from([0.0, 0.15, 0.5]), empty=st.sampled_from([0.0, 0.3, 1.0]),
       edge=st.sampled_from([0.0, 0.15, 1.0]))
def test_process_in_chunks_equals_update_per_frame(runs, steps, cuts, flip, backwards, occupancy,
                                                   min_state, empty, edge):
    states = np.array([s for s, n in runs for _ in range(n)], np.int64)
    n = len(states)
    deltas = np.resize(np.array(steps), n)
    times = 100.0 + np.cumsum(deltas)
    if backwards and n > 3:
        times[n // 2] -= 5.0  # a clock stepping back must be handled the same way
    tuning = {"min_state_seconds": min_state, "empty_seconds": empty, "edge_seconds": edge}
    stepwise, batch = Counter(MEANINGS, flip=flip, **tuning), Counter(MEANINGS, flip=flip, **tuning)
    stepwise.set_occupancy(occupancy)
    batch.set_occupancy(occupancy)
    expected = []
    for i in range(n):
        expected += stepwise.update(times[i], states[i])
    got = []
    bounds = sorted({0, n, *[c for c in cuts if c < n]})
    for start, stop in zip(bounds, bounds[1:]):
        got += batch.process(times[start:stop], states[start:stop], start_frame=start)
    assert got == expected
    assert (batch.entries, batch.exits, batch.occupancy, batch.clamped) == \
        (stepwise.entries, stepwise.exits, stepwise.occupancy, stepwise.clamped)
    assert batch.finish() == stepwise.finish()


def test_pending_warnings_are_bounded():
    from thermalcount.runtime.counter import MAX_PENDING_WARNINGS

    counter = Counter(MEANINGS)
    walk_out = states_of("E*5 H*3 M*3 L*3 E*12")
    states = np.tile(walk_out, MAX_PENDING_WARNINGS + 7)
    counter.process(np.arange(len(states)) * 0.1, states)
    assert counter.clamped == MAX_PENDING_WARNINGS + 7
    warnings = counter.drain_warnings()
    assert len(warnings) == MAX_PENDING_WARNINGS + 1 and warnings[-1] == "7 more warning(s) not shown"
    assert counter.drain_warnings() == []


def test_something_that_never_leaves_the_view_does_not_grow_without_bound():
    from thermalcount.runtime.counter import MAX_PASSAGE_STATES

    # The last-resort bound alone (the flicker ends "l H": both edges for the passing rule).
    counter = Counter(MEANINGS, static_seconds=0, opposite_edges_pass=False)
    flicker = states_of("M*3 l*3")
    states = np.concatenate([states_of("E*15"), np.tile(flicker, MAX_PASSAGE_STATES // 2 + 10), states_of("H*5 E*15")])
    counter.process(np.arange(len(states)) * 0.1, states)
    warnings = counter.drain_warnings()
    assert len(warnings) == 1 and "stayed in view with 10000 state changes" in warnings[0]
    # The stretch before the reset was not counted as a crossing (it never left the view).
    assert counter.entries + counter.exits <= 1


# ----------------------------------------------------------------- issue 6: temporal logic


def test_a_one_frame_two_inside_a_crossing_is_one_person():
    # A blob a little larger for one frame is not a second person (two_seconds).
    assert [d for d, _ in count("E*10 L*5 M*2 T M*2 H*5 E*15")[0]] == ["in"]
    assert [d for d, _ in count("E*10 L*5 M*2 T*4 M*2 H*5 E*15")[0]] == ["in", "in"]


def test_both_edges_before_the_middle_are_two_people_passing():
    # One enters at each edge, they meet in the middle and each leaves on the far side.
    spec = "E*10 H*3 L*2 M*4 T*3 M*4 E*15"  # H at 0.85, L at 0.15: both edges
    events = count(spec, occupancy=1)[0]
    assert sorted(d for d, _ in events) == ["in", "out"]
    assert count(spec, occupancy=1, opposite_edges_pass=False)[0] != events


def test_a_warm_object_in_view_becomes_background_and_crossings_past_it_count():
    # A warm thing reads as "low-2" (l) for over a minute; someone walks out past it, later
    # someone walks in. The first crossing is inside the still-open passage and is found
    # when the thing is recognised; the second passage ends on the thing's state.
    spec = "E*10 l*700 H*4 M*4 L*4 l*200 L*4 M*4 H*4 l*100 E*150"
    events, counter = count(spec, occupancy=1)
    assert [d for d, _ in events] == ["out", "in"]
    assert events[0][1] == first_frame(spec, "L")
    assert any("warm object" in w for w in counter.drain_warnings())
    # Without the rule the thing's state is one end of every passage: the count is wrong.
    assert count(spec, occupancy=1, static_seconds=0)[0] != events


def test_a_lingerer_is_not_taken_for_a_warm_object():
    events, counter = count("E*10 L*5 M*80 H*5 E*15")
    assert [d for d, _ in events] == ["in"]
    assert not any("warm object" in w for w in counter.drain_warnings())


def test_people_who_stop_at_the_door_line_every_few_seconds_are_not_a_warm_object():
    # Each stands 5 s in the same middle state, one every 10 s for two minutes: a third of
    # every minute in one state, still people.
    spec = " ".join(["L*3 M*50 H*3 E*44"] * 12)
    events, counter = count("E*10 " + spec + " E*20")
    assert [d for d, _ in events] == ["in"] * 12
    assert not any("warm object" in w for w in counter.drain_warnings())


def test_swaying_across_the_door_line_is_not_a_jump_back():
    meanings = [StateMeaning(0, "empty", None, 0), StateMeaning(1, "low", 0.1, 1),
                StateMeaning(2, "low-2", 0.38, 1), StateMeaning(3, "high-2", 0.62, 1),
                StateMeaning(4, "high", 0.9, 1)]
    sway = [0] * 10 + [1] * 5 + ([2] * 5 + [3] * 3) * 4 + [2] * 5 + [1] * 5 + [0] * 10
    times = np.arange(len(sway)) / 10.0
    assert Counter(meanings).process(times, sway) == []
    # A step as big as the gap rule allows is a new person (the first left, one came in).
    events = Counter(meanings, jump_back_min_gap=0.2).process(times, sway)
    assert [e.direction for e in events] == ["in"] * len(events) and events
