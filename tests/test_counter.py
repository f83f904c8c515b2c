"""The counter, fed with state sequences written from the model's meanings (no trained model).

Sequences are written as ``"E*5 L*4 M*4 H*4 E*5"``: a state name letter and a frame count.
The clusters are numbered in a scrambled order so no test depends on which index a state has.

Letters: ``E`` empty; ``L`` ``l`` ``M`` ``H`` one person low (0.15), low-2 (0.3), middle,
high (0.85); ``T`` ``U`` an old model's heat-based "two" (at 0.5 and 0.7: one blob there, never
two people); ``C`` a two-hump cluster (two people, no position: one near each end); ``<``
``>`` the faint-edge rule's states; ``[`` ``=`` ``]`` the apart rule's states: the pair
toward the low end (the newcomer at the low edge), one near each end, toward the high end.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from thermalcount.errors import ModelError
from thermalcount.runtime.counter import Counter, CounterTuning, CountEvent
from thermalcount.model.contract import StateMeaning, meanings_from_states

# Scrambled cluster order, with an extra one-person state near the low edge. The apart
# states are not in low/both/high order either. ``apart`` as Model.load gives it
# (frame_rules.apart_where): where a two-people-apart state's pair sits.
MEANINGS = [
    StateMeaning(0, "high", 0.85, 1),
    StateMeaning(1, "two", 0.5, 2),  # an old model's heat-based "two": one blob at 0.5
    StateMeaning(2, "empty", None, 0),
    StateMeaning(3, "apart-high", 0.75, 2, "two humps", "high"),  # the frame rule's apart states
    StateMeaning(4, "middle", 0.5, 1),
    StateMeaning(5, "low", 0.15, 1),
    StateMeaning(6, "low-2", 0.3, 1),
    StateMeaning(7, "two-2", 0.7, 2),  # heat-based "two" on the high side: one blob there
    StateMeaning(8, "two-3", None, 2, None, "both"),  # a cluster with two humps (training.meanings)
    StateMeaning(9, "apart", None, 2, "two humps", "both"),
    StateMeaning(10, "edge-low", 0.0, 1, "faint edge"),  # the frame rules' edge states
    StateMeaning(11, "edge-high", 1.0, 1, "faint edge"),
    StateMeaning(12, "apart-low", 0.25, 2, "two humps", "low"),
]
LETTERS = {"E": "empty", "L": "low", "l": "low-2", "M": "middle", "H": "high", "T": "two", "U": "two-2",
           "C": "two-3", "<": "edge-low", ">": "edge-high", "[": "apart-low", "=": "apart", "]": "apart-high"}
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
    # Two people following each other in (toward the high side) are two exits flipped.
    spec = "E*10 L*3 M*3 [*4 M*3 =*3 H*3 E*15"
    assert count(spec, flip=True, occupancy=2)[0] == [("out", first_frame(spec, "=")), ("out", first_frame(spec, "H"))]
    # A pass stays one each way; with flip the entry is the other track's, and still first.
    spec = "E*10 L*3 ]*4 M*4 =*3 H*3 E*15"
    events, counter = count(spec, flip=True)
    assert events == [("in", first_frame(spec, "=")), ("out", first_frame(spec, "="))]
    assert counter.clamped == 0


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
    spec = "E*30 L E*20 H E*20 M E*10 L M E*40 T E*30 = E*20 [ E*20 ] E*20 C E*30"
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


def test_a_lone_track_first_seen_in_the_middle_is_inferred_only_when_alone():
    # At 1 FPS: middle, a second blob comes in at the low edge, then one blob on the high
    # side. The first track began in the middle, but it was not alone: only the newcomer,
    # seen at both edges, counts (inferring the first as well would make it two).
    assert count("E*3 M [ H E*3", fps=1)[0] == [("in", 5)]
    assert count("E*3 M [ H E*3", fps=1, infer_middle_entry=False)[0] == [("in", 5)]


def test_a_faint_edge_then_the_middle_is_inferred_to_have_left_on_the_other_side():
    # 1 FPS: the frame rules see someone just outside the low edge, then the middle, then gone.
    assert count("E*3 < M E*3", fps=1)[0] == [("in", 4)]
    assert count("E*3 > M E*3", fps=1, occupancy=1)[0] == [("out", 4)]
    assert count("E*3 < M E*3", fps=1, infer_middle_exit=False)[0] == []
    # Not for other states: "low, middle, gone" is someone the model lost, or flicker.
    assert count("E*3 L M E*3", fps=1)[0] == []
    # Nor when the track came back to its edge: it turned back.
    assert count("E*3 < M L E*3", fps=1)[0] == []


# ------------------------------------------------------------------ two people, or one


def test_heat_never_makes_two_people_a_two_state_with_a_position_is_one_blob():
    # An old model's heat-based "two" (at 0.5) inside a lone crossing, for one frame or for
    # many: one person in the middle, counted once.
    for spec in ("E*10 L*5 M*2 T M*2 H*5 E*15", "E*10 L*5 M*2 T*4 M*2 H*5 E*15",
                 "E*10 L*5 T*20 H*5 E*15"):
        events, counter = count(spec)
        assert events == [("in", first_frame(spec, "H"))], spec
        assert counter.occupancy == 1
    # A heat "two" on the high side is a blob on the high side: the crossing ends there.
    spec = "E*10 L*5 M*2 U*5 E*15"
    assert count(spec)[0] == [("in", first_frame(spec, "U"))]
    # ...and a "two" in the middle that never reaches a side tells nothing about anyone.
    assert count("E*10 T*10 E*15")[0] == []
    assert count("E*10 L*4 T*10 E*15")[0] == []


def test_a_two_state_without_a_side_is_neither_counted_nor_warned_about():
    # Heat says nothing about two people, so there is nothing to report either.
    meanings = [StateMeaning(0, "empty", None, 0), StateMeaning(1, "low", 0.1, 1),
                StateMeaning(2, "high", 0.9, 1), StateMeaning(3, "two", 0.5, 2)]
    counter = Counter(meanings)
    states = [0] * 10 + [3] * 10 + [0] * 15
    assert counter.process(np.arange(35) * 0.1, states) == []
    assert counter.drain_warnings() == []
    # The same state between the sides is one person in the middle of a crossing.
    states = [0] * 10 + [1] * 4 + [3] * 10 + [2] * 4 + [0] * 15
    assert [e.direction for e in Counter(meanings).process(np.arange(len(states)) * 0.1, states)] == ["in"]


def test_two_people_following_closely_count_twice():
    # The second comes in at the low edge (the pair toward the low end) while the first is
    # in the middle; they merge, part one near each end, and leave on the high side.
    spec = "E*10 L*3 M*3 [*4 M*3 =*3 H*3 E*15"
    events, counter = count(spec)
    # The one ahead reaches the high side when the pair parts, the other one later.
    assert events == [("in", first_frame(spec, "=")), ("in", first_frame(spec, "H"))]
    assert (counter.entries, counter.exits, counter.occupancy) == (2, 0, 2)
    # Mirror image: following each other out.
    spec = "E*10 H*3 M*3 ]*4 M*3 =*3 L*3 E*15"
    events, counter = count(spec, occupancy=2)
    assert events == [("out", first_frame(spec, "=")), ("out", first_frame(spec, "L"))]
    assert counter.occupancy == 0 and counter.clamped == 0


def test_two_people_passing_count_one_each_way():
    # One walks in from the low side; the other comes into view at the HIGH edge (the pair
    # toward the high end), they merge in the middle, part, and each leaves the way it walked.
    spec = "E*10 L*3 ]*4 M*4 =*3 H*3 E*15"
    events, counter = count(spec, occupancy=1)
    assert sorted(events) == [("in", first_frame(spec, "=")), ("out", first_frame(spec, "="))]
    assert (counter.entries, counter.exits, counter.occupancy) == (1, 1, 1)
    # Mirror image: the one walking out came first.
    spec = "E*10 H*3 [*4 M*4 =*3 L*3 E*15"
    events, counter = count(spec, occupancy=1)
    assert sorted(events) == [("in", first_frame(spec, "=")), ("out", first_frame(spec, "="))]
    assert counter.occupancy == 1
    # Where the newcomer came in decides it: at the low edge, the same blobs are following.
    assert [d for d, _ in count("E*10 L*3 [*4 M*4 =*3 H*3 E*15")[0]] == ["in", "in"]


def test_the_blob_at_the_far_edge_can_be_the_first_walking_out_with_a_second_behind():
    # The first walks in to the middle, the pair sits toward the high end, then one blob on
    # the high side. A newcomer at the high edge would have turned back; the first at the
    # edge walking out, with a second behind it, has nobody turn back: two entries.
    spec = "E*10 L*3 M*3 ]*4 H*3 E*15"
    assert count(spec)[0] == [("in", first_frame(spec, "]")), ("in", first_frame(spec, "H"))]
    spec = "E*10 H*3 M*3 [*4 L*3 E*15"
    assert count(spec, occupancy=2)[0] == [("out", first_frame(spec, "[")), ("out", first_frame(spec, "L"))]


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("spec", ["E*10 L*3 ]*4 M*4 =*3 H*3 E*15", "E*10 H*3 [*4 M*4 =*3 L*3 E*15"])
def test_a_pass_in_an_empty_room_leaves_it_empty_without_a_clamped_exit(spec, flip):
    # Both cross at the same frame (when the pair parts): the entry first, so the exit does
    # not find the room at 0 - whichever side began, whichever way the sensor is mounted.
    events, counter = count(spec, flip=flip)
    assert events == [("in", first_frame(spec, "=")), ("out", first_frame(spec, "="))]
    assert counter.occupancy == 0 and counter.clamped == 0


@pytest.mark.parametrize("flip, spec", [(False, "E*10 L*3 =*4 M*4 =*3 H*3 E*15"),
                                        (True, "E*10 H*3 =*4 M*4 =*3 L*3 E*15")])
def test_a_pass_from_both_ends_in_an_empty_room_is_entry_first(flip, spec):
    # The pair is seen one near each end from the start (no newcomer at one edge): still a
    # pass, still both at the frame the pair parts again - the entry must come first.
    events, counter = count(spec, flip=flip)
    parted = first_frame(spec, "=", after=first_frame(spec, "M"))
    assert events == [("in", parted), ("out", parted)]
    assert counter.clamped == 0


def test_two_people_apart_with_no_one_seen_crossing_are_not_counted():
    # Two blobs, one near each end, and gone: each track stays on its side.
    for spec in ("E*10 =*6 E*15", "E*10 C*6 E*15"):
        events, counter = count(spec)
        assert events == [] and counter.clamped == 0, spec


def test_a_two_hump_cluster_is_two_people_like_the_apart_rule():
    # A cluster whose decoded frame has two humps (people 2, no position) reads as the
    # apart rule's "one near each end".
    for letter in ("=", "C"):
        spec = f"E*10 L*3 M*3 {letter}*4 M*3 H*3 E*15"
        assert [d for d, _ in count(spec)[0]] == ["in", "in"], letter


def test_a_one_frame_apart_inside_a_crossing_is_one_person():
    # Two humps for one frame (0.1 s < two_seconds 0.15): not a second person.
    assert [d for d, _ in count("E*10 L*5 M*2 = M*2 H*5 E*15")[0]] == ["in"]
    # Two frames (0.2 s) are two people: the one in the middle walking on, one at the low edge.
    spec = "E*10 L*5 M*2 =*2 M*2 H*5 E*15"
    assert count(spec)[0] == [("in", first_frame(spec, "=")), ("in", first_frame(spec, "H"))]
    assert CounterTuning().two_seconds == 0.15
    assert [d for d, _ in count(spec, two_seconds=0.25)[0]] == ["in"]


def test_a_pair_flickering_between_apart_states_is_one_pair():
    # Each apart state lasts one frame (below two_seconds), together six frames. Merged
    # (merge_two_states), one run, seen as where it began (the pair toward the low end:
    # following); by default each state is debounced on its own and none is seen.
    spec = "E*10 L*3 M*2 [ = [ = [ = M*2 H*3 E*15"
    assert [d for d, _ in count(spec, merge_two_states=True)[0]] == ["in", "in"]
    assert [d for d, _ in count(spec)[0]] == ["in"]


def test_an_apart_frame_later_in_a_two_people_run_makes_it_two_blobs():
    # A heat "two" frame, then apart frames (the pair toward the high end) before the run
    # lasted two_seconds: two blobs, the newcomer at the high edge - a pass.
    spec = "E*10 L*3 T ]*4 M*4 =*3 H*3 E*15"
    assert sorted(count(spec, occupancy=1, merge_two_states=True)[0]) == [("in", first_frame(spec, "=")),
                                                                          ("out", first_frame(spec, "="))]
    # A heat "two" run confirmed on its own is one blob, whatever follows in the same run:
    # one track walks in, the apart state later is a newcomer at the low edge following it.
    spec = "E*10 L*3 T*3 ]*4 M*4 =*3 H*3 E*15"
    assert count(spec, merge_two_states=True)[0] == [("in", first_frame(spec, "=")), ("in", first_frame(spec, "H"))]


def test_an_apart_frame_later_in_a_two_people_run_keeps_where_the_pair_sits():
    # "T =*4" is the pair one near each end, like "=*5": the one in the middle walks on to the
    # high side, the newcomer at the low edge follows (two entries).
    assert count("E*10 L*3 M*2 =*5 M*2 H*3 E*15", merge_two_states=True)[0] == [("in", 15), ("in", 22)]
    assert count("E*10 L*3 M*2 T =*4 M*2 H*3 E*15", merge_two_states=True)[0] == [("in", 15), ("in", 22)]


def test_both_edges_in_one_blob_states_are_one_person_not_a_pass():
    # Without two blobs, a jump from one edge to the other is one person (or flicker): the
    # old "opposite edges" passing rule is gone, and so is its option.
    spec = "E*10 H*3 L*2 M*4 T*3 M*4 E*15"
    assert count(spec, occupancy=1)[0] == [("out", first_frame(spec, "L"))]
    with pytest.raises(TypeError):
        Counter(MEANINGS, opposite_edges_pass=True)


@pytest.mark.parametrize("spec, directions", [
    ("E*10 L*3 T ]*4 M*4 =*3 H*3 E*10", ["in", "out"]),  # the apart frame after the run's first
    ("E*10 L*3 T*3 ]*4 M*4 =*3 H*3 E*10", ["in", "in"]),  # ...and after it was confirmed
    ("E*10 L*3 M*2 [ = [ = [ = M*2 H*3 E*10", ["in", "in"]),  # apart states flickering
    ("E*10 L*5 M*2 T U*4 M*2 H*5 E*10", ["in"]),  # heat "two" states: one blob
])
def test_a_two_people_run_split_between_chunks_counts_as_in_one(spec, directions):
    # merge_two_states: a merged run carried from one chunk into the next
    states = np.array(states_of(spec))
    times = np.arange(len(states)) / 10.0
    stepwise = Counter(MEANINGS, merge_two_states=True)
    stepwise.set_occupancy(1)
    expected = [e for t, s in zip(times, states) for e in stepwise.update(t, s)]
    assert sorted(e.direction for e in expected) == directions
    for cut in range(1, len(states)):
        batch = Counter(MEANINGS, merge_two_states=True)
        batch.set_occupancy(1)
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
    with pytest.raises(ValueError, match="not one of the model's 13 states"):
        counter.update(0.0, 13)
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


def test_a_states_list_reads_back_as_the_same_meanings():
    # As a model's states list has them on disk: a frame rule's state carries its parameters
    # (the apart rule's: where the pair sits), a two-hump cluster says it in "apart".
    def entry(m):
        out = {"cluster": m.cluster, "name": m.name, "position": m.position, "people": m.people}
        if m.rule:
            out["rule"] = {"test": m.rule, "min_peak": 1.0, **({"where": m.apart} if m.apart else {})}
        elif m.apart:
            out["apart"] = m.apart
        return out

    states = [entry(m) for m in MEANINGS]
    assert meanings_from_states(states) == MEANINGS
    # A two-people state that says nothing of two people apart is a heat "two" at its
    # position: one blob, one entry (the second person at the low edge is not seen).
    bare = meanings_from_states([{k: v for k, v in m.items() if k not in ("rule", "apart")} for m in states])
    spec = states_of("E*10 L*3 M*3 [*4 M*3 H*3 E*15")
    assert [e.direction for e in Counter(MEANINGS).process(np.arange(len(spec)) * 0.1, spec)] == ["in", "in"]
    assert [e.direction for e in Counter(bare).process(np.arange(len(spec)) * 0.1, spec)] == ["in"]


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


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(runs=_runs, steps=st.lists(st.floats(0.0, 1.2), min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 400), max_size=6), flip=st.booleans(),
       backwards=st.booleans(), occupancy=st.integers(0, 3),
       min_state=st.sampled_from([0.0, 0.15, 0.5]), empty=st.sampled_from([0.0, 0.3, 1.0]),
       edge=st.sampled_from([0.0, 0.15, 1.0]), two=st.sampled_from([0.0, 0.15, 0.3]), merge_two=st.booleans())
def test_process_in_chunks_equals_update_per_frame(runs, steps, cuts, flip, backwards, occupancy,
                                                   min_state, empty, edge, two, merge_two):
    states = np.array([s for s, n in runs for _ in range(n)], np.int64)
    n = len(states)
    deltas = np.resize(np.array(steps), n)
    times = 100.0 + np.cumsum(deltas)
    if backwards and n > 3:
        times[n // 2] -= 5.0  # a clock stepping back must be handled the same way
    tuning = {"min_state_seconds": min_state, "empty_seconds": empty, "edge_seconds": edge, "two_seconds": two,
              "merge_two_states": merge_two}
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



@pytest.mark.parametrize("scenario", ["mixed", "following", "warm_object"])
def test_process_equals_update_on_the_default_models_states_of_a_simulated_doorway(scenario):
    """The two paths (count's process, the live loop's update) pinned together on real
    model output: the default model's states of a simulated recording, cut unevenly."""
    from thermalcount.model.loader import Model
    from thermalcount.sensors.sim.simulator import simulate

    recording = simulate(12_000, scenario, seed=41)
    model = Model.load("default", backend="numpy")
    model.start_stream(10.0)
    states = model.infer_states(recording.frames)
    times = np.arange(len(states)) / 10.0
    stepwise, batch = Counter(model.meanings), Counter(model.meanings)
    expected = []
    for time, state in zip(times, states):
        expected += stepwise.update(time, state)
    expected += stepwise.finish()
    got = []
    bounds = [0, 1, 700, 4096, 4097, 9000, len(states)]
    for start, stop in zip(bounds, bounds[1:]):
        got += batch.process(times[start:stop], states[start:stop], start_frame=start)
    got += batch.finish()
    assert len(expected) >= 10 and got == expected
    assert batch.drain_warnings() == stepwise.drain_warnings()
    assert (batch.entries, batch.exits, batch.occupancy) == (stepwise.entries, stepwise.exits, stepwise.occupancy)


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

    # The last-resort bound alone (no static warm things). Someone comes in on the high side
    # and something on the low side flickers between two states for over half an hour.
    counter = Counter(MEANINGS, static_seconds=0)
    flicker = states_of("l*3 L*3")
    states = np.concatenate([states_of("E*15 H*5"), np.tile(flicker, MAX_PASSAGE_STATES // 2 + 10),
                             states_of("E*15")])
    events = counter.process(np.arange(len(states)) * 0.1, states)
    warnings = counter.drain_warnings()
    assert len(warnings) == 1 and "stayed in view with 10000 state changes" in warnings[0]
    # The tracks were dropped with the stretch: the walk from the high side to the low one
    # is not counted (it never left the view), and what followed stayed on one side.
    assert events == [] and counter.exits == 0 and counter.clamped == 0
    # Below the bound the same walk is an exit.
    short = np.concatenate([states_of("E*15 H*5"), np.tile(flicker, 100), states_of("E*15")])
    assert [e.direction for e in Counter(MEANINGS, static_seconds=0).process(np.arange(len(short)) * 0.1, short)] \
        == ["out"]


# ----------------------------------------------------------------- issue 6: temporal logic


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


def test_a_crossing_counted_before_the_warm_object_was_found_is_not_counted_again():
    # The thing (l) is in view for 30 s; someone walks in past it. When they reach the high
    # side the thing's state comes back: the walker's track ends there (a jump back) and the
    # entry is counted. 45 s later the thing is recognised and the passage is re-read with it
    # as empty: the same crossing is found again, at the same frame - not counted twice.
    spec = "E*10 l*300 L*4 M*4 H*4 l*450 E*150"
    events, counter = count(spec)
    assert events == [("in", first_frame(spec, "H"))]
    assert counter.entries == 1
    assert any("warm object" in w for w in counter.drain_warnings())


def test_a_crossing_the_warm_object_hid_before_an_emitted_one_is_counted_on_the_re_read():
    # Someone walks out past the thing (hidden: the thing is the low side of the passage),
    # then someone walks in (counted when the thing's state comes back: a jump back). Once
    # the thing is recognised, the re-read finds the exit - at a frame before the entry's.
    spec = "E*10 l*300 H*4 M*4 L*4 l*5 L*4 M*4 H*4 l*450 L*4 E*150"
    events, counter = count(spec, occupancy=1)
    exit_frame = first_frame(spec, "L")
    entry_frame = first_frame(spec, "H", after=exit_frame)
    assert sorted(events) == [("in", entry_frame), ("out", exit_frame)]


def test_a_two_people_state_with_a_warm_object_in_view_is_one_person():
    # Once the thing (l, low side) is known, two blobs are the thing and one person: the pair
    # toward the low end is someone walking in past it, not a second person following.
    spec = "E*10 l*700 L*3 [*4 M*3 H*3 E*150"
    events, counter = count(spec)
    assert events == [("in", first_frame(spec, "H"))]
    # Not knowing the thing, the same states are two people following each other in.
    assert [d for d, _ in count(spec, static_seconds=0)[0]] == ["in", "in"]


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
