"""Score counted events against ground truth: precision, recall, F1 within a time tolerance.

A counted event matches a true event of the same direction when their times differ by at
most ``tolerance`` seconds (1.5 s by default); each event matches at most once. On a line
with one fixed tolerance the greedy two-pointer walk in time order finds a maximum matching
(an earlier counted event never does better by skipping the earliest truth it can reach), so
the result is optimal, not merely greedy.

Conventions for empty sets: precision is 1.0 when nothing was counted, recall is 1.0 when
nothing happened, and F1 is 0.0 when precision + recall is 0.
"""

from __future__ import annotations

from typing import Iterable

DEFAULT_TOLERANCE_S = 1.5
DIRECTIONS = ("in", "out")


def match_times(predicted: list, truth: list, tolerance: float = DEFAULT_TOLERANCE_S) -> int:
    """Size of a maximum one-to-one matching of two time lists within ``tolerance``."""
    predicted, truth = sorted(predicted), sorted(truth)
    i = j = matched = 0
    while i < len(predicted) and j < len(truth):
        if predicted[i] < truth[j] - tolerance:
            i += 1
        elif predicted[i] > truth[j] + tolerance:
            j += 1
        else:
            matched += 1
            i += 1
            j += 1
    return matched


def _rates(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _time_and_direction(event) -> tuple:
    if isinstance(event, dict):
        return float(event["time"]), str(event["direction"])
    return float(event.time), str(event.direction)


def score_events(predicted: Iterable, truth: Iterable,
                 tolerance: float = DEFAULT_TOLERANCE_S) -> dict:
    """Score counted events against true ones (objects or dicts with time and direction).

    Returns ``{"tolerance_s", "in": {...}, "out": {...}, "overall": {...},
    "true_entries", "true_exits", "counted_entries", "counted_exits", "net_count_error"}``
    where each of in/out/overall holds precision, recall, f1, tp, fp, fn, and
    ``net_count_error`` = (counted in - counted out) - (true in - true out).
    """
    predicted = [_time_and_direction(e) for e in predicted]
    truth = [_time_and_direction(e) for e in truth]
    for _, direction in predicted + truth:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction {direction!r} is neither 'in' nor 'out'")
    result: dict = {"tolerance_s": float(tolerance)}
    totals = [0, 0, 0]
    counts = {}
    for direction in DIRECTIONS:
        p = [t for t, d in predicted if d == direction]
        g = [t for t, d in truth if d == direction]
        tp = match_times(p, g, tolerance)
        fp, fn = len(p) - tp, len(g) - tp
        result[direction] = _rates(tp, fp, fn)
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        counts[direction] = (len(p), len(g))
    result["overall"] = _rates(*totals)
    result["counted_entries"], result["true_entries"] = counts["in"]
    result["counted_exits"], result["true_exits"] = counts["out"]
    result["net_count_error"] = ((counts["in"][0] - counts["out"][0])
                                 - (counts["in"][1] - counts["out"][1]))
    return result


def score_result(result, tolerance: float = DEFAULT_TOLERANCE_S):
    """The score of an offline count (:class:`~thermalcount.runtime.offline.CountResult`)
    against its recording's ground truth, or None when the recording has none."""
    if not result.has_truth:
        return None
    return score_events(result.events, result.truth, tolerance)


__all__ = ["score_events", "score_result", "match_times", "DEFAULT_TOLERANCE_S"]
