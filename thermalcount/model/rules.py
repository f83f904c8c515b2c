"""Frame rules: two tests the exported graph applies to each frame, next to the nearest centroid.

k-means finds the states the training frames made common. Two pictures are rare in them, or
too faint for the noise floor, and yet decide a count; the graph tests each frame for them
itself (:mod:`thermalcount.model.graph`), and training adds their states after the clusters' (docs/model.md,
"Third round"). Both tests look at a frame's **profile**: its warmth summed across the travel
axis, 8 values along it.

* **Two people apart** (:class:`HumpTest`, states ``apart-low``, ``apart`` and ``apart-high``,
  people 2). The profile of the model input has two humps with (nearly) nothing between
  them: two separate blobs along the travel axis, which one person never shows (0 of ~3,000
  real frames). Which state says where the pair sits - the best pair's midpoint below, on
  or above the centre line - so the counter knows at which edge a newcomer came in
  (``runtime/tracks.py``). The same test (without a floor) names such clusters ``two`` in
  ``training.meanings``.
* **Someone just outside the view** (:class:`EdgeTest`, states ``edge-low`` and ``edge-high``,
  people 1, positions 0 and 1). At 1 FPS a crossing spans about two frames, and often only
  one shows the person inside the view; the frame before or after can still show their
  edge: one faint warm line at an end of the view, under the noise floor of the model input
  (so the nearest cluster is ``empty``) but far above the frame's own noise (a 1 FPS frame is
  4-5x quieter than a 10 FPS one). Where the nearest cluster is empty, the end line is the
  warmest line and it stands ``noise_units`` times the frame's noise above the frame mean,
  the frame is that edge. At 10 FPS the noise keeps the rule quiet: people there are seen
  by the clusters at the edges anyway.

The two-humps test on a profile ``p`` (of the model input: 0 = the noise floor): two
positions ``i < j`` at least ``min_rows`` (3) apart with

* ``min(p[i], p[j]) >= peak_ratio (0.3) * max(p)``: the smaller hump is a real share of the larger;
* ``min(p[i+1:j]) <= valley_ratio (0.25) * min(p[i], p[j])``: nearly nothing between them;
* ``min(p[i], p[j]) >= min_peak`` (and > 0): for frames, the smaller hump is at least one
  clearly warm line - a warm room's amplified noise makes humps of 0.1-0.5, a person half in
  view 1.5 and more (measured on the accuracy suite, docs/model.md).

numpy only: the runtime and the exporter import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from thermalcount.errors import ModelError

SIZE = 8
#: Added outside each pair's window before taking the minimum between the humps.
OUTSIDE = 1.0e6


@dataclass(frozen=True)
class HumpTest:
    """The two-humps test with its numbers (module docstring)."""

    min_rows: int = 3
    peak_ratio: float = 0.3
    valley_ratio: float = 0.25
    min_peak: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.min_rows, int) and 1 <= self.min_rows < SIZE and 0 <= self.peak_ratio <= 1
                and 0 <= self.valley_ratio <= 1 and self.min_peak >= 0):
            raise ValueError(f"invalid two-humps test {self}")

    def pair_ends(self, size: int = SIZE) -> np.ndarray:
        """(2, P) int64: the positions i and j of every pair at least ``min_rows`` apart,
        centred pairs first: where several pairs tie (below the noise floor the profile is
        exactly 0, so pairs sharing their smaller hump often do), the first is taken, and
        which end it leans to must not depend on the order of the axis."""
        pairs = [(i, j) for i in range(size) for j in range(i + self.min_rows, size)]
        pairs.sort(key=lambda pair: (abs(pair[0] + pair[1] - (size - 1)), pair[1] - pair[0], pair[0]))
        return np.array(pairs, np.int64).reshape(-1, 2).T.copy()

    def outside_penalty(self, size: int = SIZE) -> np.ndarray:
        """(P, size) float32: 0 strictly between each pair's ends, a large number elsewhere."""
        ends = self.pair_ends(size)
        index = np.arange(size)
        inside = (index[None, :] > ends[0][:, None]) & (index[None, :] < ends[1][:, None])
        return np.where(inside, 0.0, OUTSIDE).astype(np.float32)

    def margin(self, profiles) -> np.ndarray:
        """(N, size) profiles -> (N,) float32, the best pair's margin: >= 0 where the frame
        has two humps (bar the all-zero profile). The graph computes the same numbers from the
        same float operations (``graph.hump_terms``)."""
        return self.pair_margins(profiles).max(axis=1)

    def pair_groups(self, size: int = SIZE) -> np.ndarray:
        """(P,) int64, where each pair sits: 0 toward the low end (its ends' midpoint below the
        centre), 1 centred (one hump near each end), 2 toward the high end."""
        ends = self.pair_ends(size)
        centre = ends[0] + ends[1]
        return np.where(centre < size - 1, 0, np.where(centre == size - 1, 1, 2)).astype(np.int64)

    def best_groups(self, profiles) -> np.ndarray:
        """(N,) int64: :meth:`pair_groups` of each frame's best pair (the first of equals)."""
        return self.pair_groups()[self.pair_margins(profiles).argmax(axis=1)]

    def pair_margins(self, profiles) -> np.ndarray:
        """(N, P) float32: each pair's margin (>= 0: these two positions are two humps)."""
        profiles = np.asarray(profiles, np.float32)
        profiles = profiles.reshape(-1, profiles.shape[-1])
        ends = self.pair_ends(profiles.shape[1])
        lower_end = np.minimum(profiles[:, ends[0]], profiles[:, ends[1]])
        valley = (profiles[:, None, :] + self.outside_penalty(profiles.shape[1])[None]).min(axis=2)
        top = profiles.max(axis=1, keepdims=True)
        margin = np.minimum(np.minimum(lower_end - top * np.float32(self.peak_ratio),
                                       lower_end * np.float32(self.valley_ratio) - valley),
                            lower_end - np.float32(self.min_peak))
        return margin

    def holds(self, profiles) -> np.ndarray:
        """(N, size) profiles -> (N,) bool: two separate blobs along the travel axis."""
        profiles = np.asarray(profiles, np.float32)
        profiles = profiles.reshape(-1, profiles.shape[-1])
        return (self.margin(profiles) >= 0) & (profiles.max(axis=1) > 0)

    def to_dict(self) -> dict:
        return asdict(self)


