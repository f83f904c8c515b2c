"""PassageTracks on its own: seen states of one passage in, crossings out.

A passage is written as a list, one seen state per frame (frame i at time i / 10):
a number is one blob at that position, ``(position,)`` one blob of the faint-edge rule, and
``"low"`` / ``"both"`` / ``"high"`` two blobs apart with the pair sitting there.
"""

from __future__ import annotations

import pytest

from thermalcount.runtime.tracks import SIDE_A, SIDE_B, SIDE_M, Crossing, PassageTracks

IN, OUT = (SIDE_A, SIDE_B), (SIDE_B, SIDE_A)


def feed(passage: list, **options) -> list:
    """Each seen state's crossings, by call: [(frame or "close", [(from, to, frame), ...])]."""
    tracks = PassageTracks(**options)
    calls = []
    for frame, seen in enumerate(passage):
        time = frame / 10.0
        if isinstance(seen, str):
            crossed = tracks.see_apart(seen, frame, time)
        elif isinstance(seen, tuple):
            crossed = tracks.see(seen[0], frame, time, faint=True)
        else:
            crossed = tracks.see(seen, frame, time)
        calls.append((frame, crossed))
    calls.append(("close", tracks.close(len(passage), len(passage) / 10.0)))
    for _, crossed in calls:
        for crossing in crossed:
            assert isinstance(crossing, Crossing)
            assert crossing.time == pytest.approx(crossing.frame / 10.0)  # the time of its own frame
    return [(when, [(c.from_side, c.to_side, c.frame) for c in crossed]) for when, crossed in calls]


def crossings(passage: list, **options) -> list:
    """All crossings of a passage, whenever they were handed out, in frame order."""
    return sorted(c for _, crossed in feed(passage, **options) for c in crossed)


# ----------------------------------------------------------------------------- one blob


def test_sides_of_positions():
    tracks = PassageTracks()
    assert [tracks.side_of(p) for p in (0.0, 0.4, 0.41, 0.5, 0.59, 0.6, 1.0, None)] == \
        [SIDE_A, SIDE_A, SIDE_M, SIDE_M, SIDE_M, SIDE_B, SIDE_B, SIDE_M]
    narrow = PassageTracks(low_side_max=0.2, high_side_min=0.8)
    assert [narrow.side_of(p) for p in (0.15, 0.3, 0.7, 0.85)] == [SIDE_A, SIDE_M, SIDE_M, SIDE_B]


def test_one_blob_walking_across_crosses_when_it_first_reaches_the_far_side():
    # Handed out when the track ends (the close), at the first frame on the far side: a step
    # back into the middle does not end that stay.
    assert feed([0.15, 0.5, 0.85, 0.5, 0.85]) == [(0, []), (1, []), (2, []), (3, []), (4, []),
                                                  ("close", [(*IN, 2)])]
    assert crossings([0.85, 0.5, 0.15]) == [(*OUT, 2)]
    # Back on the near side in between: the final stay on the far side begins later.
    assert crossings([0.15, 0.5, 0.85, 0.5, 0.15, 0.5, 0.85]) == [(*IN, 6)]


def test_turning_back_and_staying_in_the_middle_are_no_crossing():
    assert crossings([0.15, 0.5, 0.15]) == []
    assert crossings([0.85, 0.5, 0.5, 0.85]) == []
    assert crossings([0.15, 0.5]) == []  # not faint: lost in the middle, nothing inferred
    assert crossings([0.5, None, 0.5]) == []


def test_close_ends_every_track_and_a_new_passage_starts_empty():
    tracks = PassageTracks()
    tracks.see(0.15, 0, 0.0)
    tracks.see(0.85, 1, 0.1)
    assert tracks.close(2, 0.2) == [Crossing(SIDE_A, SIDE_B, 1, 0.1)]
    assert tracks.tracks == []
    assert tracks.close(3, 0.3) == []  # nothing is handed out twice


def test_a_jump_straight_back_to_the_entry_side_is_the_next_person():
    # The first reached the far side; the blob is back at the near side with no middle
    # between: the first left (handed out at once), a new track walks in.
    assert feed([0.15, 0.85, 0.15, 0.5, 0.85]) == [(0, []), (1, []), (2, [(*IN, 1)]), (3, []), (4, []),
                                                   ("close", [(*IN, 4)])]
    assert crossings([0.15, 0.85, 0.15, 0.5, 0.85], split_on_jump_back=False) == [(*IN, 4)]
    # A step smaller than jump_back_min_gap is someone swaying on the door line.
    assert crossings([0.38, 0.62, 0.38], low_side_max=0.4, high_side_min=0.6) == []
    assert crossings([0.38, 0.62, 0.38, 0.62], jump_back_min_gap=0.2) == [(*IN, 1), (*IN, 3)]
    # Walking the usual way (to the far side) is no jump back, however big the step.
    assert crossings([0.15, 0.85]) == [(*IN, 1)]


# ------------------------------------------------------------------------ the inferences


def test_a_lone_track_first_seen_in_the_middle_came_from_the_other_side():
    assert crossings([0.5, 0.85]) == [(*IN, 1)]
    assert crossings([None, 0.15]) == [(*OUT, 1)]
    assert crossings([0.5, 0.85], infer_middle_entry=False) == []
    # Not a lone track: a second one came in at the low edge and walked across - one
    # crossing, not two.
    assert crossings([0.5, "low", 0.85]) == [(*IN, 2)]


def test_a_faint_edge_then_the_middle_left_on_the_other_side():
    assert crossings([(0.0,), 0.5]) == [(*IN, 1)]
    assert crossings([(1.0,), 0.5]) == [(*OUT, 1)]
    assert crossings([(0.0,), 0.5], infer_middle_exit=False) == []
    assert crossings([0.0, 0.5]) == []  # not faint: no inference
    assert crossings([(0.0,), 0.5, 0.15]) == []  # came back to its edge: turned back


