"""Give every cluster a meaning - no labels needed.

The travel axis they are measured along is found by ``thermalcount.model.travel_axis``
(``count`` and ``run`` find it too, without torch).

* Each centroid is **decoded** back into a frame. The one with the least heat is ``empty``.
  For the others, ``position`` is the blob's heat-weighted centre along the travel axis
  (0 = low-index edge, 1 = high-index edge). The lowest is ``low``, the highest ``high``;
  clusters in between are ``middle`` (or ``low``/``high`` with a suffix when near an edge).
  Heat never makes a cluster ``two``: a real person in mid-view carries 2.6x the heat of
  the same person half in view at the edge (thermal-scenes.md), so "more heat" named lone
  walkers "two" and counted them twice.
* A cluster whose heat along the travel axis has **two humps** (two peaks at least
  3 rows apart, nearly nothing between them: ``thermalcount.model.rules``) is ``two`` as well, whatever its
  heat: two people apart in the view. Its heat-weighted centre says nothing about either, so
  its position is None; ``apart`` says where the pair sits, as the graph's apart rule does
  (``thermalcount.model.rules.HumpTest.pair_groups``): ``low`` (one at the low edge, one further in),
  ``both`` (one near each end) or ``high``. The counter follows the two as tracks
  (``thermalcount.runtime.tracks``).
"""

from __future__ import annotations

import numpy as np

from thermalcount.model.contract import TRAVEL_AXES
from thermalcount.model.rules import APART_PLACES, CLUSTER_TEST
from thermalcount.model.travel_axis import blob_centres
from thermalcount.model.travel_axis import warmth as _warmth

HEAT_MARGIN_C = 0.5  # °C above a decoded frame's median before a pixel counts as warm
EMPTY_HEAT_FRACTION = 0.25


def two_humps(profile) -> bool:
    """True when a heat profile along the travel axis shows two separate blobs
    (thermalcount.model.rules: the graph's apart rule runs the same test on each frame, with a
    floor for the smaller hump that a decoded centroid does not need)."""
    return bool(CLUSTER_TEST.holds(np.asarray(profile, np.float32)[None])[0])


def assign_meanings(decoded_c: np.ndarray, travel_axis: str) -> list:
    """Decoded centroids (K, 8, 8) in °C above background -> states list in cluster order."""
    if travel_axis not in TRAVEL_AXES:
        raise ValueError(f"travel axis must be rows or columns, not {travel_axis!r}")
    frames = np.asarray(decoded_c, np.float64).reshape(-1, 8, 8)
    k = len(frames)
    rows, cols, heat = blob_centres(frames, HEAT_MARGIN_C)
    along = rows if travel_axis == "rows" else cols
    empty = int(np.argmin(heat))
    # More clusters than the scene has: k-means may split the empty scenes (rooms, noise).
    # A cluster with a small fraction of the warmest cluster's heat is empty too, so that it
    # never counts as a person - as long as two person clusters (low, high) remain.
    # Measured against the median cluster, not the warmest: with `two` clusters the warmest
    # holds two people, and a faint edge cluster (a person half in view) must stay a person.
    typical = float(np.median(np.delete(heat, empty)))
    extra_empty = [c for c in np.argsort(heat) if c != empty and heat[c] < EMPTY_HEAT_FRACTION * typical]
    extra_empty = [int(c) for c in extra_empty][: max(0, k - 3)]
    empties = [empty] + extra_empty
    others = [c for c in range(k) if c not in empties]
    position = {c: (float(np.clip(along[c] / 7.0, 0.0, 1.0)) if np.isfinite(along[c]) else 0.5) for c in others}

    profiles = _warmth(frames, HEAT_MARGIN_C).sum(axis=2 if travel_axis == "rows" else 1)
    two = {c for c in others if two_humps(profiles[c])}
    if len(others) - len(two) < 2:
        two = set()  # a low and a high one-person state must remain
    places = {c: APART_PLACES[int(CLUSTER_TEST.best_groups(profiles[c][None])[0])] for c in two}
    singles = sorted((c for c in others if c not in two), key=lambda c: position[c])

    names = {c: "empty" for c in empties}
    for rank, c in enumerate(singles):
        if rank == 0:
            names[c] = "low"
        elif rank == len(singles) - 1:
            names[c] = "high"
        else:
            names[c] = "low" if position[c] < 1 / 3 else "high" if position[c] > 2 / 3 else "middle"
    for c in two:
        names[c] = "two"
    # Repeated names get suffixes in order of position: low, low-2, ...
    used: dict = {}
    states = []
    for c in sorted(range(k), key=lambda c: (c not in empties, empties.index(c) if c in empties else 0,
                                             position.get(c, -1.0))):
        base = names[c]
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}-{used[base]}"
        state = {"cluster": c, "name": name,
                 "position": None if c in empties or c in two else round(position[c], 4),
                 "people": 0 if c in empties else 2 if c in two else 1}
        if c in two:
            state["apart"] = places[c]
        states.append(state)
    return sorted(states, key=lambda s: s["cluster"])


def canonical_order(states: list) -> list:
    """Cluster indices in a human order: empty, then by position, then two-people clusters."""
    def key(state):
        people = state["people"]
        return (people == 2, people != 0, state["position"] if state["position"] is not None else -1.0,
                state["name"])
    return [s["cluster"] for s in sorted(states, key=key)]