def travel_profile_matrix(travel_axis: str) -> np.ndarray:
    """(64, 8) float64 M with ``flat @ M`` = each frame's heat summed across the travel axis."""
    if travel_axis not in ("rows", "columns"):
        raise ModelError(f"the travel axis must be rows or columns, not {travel_axis!r}; re-train the model")
    matrix = np.zeros((SIZE, SIZE, SIZE))
    for r in range(SIZE):
        for c in range(SIZE):
            matrix[r, c, r if travel_axis == "rows" else c] = 1.0
    return matrix.reshape(SIZE * SIZE, SIZE)


@dataclass(frozen=True)
class EdgeTest:
    """Someone just outside the view (module docstring), on the smoothed residual in °C
    (pixels minus the frame mean, before any gain or floor)."""

    #: The end line (°C summed across the travel axis) must reach this many times the noise.
    noise_units: float = 25.0
    #: ... and at least this many °C: four of the sensor's 0.25 °C steps, so that a quiet 1 FPS
    #: frame, whose noise is below one step, does not fire on two pixels one step up.
    min_c: float = 1.0
    #: The noise: mean absolute deviation of the frame's coolest pixels (a person is warm).
    cool_pixels: int = 48

    def __post_init__(self):
        if not (self.noise_units > 0 and self.min_c > 0 and isinstance(self.cool_pixels, int)
                and 2 <= self.cool_pixels <= SIZE * SIZE):
            raise ValueError(f"invalid faint-edge test {self}")

    def noise(self, residual) -> np.ndarray:
        """(N, 64) residual °C -> (N, 1) float32 noise, floored at min_c / noise_units."""
        residual = np.asarray(residual, np.float32).reshape(-1, SIZE * SIZE)
        cool = np.partition(residual, self.cool_pixels - 1, axis=1)[:, :self.cool_pixels]
        spread = np.abs(cool - cool.mean(axis=1, keepdims=True, dtype=np.float32)).mean(axis=1, keepdims=True,
                                                                                        dtype=np.float32)
        return np.maximum(spread, np.float32(self.min_c / self.noise_units))

    def deficits(self, residual, travel_axis: str, empty) -> np.ndarray:
        """(N, 2) float32: <= 0 where the low (column 0) or high (column 1) end holds the
        frame's faint edge. ``empty``: (N,) whether each frame's nearest cluster is empty.
        The graph decides the same as a maximum over one row (``graph._edge_rule_nodes``)."""
        residual = np.asarray(residual, np.float32).reshape(-1, SIZE * SIZE)
        scaled = residual @ (travel_profile_matrix(travel_axis) / self.noise_units).astype(np.float32)
        ends = scaled[:, [0, SIZE - 1]]
        top = scaled.max(axis=1, keepdims=True)
        not_empty = 1.0 - np.asarray(empty, np.float32).reshape(-1, 1)
        return np.maximum(np.maximum(top - ends, self.noise(residual) - ends), not_empty)

    def to_dict(self) -> dict:
        return asdict(self)