# ------------------------------------------------------------------------ two blobs


def test_two_blobs_alone_in_view_are_two_tracks_on_their_sides():
    assert crossings(["both"]) == []
    # They merge in the middle and part again: each walks on the way it came (passing).
    assert crossings(["both", 0.5, "both"]) == [(*IN, 2), (*OUT, 2)]


def test_the_newcomer_is_the_blob_at_the_edge():
    # The pair toward the high end next to a track from the low side: someone came in at the
    # high edge. They merge and part: a pass, both crossing when the pair parts.
    assert crossings([0.15, "high", 0.5, "both", 0.85]) == [(*IN, 3), (*OUT, 3)]
    assert crossings([0.85, "low", 0.5, "both", 0.15]) == [(*IN, 3), (*OUT, 3)]
    # The pair toward the low end: the newcomer came in behind the first (following).
    assert crossings([0.15, 0.5, "low", 0.5, "both", 0.85]) == [(*IN, 4), (*IN, 5)]


def test_momentum_keeps_a_track_walking_the_way_it_came_through_a_merge():
    # From the middle, two blobs one near each end: the track is the one ahead of it.
    assert crossings([0.15, 0.5, "both"]) == [(*IN, 2)]
    assert crossings([0.85, 0.5, "both"]) == [(*OUT, 2)]
    # Following each other: merged in the middle, they part with the one that came first
    # ahead - it reaches the far side when they part, the other one afterwards.
    assert crossings([0.15, 0.5, "low", 0.5, "both", 0.85]) == [(*IN, 4), (*IN, 5)]
    # The one ahead had reached the far side (frame 2) and stepped back before the second
    # came in: it is the one ahead again when they part, and its crossing is still frame 2
    # (the newcomer, back at the low edge, crossed nothing).
    assert crossings([0.15, 0.5, 0.85, 0.5, "low", 0.5, "both"]) == [(*IN, 2)]
    assert crossings([0.85, 0.5, 0.15, 0.5, "high", 0.5, "both"]) == [(*OUT, 2)]
    # Passing: merged in the middle, each parts toward where it was walking.
    assert crossings([0.85, "low", 0.5, 0.5, "both", 0.15]) == [(*IN, 4), (*OUT, 4)]


def test_the_one_at_the_far_edge_walking_out_leaves_the_view():
    # One crossed to the high side, a second came in at the low edge; the blob is then at
    # the low edge only: the first walked out (handed out at once), the second goes on.
    calls = feed([0.15, 0.85, "both", 0.15, 0.5, 0.85])
    assert calls[3] == (3, [(*IN, 1)])
    assert calls[-1] == ("close", [(*IN, 5)])
    assert sum(len(crossed) for _, crossed in calls) == 2


def test_the_one_at_the_far_edge_walking_in_meets_the_other():
    # A track from the high side next to one at the low edge: when one blob is left at the
    # low edge, they met (people passing merge into one blob off the middle) - it crossed.
    assert crossings([0.15, "both", 0.15]) == [(*OUT, 2)]
    assert crossings([0.85, "both", 0.85]) == [(*IN, 2)]


def test_two_tracks_two_blobs_keep_their_sides_by_position():
    # Two tracks on opposite sides: the lower one takes the low blob.
    assert crossings(["both", "both", "both"]) == []
    # ...and with the pair toward the low end, the one from the high side is the inner blob:
    # when one blob is left at the low edge, it walked on into the other - it crossed.
    assert crossings(["both", "low", 0.15]) == [(*OUT, 2)]
    assert crossings(["both", "high", 0.85]) == [(*IN, 2)]


def test_an_inner_blob_behind_one_at_the_edge_can_be_the_one_walking_out_first():
    # A track from the low side in the middle, then the pair toward the high end, then one
    # blob on the high side. Reading the edge blob as a newcomer from the high side would
    # have it turn back; reading it as the first walking out, with a second behind, has
    # nobody turn back: two entries.
    assert crossings([0.15, 0.5, "high", 0.85]) == [(*IN, 2), (*IN, 3)]
    assert crossings([0.85, 0.5, "low", 0.15]) == [(*OUT, 2), (*OUT, 3)]


def test_apart_positions_are_at_the_edges_and_the_middle():
    from thermalcount.runtime.tracks import APART_POSITIONS

    tracks = PassageTracks()
    for where, (low, high) in APART_POSITIONS.items():
        assert low < high
        assert tracks.side_of(low) == (SIDE_M if where == "high" else SIDE_A)
        assert tracks.side_of(high) == (SIDE_M if where == "low" else SIDE_B)
    with pytest.raises(KeyError):
        tracks.see_apart("middle", 0, 0.0)


def test_two_readings_are_resolved_within_hold_seconds():
    from thermalcount.runtime.tracks import HOLD_SECONDS

    # A pair toward the high end next to one track: the track is the inner blob (someone new
    # at the edge) or the edge one (someone behind it) - two readings. Nothing is handed out
    # while both are open, but not for longer than HOLD_SECONDS: then the best so far wins.
    tracks = PassageTracks()
    for frame, seen in enumerate([0.1, 0.3, 0.5, "high", "high"]):
        (tracks.see_apart(seen, frame, frame / 10) if isinstance(seen, str) else tracks.see(seen, frame, frame / 10))
    assert len(tracks.readings) == 2
    frame = 5
    while frame / 10 < 0.3 + HOLD_SECONDS - 0.05:
        tracks.see_apart("high", frame, frame / 10)
        assert len(tracks.readings) == 2, frame
        frame += 1
    tracks.see_apart("high", frame + 1, (frame + 1) / 10)
    assert len(tracks.readings) == 1
