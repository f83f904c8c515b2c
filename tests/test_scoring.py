"""Scoring counted events against ground truth."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from thermalcount.runtime.counter import CountEvent
from thermalcount.evaluation.scoring import match_times, score_events
from thermalcount.store import StoredEvent


def test_perfect_count():
    truth = [StoredEvent(10, 1.0, "in"), StoredEvent(50, 5.0, "out")]
    counted = [CountEvent(12, 1.2, "in", 1), CountEvent(49, 4.9, "out", 0)]
    score = score_events(counted, truth)
    assert score["overall"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 2, "fp": 0, "fn": 0}
    assert score["net_count_error"] == 0


def test_direction_must_match_and_time_within_tolerance():
    truth = [{"time": 10.0, "direction": "in"}, {"time": 20.0, "direction": "in"}]
    counted = [{"time": 10.5, "direction": "out"},   # wrong direction: fp (out) and fn (in)
               {"time": 21.5, "direction": "in"},    # exactly at the tolerance: a match
               {"time": 30.0, "direction": "in"}]    # nothing near: fp
    score = score_events(counted, truth)
    assert (score["in"]["tp"], score["in"]["fp"], score["in"]["fn"]) == (1, 1, 1)
    assert (score["out"]["tp"], score["out"]["fp"], score["out"]["fn"]) == (0, 1, 0)
    assert score["overall"]["precision"] == pytest.approx(1 / 3)
    assert score["overall"]["recall"] == pytest.approx(1 / 2)
    assert score["overall"]["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert score["net_count_error"] == (2 - 1) - 2
    assert score_events(counted, truth, tolerance=1.49)["in"]["tp"] == 0


def test_each_event_matches_once():
    truth = [{"time": 10.0, "direction": "in"}]
    counted = [{"time": 9.8, "direction": "in"}, {"time": 10.2, "direction": "in"}]
    score = score_events(counted, truth)
    assert (score["in"]["tp"], score["in"]["fp"]) == (1, 1)


def test_greedy_choice_would_lose_a_match_but_the_matching_does_not():
    # Counted 1.0 could take truth 0.0 or 2.4; taking the nearer would strand 2.4's partner.
    assert match_times([1.0, 3.8], [0.0, 2.4], tolerance=1.5) == 2
    assert match_times([1.0], [0.0, 1.2], tolerance=1.5) == 1


def test_empty_conventions():
    nothing = score_events([], [])
    assert nothing["overall"]["precision"] == nothing["overall"]["recall"] == 1.0
    missed = score_events([], [{"time": 1.0, "direction": "in"}])
    assert missed["overall"]["recall"] == 0.0 and missed["overall"]["f1"] == 0.0
    with pytest.raises(ValueError):
        score_events([{"time": 1.0, "direction": "sideways"}], [])


def _brute_force(predicted, truth, tolerance):
    best = 0
    for size in range(min(len(predicted), len(truth)), 0, -1):
        for chosen in itertools.combinations(range(len(predicted)), size):
            for partners in itertools.permutations(range(len(truth)), size):
                if all(abs(predicted[i] - truth[j]) <= tolerance for i, j in zip(chosen, partners)):
                    return size
    return best


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0, 10, allow_nan=False), max_size=5),
       st.lists(st.floats(0, 10, allow_nan=False), max_size=5))
def test_matching_is_maximal(predicted, truth):
    assert match_times(predicted, truth, 1.5) == _brute_force(predicted, truth, 1.5)