#: The test on decoded centroids (°C above the background): no floor of its own.
CLUSTER_TEST = HumpTest()
#: The test on each frame, in the model input's units (0 = the noise floor; a line of one
#: person's blob sums to 3-6, a warm room's amplified noise to 0.1-0.5).
FRAME_TEST = HumpTest(min_peak=1.0)
#: Calibrated on the accuracy suite (docs/model.md, "Third round"): at 10 FPS it never fires
#: on the suite's recordings where a cluster did not already see the person.
EDGE_TEST = EdgeTest()
_TESTS = {"two humps": HumpTest, "faint edge": EdgeTest}


#: The apart states by where the pair sits (HumpTest.pair_groups): their names, and the
#: position of the pair's centre (None: one near each end).
APART_WHERE = (("low", "apart-low", 0.25), ("both", "apart", None), ("high", "apart-high", 0.75))
APART_PLACES = tuple(where for where, _, _ in APART_WHERE)


def apart_where(entry: dict) -> Optional[str]:
    """Where a states-list entry's two people apart sit ("low", "both", "high"), or None
    when it is not two people apart. Clusters say it in ``apart`` (training.meanings); the
    apart rule's states in their rule's ``where``; older models had one apart rule state
    and two-hump clusters with no position, both "both". A two-people cluster WITH a
    position and no ``apart`` is an old heat-based "two": not two people apart."""
    if "apart" in entry:
        return entry["apart"]
    rule = entry.get("rule")
    if isinstance(rule, dict) and rule.get("test") == "two humps":
        return rule.get("where", "both")
    if rule is None and entry.get("people", 0) >= 2 and entry.get("position") is None:
        return "both"
    return None


def rule_states(first_index: int, *, edges: Optional[EdgeTest] = EDGE_TEST,
                apart: Optional[HumpTest] = FRAME_TEST) -> list:
    """The states-list entries of the frame rules, numbered from ``first_index`` (the number
    of clusters): ``edge-low``, ``edge-high`` (with ``edges``), then ``apart-low``, ``apart``
    and ``apart-high`` (with ``apart``): two people apart, the pair toward the low end (one
    at the low edge, one further in), one at each end, or toward the high end. Where the
    pair sits tells the counter which edge the second person came in at."""
    entries = []
    if edges is not None:
        for side, position in (("low", 0.0), ("high", 1.0)):
            entries.append({"name": f"edge-{side}", "position": position, "people": 1,
                            "rule": dict(test="faint edge", side=side, **edges.to_dict())})
    if apart is not None:
        for where, name, position in APART_WHERE:
            entries.append({"name": name, "position": position, "people": 2,
                            "rule": dict(test="two humps", where=where, **apart.to_dict())})
    return [dict(entry, cluster=first_index + offset) for offset, entry in enumerate(entries)]


