"""The frame rules: the two-humps and faint-edge tests, their states, and what the counter makes of them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thermalcount.errors import ModelError
from thermalcount.model.rules import EDGE_TEST, FRAME_TEST, FrameRules, HumpTest, rule_states, travel_profile_matrix
from thermalcount.model.preprocessing import Preprocessing
from thermalcount.model.contract import meanings_from_states
from thermalcount.runtime.counter import Counter
from thermalcount.model.loader import Model
from thermalcount.sensors.sim.simulator import simulate

CLUSTERS = [{"cluster": 0, "name": "empty", "position": None, "people": 0},
            {"cluster": 1, "name": "low", "position": 0.0, "people": 1},
            {"cluster": 2, "name": "middle", "position": 0.5, "people": 1},
            {"cluster": 3, "name": "high", "position": 1.0, "people": 1}]
STATES = CLUSTERS + rule_states(4)
MEANINGS = meanings_from_states(STATES)
EMPTY, LOW, MIDDLE, HIGH, EDGE_LOW, EDGE_HIGH, APART_LOW, APART, APART_HIGH = range(9)


def test_the_frame_humps_need_a_clearly_warm_second_hump():
    profiles = np.array([[0, 3, 4, 0, 0, 4, 3, 0],      # two people apart
                         [4.6, 0.6, 0, 0, 0, 0, 2.3, 4.7],  # one at each edge
                         [0.3, 0, 0, 0.24, 0.09, 0, 0, 0],  # a warm room's noise: humps, but faint
                         [0, 3, 6, 6, 3, 0, 0, 0],       # one person
                         [0] * 8], np.float32)
    assert FRAME_TEST.holds(profiles).tolist() == [True, True, False, False, False]
    assert HumpTest().holds(profiles).tolist() == [True, True, True, False, False]  # no floor: noise passes


def _residual(rng, noise, edge=None, warm=0.0, frames=200):
    """(frames, 64) residual °C: Gaussian noise, and ``warm`` °C on 3 pixels of line ``edge``."""
    residual = rng.normal(0.0, noise, (frames, 8, 8)).astype(np.float32)
    if edge is not None:
        residual[:, edge, 2:5] += warm
    return residual.reshape(frames, 64)


def test_a_faint_edge_fires_in_a_quiet_frame_and_not_in_a_noisy_one():
    rng = np.random.default_rng(1)
    empty = np.ones(200, bool)

    def fires(residual, nearest_empty=empty):
        deficits = EDGE_TEST.deficits(residual, "rows", nearest_empty)
        return deficits.min(axis=1) <= 0, deficits.argmin(axis=1)

    # 1 FPS noise (0.08 °C): a 1 °C edge on three pixels of the first line stands out.
    found, side = fires(_residual(rng, 0.08, edge=0, warm=1.0))
    assert found.mean() > 0.95 and np.all(side[found] == 0)
    found, side = fires(_residual(rng, 0.08, edge=7, warm=1.0))
    assert found.mean() > 0.95 and np.all(side[found] == 1)
    # 10 FPS noise (0.37 °C): the same edge is noise-sized; the rule stays quiet.
    assert fires(_residual(rng, 0.37, edge=0, warm=1.0))[0].mean() < 0.05
    # Not at an end line, or a cluster already saw someone: nothing.
    assert not fires(_residual(rng, 0.08, edge=3, warm=1.0))[0].any()
    assert not fires(_residual(rng, 0.08, edge=0, warm=1.0), np.zeros(200, bool))[0].any()
    # A frame with no noise at all does not fire on nothing (min_c).
    assert not fires(np.zeros((200, 64), np.float32))[0].any()


def test_rules_apply_in_order_and_the_humps_win():
    rules = FrameRules(STATES)
    assert (rules.clusters, rules.edge_low, rules.apart_states) == (4, EDGE_LOW, (APART_LOW, APART, APART_HIGH))
    rng = np.random.default_rng(2)
    residual = _residual(rng, 0.08, edge=7, warm=1.0, frames=5)
    model_input = np.zeros((5, 64), np.float32)
    model_input.reshape(5, 8, 8)[2, [0, 7], 2:5] = 1.5  # frame 2: two people, one at each end
    model_input.reshape(5, 8, 8)[3, [0, 4], 2:5] = 1.5  # frame 3: the pair toward the low end
    model_input.reshape(5, 8, 8)[4, [3, 7], 2:5] = 1.5  # frame 4: toward the high end
    nearest = np.array([EMPTY, MIDDLE, EMPTY, MIDDLE, HIGH])
    assert rules.apply(nearest, residual, model_input, "rows").tolist() == [EDGE_HIGH, MIDDLE, APART, APART_LOW,
                                                                           APART_HIGH]


def test_the_apart_state_says_where_the_pair_sits():
    test = FRAME_TEST
    # Pairs of positions at least 3 apart, grouped by their midpoint: below the centre (3.5),
    # on it, above it.
    ends, groups = test.pair_ends(), test.pair_groups()
    centre = ends[0] + ends[1]
    assert set(groups[centre < 7]) == {0} and set(groups[centre == 7]) == {1} and set(groups[centre > 7]) == {2}
    profiles = np.zeros((3, 8), np.float32)
    profiles[0, [0, 4]] = profiles[1, [1, 6]] = profiles[2, [3, 7]] = 3.0
    assert test.best_groups(profiles).tolist() == [0, 1, 2]


def test_old_models_with_one_apart_state_still_load():
    old = dict(rule_states(6)[3], name="apart", position=None)
    old["rule"] = {k: v for k, v in old["rule"].items() if k != "where"}
    rules = FrameRules(CLUSTERS + rule_states(4)[:2] + [old])
    assert rules.apart_states == (6, 6, 6) and not rules.split_apart


@pytest.mark.parametrize("states", [
    CLUSTERS[:2] + rule_states(2)[:1] + CLUSTERS[2:],                     # a rule before a cluster
    CLUSTERS + [dict(rule_states(4)[0], rule={"test": "three humps"})],   # unknown test
    CLUSTERS + rule_states(4)[1:2],                                        # edge-high without edge-low
    CLUSTERS + [dict(rule_states(4, edges=None)[0], rule={"test": "two humps", "min_peak": 0.0})],
])
def test_malformed_rules_are_refused(states):
    with pytest.raises(ModelError, match="rule"):
        FrameRules(states)


def test_a_model_with_malformed_rules_is_refused_on_load(tmp_path):
    import onnx

    proto = onnx.load(str(Model.load("default").path))
    meta = {p.key: p for p in proto.metadata_props}
    states = json.loads(meta["states"].value)
    states[-1]["rule"]["test"] = "three humps"
    meta["states"].value = json.dumps(states)
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="bad.onnx: the model's frame rules are malformed"):
        Model.load(tmp_path / "bad.onnx")


def test_one_noisy_edge_frame_does_not_turn_a_crossing_around():
    # 10 FPS: one frame of edge-high (noise) just before someone comes in from the low side.
    states = [EMPTY] * 10 + [EDGE_HIGH] + [EMPTY] * 2 + [LOW, LOW, MIDDLE, MIDDLE, HIGH, HIGH] + [EMPTY] * 10
    times = np.arange(len(states)) / 10.0

    def directions(**tuning):
        counter = Counter(MEANINGS, **tuning)
        return [e.direction for e in counter.process(times, states) + counter.finish()]

    assert directions() == ["in"]
    # Seen like any one-person state, the noisy edge starts the track on the high side, and
    # the walker who then goes low -> high looks like someone turning back: nothing counted.
    assert directions(edge_seconds=0.08) == []


def test_at_1_fps_an_edge_frame_gives_the_direction():
    # Each crossing shows the person inside the view once; the frame before or after, their edge.
    gap = [EMPTY] * 5
    states = gap + [EDGE_LOW, MIDDLE] + gap + [MIDDLE, EDGE_LOW] + gap + [EDGE_HIGH, LOW] + gap
    counter = Counter(MEANINGS)
    events = counter.process(np.arange(len(states), dtype=float), states) + counter.finish()
    assert [(e.direction, e.frame) for e in events] == [("in", 6), ("out", 13), ("out", 20)]
    # Without inferring the exit, edge-then-middle says nothing.
    counter = Counter(MEANINGS, infer_middle_exit=False)
    events = counter.process(np.arange(len(states), dtype=float), states) + counter.finish()
    assert [e.direction for e in events] == ["out", "out"]
    alone = [EMPTY] * 5 + [MIDDLE] + [EMPTY] * 5  # no edge: no direction, nothing counted
    counter = Counter(MEANINGS)
    assert counter.process(np.arange(len(alone), dtype=float), alone) + counter.finish() == []


@pytest.mark.slow
def test_the_default_model_finds_edges_only_next_to_people():
    model = Model.load("default", backend="numpy")
    names = [m.name for m in model.meanings]
    clean = dict(noise=0.0, quantum=0.0, fixed_pattern=0.0, drift=0.0)
    for fps, near in ((1.0, 1), (10.0, 20)):
        chunk = simulate(3000, "single", seed=11, fps=fps)
        model.start_stream(fps)
        edge = np.isin(model.infer_states(chunk.frames), [names.index("edge-low"), names.index("edge-high")])
        # The same people without noise: where someone's warmth reaches the view at all (a
        # person waiting beyond the door line shows only the edge of their body).
        quiet = simulate(3000, "single", seed=11, fps=fps, **clean).frames
        warmth = (quiet - quiet.min(axis=0)).reshape(len(quiet), -1).max(axis=1)
        present = np.convolve(warmth > 0.1, np.ones(2 * near + 1), mode="same") > 0
        # Measured: 0.89 at 1 FPS, 0.93 at 10 FPS - the rest are end lines of fixed pattern
        # the per-pixel background has not yet absorbed (it learns more slowly where people
        # pass). A lone edge is not counted (docs/counting.md); it costs nothing but a state.
        assert edge.sum() > 20 and present[edge].mean() > 0.85, fps
        if fps == 1.0:
            assert edge.mean() > 0.03  # at 1 FPS ~1 frame in 15 is only someone's edge


def test_the_profile_matrix_sums_across_the_travel_axis():
    frame = np.arange(64, dtype=np.float64).reshape(8, 8)
    np.testing.assert_array_equal(frame.reshape(1, 64) @ travel_profile_matrix("rows"), frame.sum(axis=1)[None])
    np.testing.assert_array_equal(frame.reshape(1, 64) @ travel_profile_matrix("columns"), frame.sum(axis=0)[None])
    # The edge rule needs the frame mean removed, which the centring matrix does.
    assert np.allclose((np.ones((1, 64)) @ Preprocessing(blur=0.5).centring_matrix()), 0)


def test_edge_low_without_edge_high_and_fractional_numbers_are_refused():
    edges, apart = rule_states(4)[0], rule_states(4)[2]
    with pytest.raises(ModelError, match="edge-low without edge-high"):
        FrameRules(CLUSTERS + [edges, dict(apart, cluster=5)])
    with pytest.raises(ModelError, match="malformed"):
        FrameRules(CLUSTERS + [dict(apart, rule=dict(apart["rule"], min_rows=3.5))])
    with pytest.raises(ModelError, match="malformed"):
        FrameRules(["empty", "low"])


def test_export_refuses_malformed_rules_in_one_line():
    from thermalcount.model.graph import build_graph

    rng = np.random.default_rng(0)
    weights = {"enc1.weight": rng.normal(0, .3, (32, 64)), "enc1.bias": np.zeros(32), "prelu.weight": np.full(32, .25),
               "enc2.weight": rng.normal(0, .3, (4, 32)), "enc2.bias": np.zeros(4), "centroids": rng.normal(0, 1, (4, 4))}
    for states, axis in ((CLUSTERS + rule_states(4)[:1], "rows"), (STATES, "diagonal"), ([1, 2], "rows")):
        with pytest.raises(ModelError):
            build_graph(weights, Preprocessing(), {"states": json.dumps(states), "travel_axis": axis})


def test_where_the_pair_sits_does_not_lean_to_one_end_on_ties():
    # Below the noise floor the profile is exactly 0, so pairs sharing their smaller hump tie;
    # the tie must not decide for the low end: a profile and its mirror image get mirrored
    # answers, and a symmetric one is "both" (group 1).
    rng = np.random.default_rng(3)
    profiles = np.zeros((200, 8), np.float32)
    for row in profiles:
        i, j = sorted(rng.choice(8, 2, replace=False))
        row[max(0, i - 1):i + 1] = rng.choice([2.0, 3.0])
        row[j:j + 2] = rng.choice([2.0, 3.0])
    apart = FRAME_TEST.holds(profiles)
    assert apart.sum() > 50
    groups = FRAME_TEST.best_groups(profiles[apart])
    mirrored = FRAME_TEST.best_groups(profiles[apart][:, ::-1])
    np.testing.assert_array_equal(groups, 2 - mirrored)
    assert FRAME_TEST.best_groups(np.array([[2, 2, 0, 0, 0, 0, 2, 2]], np.float32)).tolist() == [1]


def _graph_tensors(names, frames):
    """The default model's graph cut to ``names`` (its own intermediate tensors), on ``frames``."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from thermalcount.model.contract import default_model_path

    proto = onnx.load(str(default_model_path()))
    integers = {"nearest", "edge_state", "apart_state", "state"}
    del proto.graph.output[:]
    proto.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.INT64 if name in integers
                                                            else TensorProto.FLOAT, None) for name in names)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(list(names), {"frames": frames})))


