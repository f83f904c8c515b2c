"""export: one fused ONNX graph, parity with torch, metadata, checker, inspect, bad input."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from tests.conftest import modules_loaded_by  # noqa: E402
from thermalcount.model.rules import FrameRules  # noqa: E402
from thermalcount.cli import cli  # noqa: E402
from thermalcount.errors import ModelError, OutputPathError  # noqa: E402
from thermalcount.model.contract import DESCRIPTIVE_METADATA, REQUIRED_METADATA  # noqa: E402
from thermalcount.model.export import export_model  # noqa: E402
from thermalcount.model.graph import build_graph  # noqa: E402
from thermalcount.model.loader import Model  # noqa: E402
from thermalcount.model.preprocessing import Preprocessing  # noqa: E402
from thermalcount.sensors.sim.simulator import simulate  # noqa: E402
from thermalcount.training.data import ArraySource  # noqa: E402
from thermalcount.model.trained_file import load_model, save_model  # noqa: E402
from thermalcount.training.train import TrainOptions, train_model  # noqa: E402

ALLOWED_OPS = set("Reshape Flatten Identity Cast Add Sub Mul Div Max Min Relu PRelu Clip Abs Sqrt Gemm MatMul "
                  "ReduceMean ReduceMin ReduceMax ReduceSum ReduceSumSquare ReduceL1 TopK ArgMin ArgMax Split Concat Squeeze "
                  "Unsqueeze Slice Gather Transpose GreaterOrEqual Where".split())
SPECS = {
    "default": Preprocessing(),
    "linear": Preprocessing(background="mean", clip_low=None, clip_high=None, scale=2.0),
    "lowest": Preprocessing(background="lowest", lowest_pixels=24, clip_low=0.3, clip_high=None),
    "lowest48": Preprocessing(background="lowest", lowest_pixels=48, clip_low=0.75, clip_high=2.0),
    # the default model's: smoothing in the centring Gemm, TopK sort, contrast Gemm/Max/Div
    "sorted": Preprocessing(lateral_sort="rows", blur=0.5, contrast_skin=33.0, clip_low=1.0),
    # the current default model's: the contrast gain before the floor (clip bounds in 21 °C
    # units, the floor's shift folded into the first layer's bias)
    "gain_first": Preprocessing(lateral_sort="rows", blur=0.5, contrast_skin=33.0, clip_low=0.8, gain_first=True,
                                pattern_seconds=60.0),
}


def _train(spec, clusters=4, seed=3):
    sources = [ArraySource(simulate(6000, "single", seed=seed).frames, "a"),
               ArraySource(simulate(6000, "busy", seed=seed + 1).frames, "b")]
    return train_model(sources, TrainOptions(latent=4, clusters=clusters, epochs=3, seed=seed, preprocessing=spec))


# The fast subset keeps the plain default spec and the current default model's (gain_first);
# each spec trains a model (about a second with its tests), so the others run with -m slow.
FAST_SPECS = {"default", "gain_first"}


@pytest.fixture(scope="module", params=[pytest.param(name, marks=() if name in FAST_SPECS else pytest.mark.slow)
                                        for name in sorted(SPECS)])
def trained(request):
    return request.param, _train(SPECS[request.param])


@pytest.fixture(scope="module")
def frames():
    # Held-out frames, incl. a warmer room and drift, so every preprocessing branch is exercised.
    # And a 1 FPS doorway without the fixed pattern (as the runtime's per-pixel background
    # leaves it), whose quiet frames show faint edges: the edge rule's case.
    parts = [simulate(5000, "mixed", seed=99).frames, simulate(3000, "warm_room", seed=98).frames,
             simulate(3000, "drift", seed=97).frames,
             simulate(1000, "single", seed=96, fps=1.0, fixed_pattern=0.0).frames]
    return np.concatenate(parts)


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_onnxruntime_matches_torch_on_12000_frames(trained, frames):
    import torch

    from thermalcount.training.autoencoder import FrameAutoencoder, FrameClassifier

    name, result = trained
    model = result.model
    graph = build_graph(model.weights, model.preprocessing, model.onnx_metadata())
    state, distances, embedding = _session(graph).run(["state", "distances", "embedding"], {"frames": frames})
    classifier = FrameClassifier(FrameAutoencoder.from_weights(model.weights), model.weights["centroids"],
                                 model.preprocessing)
    with torch.inference_mode():
        t_state, t_distances, t_embedding = (t.numpy() for t in classifier(torch.from_numpy(frames)))
    assert len(frames) >= 10_000
    assert state.dtype == np.int64 and state.shape == (len(frames),)
    # The frame rules, computed apart from the graph: numpy preprocessing and FrameRules.
    rules = FrameRules(model.states)
    assert (rules.apart is None) == (name == "linear")  # no noise floor, no apart rule
    assert (rules.edges is None) == name.startswith("lowest")  # the edges need the mean background
    spec = model.preprocessing
    expected = rules.apply(t_state, frames.reshape(-1, 64) @ spec.centring_matrix().astype(np.float32),
                           spec.apply(frames), model.travel_axis)
    apart = None if rules.apart is None else set(rules.apart_states)
    edges = None if rules.edges is None else {rules.edge_low, rules.edge_low + 1}
    for taken in (apart, edges):
        if taken is not None:  # each rule is taken by some frames, and not by most
            assert 10 < np.isin(expected, list(taken)).sum() < 0.2 * len(frames)
    # float32 rounding (ONNX vs numpy sums) may only tip frames that sit on a rule's threshold.
    differ = np.flatnonzero(state != expected)
    assert len(differ) <= 3, (differ, state[differ], expected[differ])
    np.testing.assert_array_equal(state[state < model.clusters], t_state[state < model.clusters])
    np.testing.assert_allclose(distances, t_distances, atol=1e-4, rtol=0)
    np.testing.assert_allclose(embedding, t_embedding, atol=1e-4, rtol=0)
    # The states are actually used: a graph that always answered 0 would pass nothing above.
    # (Each rule's states count as one: the apart rule's three (where the pair sits) and the
    # edge pair; pairs toward one end, or edges at one end, can be rare in these frames.)
    used = set(np.unique(state).tolist())
    groups = [group for group in (apart, edges) if group]
    assert used - set().union(*groups) == set(range(model.clusters))
    assert all(used & group for group in groups)


def test_graph_is_fused_checked_and_uses_only_allowed_ops(trained):
    name, result = trained
    model = result.model
    graph = build_graph(model.weights, model.preprocessing, model.onnx_metadata())
    onnx.checker.check_model(graph, full_check=True)
    ops = [node.op_type for node in graph.graph.node]
    assert set(ops) <= ALLOWED_OPS
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= 17
    producer = {out: node for node in graph.graph.node for out in node.output}
    # Fused: the distances come from the hidden layer in one Gemm (second Linear folded in)...
    partial = producer["partial_distances"]
    assert partial.op_type == "Gemm" and partial.input[0] == "hidden"
    nearest = producer["state"]
    if nearest.op_type == "Max":  # frame rules: Max(nearest, each rule's state or -1)
        assert all(producer[rule].op_type == "Gather" for rule in nearest.input[1:])
        nearest = producer[nearest.input[0]]
    assert nearest.op_type == "ArgMin" and nearest.input[0] == "partial_distances"
    if name != "linear":
        assert producer["profile"].input[0] == "clipped"  # the apart rule reads the model input
    # ...and linear preprocessing is folded into the first Gemm, which reads the input directly.
    first = producer["hidden_linear"]
    assert (first.input[0] == "pixels") == (name == "linear")
    # The apart rule: 13 nodes (not without a floor); the edge rule: 9 (+1 Gemm where the
    # centring Gemm shifts; not with the lowest background); one Max joins them to the nearest.
    rule_nodes = {"linear": 10 + 1, "default": 13 + 10 + 1, "lowest": 13 + 1, "lowest48": 13 + 1, "sorted": 13 + 10 + 1,
                  "gain_first": 13 + 9 + 1}[name]
    expected = {"linear": 8, "default": 10, "lowest": 12, "lowest48": 12, "sorted": 16, "gain_first": 16}[name]
    expected += rule_nodes
    assert len(ops) == expected, ops


def test_dynamic_batch_axis(trained, frames):
    model = trained[1].model
    session = _session(build_graph(model.weights, model.preprocessing, model.onnx_metadata()))
    one = session.run(["state"], {"frames": frames[:1]})[0]
    many = session.run(["state"], {"frames": frames[:257]})[0]
    assert one.shape == (1,) and many.shape == (257,) and one[0] == many[0]


@pytest.fixture(scope="module")
def small():
    return _train(Preprocessing(), clusters=3)


def test_metadata_round_trip(tmp_path, small):
    result = small
    save_model(result.model, tmp_path / "m.npz")
    export_model(tmp_path / "m.npz", tmp_path / "m.onnx")
    graph = onnx.load_model(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in graph.metadata_props}
    # The exporter writes every key of the contract, and the runtime reads it back.
    assert set(meta) == set(REQUIRED_METADATA + DESCRIPTIVE_METADATA)
    assert Model.load(tmp_path / "m.onnx").metadata == meta
    assert meta["format"] == "thermalcount-model/1" and meta["input_units"] == "celsius"
    assert json.loads(meta["states"]) == result.model.states
    assert meta["travel_axis"] == result.model.travel_axis == "rows"
    assert (meta["latent"], meta["clusters"]) == ("4", "3")
    training = json.loads(meta["training"])
    assert [f["name"] for f in training["files"]] == ["a", "b"]
    assert [f["frames"] for f in training["files"]] == [6000, 6000]
    assert all(len(f["sha256"]) == 64 for f in training["files"])
    assert training["seed"] == 3
    assert Preprocessing(**json.loads(meta["preprocessing"])) == result.model.preprocessing
    names = {s["name"] for s in json.loads(meta["states"])}
    assert "empty" in names and {"low", "high"} <= names


def test_export_and_inspect_cli(tmp_path, small):
    result = small
    save_model(result.model, tmp_path / "m.npz")
    runner = CliRunner()
    out = runner.invoke(cli, ["export", str(tmp_path / "m.npz"), "--out", str(tmp_path / "m.onnx")])
    assert out.exit_code == 0, out.output
    assert "34 nodes" in out.output  # 10, 10 for the edge rule, 13 for the apart rule and their Max
    again = runner.invoke(cli, ["export", str(tmp_path / "m.npz"), "--out", str(tmp_path / "m.onnx")])
    assert again.exit_code != 0 and "--overwrite" in again.output
    shown = runner.invoke(cli, ["inspect", str(tmp_path / "m.onnx")])
    assert shown.exit_code == 0, shown.output
    for text in ("travel_axis: rows", "empty", "frames: float ['N', 8, 8]", "state: int64 ['N']", "34 nodes",
                 "3: edge-low   position 0.00  people 1 (rule: faint edge, cool_pixels 48, min_c 1, "
                 "noise_units 25, side low)",
                 "5: apart-low  position 0.25  people 2 (rule: two humps, min_peak 1, min_rows 3",
                 "6: apart      position -     people 2 (rule: two humps", "where both)", "where high)"):
        assert text in shown.output
    as_json = json.loads(runner.invoke(cli, ["inspect", str(tmp_path / "m.npz"), "--json"]).output)
    assert as_json["metadata"]["states"] == result.model.states


@pytest.mark.slow
def test_export_never_imports_torch(tmp_path, small):
    result = small
    save_model(result.model, tmp_path / "m.npz")
    code = (
        "import sys\n"
        "from thermalcount.model.export import export_model\n"
        f"export_model({str(tmp_path / 'm.npz')!r}, {str(tmp_path / 'x.onnx')!r})\n"
    )
    assert modules_loaded_by(code) == []
    assert (tmp_path / "x.onnx").stat().st_size > 1000


def test_not_a_model_is_one_line_error(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a thermalcount model file"):
        load_model(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelError, match="not a thermalcount model file"):
        load_model(plain)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __metadata__=np.array([{"format": "thermalcount-trained/1"}], dtype=object))
    with pytest.raises(ModelError):
        load_model(pickled)  # allow_pickle=False: an object array is refused, not executed
    with pytest.raises(ModelError, match="not an ONNX model"):
        Model.load(text.rename(tmp_path / "fake.onnx"))
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "missing.npz")
    out = CliRunner().invoke(cli, ["export", str(plain), "--out", str(tmp_path / "o.onnx")])
    assert out.exit_code == 1 and out.output.startswith("Error: ") and len(out.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.onnx").exists()


def test_model_file_is_plain_arrays(tmp_path, small):
    result = small
    save_model(result.model, tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype in (np.float32, np.uint8) for name in archive.files)
    with pytest.raises(OutputPathError):
        save_model(result.model, tmp_path / "m.npz")


@pytest.mark.parametrize("damage", ["nan-weight", "inf-weight", "state-cluster-out-of-range", "states-missing"])
def test_export_refuses_a_damaged_model(tmp_path, small, damage):
    """Export runs the validator count and run use: it never writes a model they refuse."""
    import copy

    model = copy.deepcopy(small.model)
    if damage.endswith("weight"):
        name = sorted(model.weights)[0]
        model.weights[name] = np.full_like(model.weights[name], np.nan if damage == "nan-weight" else np.inf)
        hint = "NaN or infinite weights"
    elif damage == "state-cluster-out-of-range":
        model.states[1] = dict(model.states[1], cluster=99)
        hint = "state"
    else:
        model.states = model.states[:1]
        hint = "state"
    save_model(model, tmp_path / "m.npz")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and hint in errors[0] and "re-" in errors[0], result.output
    assert not (tmp_path / "m.onnx").exists()