class FrameRules:
    """The frame rules a model's states list carries, and where their states are."""

    def __init__(self, states: list):
        if not isinstance(states, list) or not all(isinstance(state, dict) for state in states):
            raise ModelError("the model's states are malformed; re-train the model")
        self.clusters = sum(1 for state in states if "rule" not in state)
        self.edges: Optional[EdgeTest] = None
        self.edge_low: Optional[int] = None
        self.apart: Optional[HumpTest] = None
        #: The apart states by HumpTest.pair_groups (low, both, high); models made before
        #: the split have one apart state for all three.
        self.apart_states: Optional[tuple] = None
        self.empty = np.array([state.get("people") == 0 for state in states[:self.clusters]], bool)
        rules = states[self.clusters:]
        if any("rule" not in state for state in rules) or any("rule" in state for state in states[:self.clusters]):
            raise ModelError("the model's frame rules must come after all its clusters; re-train the model")
        edge_high = None
        apart_where = {}
        try:
            for index, state in enumerate(rules, start=self.clusters):
                parameters = dict(state["rule"])
                test = _TESTS[parameters.pop("test")]
                side = parameters.pop("side", None)
                where = parameters.pop("where", "all")
                made = test(**parameters)
                if test is HumpTest and (self.apart is None or made == self.apart) and where not in apart_where:
                    self.apart, apart_where[where] = made, index
                elif side == "low" and self.edges is None:
                    self.edges, self.edge_low = made, index
                elif side == "high" and self.edges == made and index == self.edge_low + 1:
                    edge_high = index
                else:
                    raise ValueError("edge states must come as a low and high pair")
        except (KeyError, TypeError, ValueError):
            raise ModelError("the model's frame rules are malformed; re-train the model") from None
        if self.edges is not None and edge_high is None:
            raise ModelError("the model's frame rules are malformed (edge-low without edge-high); "
                             "re-train the model")
        if set(apart_where) == {"all"}:
            self.apart_states = (apart_where["all"],) * 3
        elif apart_where:
            if set(apart_where) != set(APART_PLACES):
                raise ModelError("the model's apart states must come as low, both and high; re-train the model")
            self.apart_states = tuple(apart_where[where] for where, _, _ in APART_WHERE)
        if self.apart is not None and self.apart.min_peak <= 0:
            # In the graph a floor above 0 is what keeps an empty frame (all zeros) out.
            raise ModelError("the model's apart rule needs min_peak > 0; re-train the model")

    def __bool__(self) -> bool:
        return self.edges is not None or self.apart is not None

    def apply(self, nearest, residual_c, model_input, travel_axis: str) -> np.ndarray:
        """The states the graph gives: ``nearest`` (N,) clusters, overridden by the rules.
        ``residual_c``: (N, 64) smoothed pixels minus the frame mean (°C) - for the edges;
        ``model_input``: ``Preprocessing.apply`` of the frames - for the humps."""
        states = np.asarray(nearest, np.int64).copy()
        if self.edges is not None:
            deficits = self.edges.deficits(residual_c, travel_axis, self.empty[states])
            edge = deficits.min(axis=1) <= 0
            states[edge] = self.edge_low + deficits[edge].argmin(axis=1)
        if self.apart is not None:
            margins = self.apart.pair_margins(np.asarray(model_input, np.float32) @ travel_profile_matrix(travel_axis))
            apart = margins.max(axis=1) >= 0
            table = np.asarray(self.apart_states, np.int64)[self.apart.pair_groups()]
            states[apart] = table[margins[apart].argmax(axis=1)]
        return states

    @property
    def split_apart(self) -> bool:
        """The apart rule tells where the pair sits (three states), not just that it is apart."""
        return self.apart_states is not None and len(set(self.apart_states)) == 3


__all__ = ["HumpTest", "EdgeTest", "FrameRules", "CLUSTER_TEST", "FRAME_TEST", "EDGE_TEST", "APART_WHERE",
           "APART_PLACES", "apart_where",
           "travel_profile_matrix", "rule_states"]