@pytest.mark.slow
def test_the_graph_rules_decide_as_the_reference_on_every_simulated_family():
    # The graph's rules are formulated for few nodes (a row maximum for the edges, one Gemm of
    # terms for the pair margins); pinned here to the numpy reference on the graph's own
    # inputs to them (residual, nearest cluster, profile), so only the formulation is tested:
    # every family of the simulator, at 10 and 1 FPS, with and without its fixed pattern.
    from thermalcount.sensors.sim.scenarios import SCENARIOS

    rules = FrameRules(json.loads(Model.load("default", backend="numpy").metadata["states"]))
    parts = []
    for index, name in enumerate(sorted(SCENARIOS)):
        for fps, pattern in ((10.0, {}), (1.0, {}), (10.0, {"fixed_pattern": 0.0})):
            parts.append(simulate(600 if fps == 10.0 else 200, name, seed=300 + index, fps=fps, **pattern).frames)
    frames = np.concatenate(parts).astype(np.float32)
    got = _graph_tensors(("nearest", "residual", "profile", "pair_margins", "edge_state", "apart_state", "state"),
                         frames)
    # The pair margins: bit for bit HumpTest.pair_margins of the profile, after a "none" row.
    margins = rules.apart.pair_margins(got["profile"])
    np.testing.assert_array_equal(got["pair_margins"][:, 1:], margins)
    assert (got["pair_margins"][:, 0] < 0).all() and (got["pair_margins"][:, 0] > -1e-44).all()
    apart = margins.max(axis=1) >= 0
    table = np.asarray(rules.apart_states)[rules.apart.pair_groups()]
    np.testing.assert_array_equal(got["apart_state"], np.where(apart, table[margins.argmax(axis=1)], -1))
    # The edges: EdgeTest.deficits on the graph's residual and nearest cluster.
    deficits = rules.edges.deficits(got["residual"], "rows", rules.empty[got["nearest"]])
    edge = deficits.min(axis=1) <= 0
    np.testing.assert_array_equal(got["edge_state"], np.where(edge, rules.edge_low + deficits.argmin(axis=1), -1))
    # Apart, else the edge, else the nearest cluster; and the rules do speak in these frames.
    expected = np.where(apart, got["apart_state"], np.where(edge, got["edge_state"], got["nearest"]))
    np.testing.assert_array_equal(got["state"], expected)
    assert apart.sum() > 100 and edge.sum() > 20 and (apart & edge).sum() > 0
