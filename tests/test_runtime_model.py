"""The runtime model: contract checks on load, and both backends agreeing on every output.

Graphs are built here with onnx.helper following docs/architecture.md (the folded graph, and
one graph per operator of the contract's list), plus the exporter's own graph and the
embedded default model when they are present.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import modules_loaded_by, run_python
from thermalcount.errors import ModelError
from thermalcount.model.contract import REQUIRED_METADATA, StateMeaning, default_model_path, exported_metadata
from thermalcount.model.loader import Model
from thermalcount.model.numpy_backend import SUPPORTED_OPS

MEANINGS = [
    {"cluster": 0, "name": "empty", "position": None, "people": 0},
    {"cluster": 1, "name": "low", "position": 0.15, "people": 1},
    {"cluster": 2, "name": "middle", "position": 0.5, "people": 1},
    {"cluster": 3, "name": "high", "position": 0.85, "people": 1},
    {"cluster": 4, "name": "two", "position": 0.5, "people": 2},
]
# float32 sums in another order: distances reach ~15 with 21 states, so 1e-5 absolute is
# a few float32 steps of the larger ones.
RTOL = ATOL = 5e-5


def metadata(meanings=MEANINGS, latent_size=4, **overrides) -> dict:
    """What export writes for these states (None in ``overrides``: the key left out)."""
    meta = exported_metadata(version="0.1.0", states=meanings, travel_axis="rows", latent=latent_size,
                             clusters=len(meanings), training={}, created="2026-01-01T00:00:00Z",
                             preprocessing={})
    meta.update(overrides)
    return {k: v for k, v in meta.items() if v is not None}


def contract_model(nodes, initializers, *, latent=4, meanings=MEANINGS, opset=17, meta=None,
                   input_type=TensorProto.FLOAT, input_shape=("N", 8, 8), input_name="frames"):
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
        [helper.make_tensor_value_info("state", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("distances", TensorProto.FLOAT, ["N", len(meanings)]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", latent])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    helper.set_model_props(model, meta if meta is not None else metadata(meanings, latent))
    return model


def folded_model(seed=0, hidden=32, latent=4, meanings=MEANINGS, **kw):
    """The folded graph of performance.md: Gemm, PRelu, one distance Gemm, ArgMin."""
    rng = np.random.default_rng(seed)
    k = len(meanings)
    w1 = rng.normal(0, 0.2, (64, hidden)).astype(np.float32)
    # The bias folds in "subtract 21 °C" so that doorway frames spread over the clusters.
    b1 = (rng.normal(0, 0.1, hidden) - 21.0 * w1.sum(axis=0)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (hidden, latent)).astype(np.float32)
    b2 = rng.normal(0, 0.1, latent).astype(np.float32)
    centroids = rng.normal(0, 1, (k, latent)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (np.array([-1, 64], np.int64), "shape"), (w1, "w1"), (b1, "b1"),
        (np.full(hidden, 0.25, np.float32), "slope"), (w2, "w2"), (b2, "b2"),
        ((-2 * w2 @ centroids.T).astype(np.float32), "wd"),
        ((-2 * b2 @ centroids.T + (centroids ** 2).sum(1)).astype(np.float32), "bd")]]
    nodes = [
        helper.make_node("Reshape", ["frames", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h0"]),
        helper.make_node("PRelu", ["h0", "slope"], ["h"]),
        helper.make_node("Gemm", ["h", "wd", "bd"], ["partial"]),
        helper.make_node("ArgMin", ["partial"], ["state"], axis=1, keepdims=0),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["embedding"]),
        helper.make_node("ReduceSumSquare", ["embedding"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Add", ["partial", "norm"], ["distances"]),
    ]
    return contract_model(nodes, inits, latent=latent, meanings=meanings, **kw)


def save(model, path) -> Path:
    path = Path(path)
    path.write_bytes(model.SerializeToString())
    return path


def doorway_frames(n=600, seed=3) -> np.ndarray:
    """Realistic frames: 21 °C room, fixed pattern, noise, 0.25 °C steps, a warm blob now and then."""
    rng = np.random.default_rng(seed)
    pattern = rng.normal(0, 0.7, (8, 8))
    frames = 21 + pattern + rng.normal(0, 0.37, (n, 8, 8))
    rows = rng.integers(0, 7, n)
    cols = rng.integers(0, 7, n)
    for i in range(0, n, 2):
        frames[i, rows[i]:rows[i] + 2, cols[i]:cols[i] + 2] += rng.uniform(2, 5)
    frames[::7] -= 3.0  # a few frames below zero offset for Cast/Abs/Relu to matter
    return (np.round(frames * 4) / 4).astype(np.float32)


def assert_backends_agree(path, frames):
    ort_model = Model.load(path, backend="onnxruntime")
    np_model = Model.load(path, backend="numpy")
    assert (ort_model.backend, np_model.backend) == ("onnxruntime", "numpy")
    # A model with a per-pixel background remembers the stream: each pass is a new stream.
    def fresh(*models):
        for model in models:
            model.start_stream()

    fresh(ort_model, np_model)
    a, b = ort_model.infer(frames), np_model.infer(frames)
    np.testing.assert_array_equal(a.state, b.state)
    assert a.state.dtype == b.state.dtype == np.int64
    np.testing.assert_allclose(b.distances, a.distances, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(b.embedding, a.embedding, rtol=RTOL, atol=ATOL)
    fresh(ort_model, np_model)
    np.testing.assert_array_equal(ort_model.infer_states(frames), a.state)
    np.testing.assert_array_equal(np_model.infer_states(frames), a.state)
    fresh(ort_model, np_model)
    for frame, state in zip(frames[:40], a.state[:40]):
        assert ort_model.infer_one(frame) == state
        assert np_model.infer_one(frame) == state
    return a


# ------------------------------------------------------------------------ the folded graph


def test_folded_graph_backends_agree_and_states_vary(tmp_path):
    path = save(folded_model(), tmp_path / "m.onnx")
    result = assert_backends_agree(path, doorway_frames(3000))
    assert len(np.unique(result.state)) >= 2  # the test is not trivially all one state


def test_batches_longer_than_a_block_and_single_frames(tmp_path):
    path = save(folded_model(seed=5), tmp_path / "m.onnx")
    frames = doorway_frames(1000)
    model = Model.load(path, backend="numpy")
    model._impl.block_frames = 64  # several blocks, one partial
    whole = Model.load(path, backend="onnxruntime").infer(frames)
    np.testing.assert_array_equal(model.infer(frames).state, whole.state)
    np.testing.assert_array_equal(model.infer_states(frames), whole.state)
    assert model.infer(frames[:0]).state.shape == (0,)


def test_loaded_model_exposes_metadata(tmp_path):
    path = save(folded_model(), tmp_path / "m.onnx")
    model = Model.load(path)
    assert model.backend == "onnxruntime"  # auto with onnxruntime installed
    assert model.meanings[1] == StateMeaning(1, "low", 0.15, 1)
    assert model.meanings[0].position is None
    assert (model.travel_axis, model.latent, model.clusters) == ("rows", 4, 5)
    assert model.metadata["format"] == "thermalcount-model/1"


# --------------------------------------------------------------- one graph per operator
# Each builds flat (N, 64) -> emb (N, 4) with the operator, then the same tail: distances to
# four centroids by Unsqueeze/Sub/ReduceSumSquare and state by ArgMin. ``flat`` is the frame
# minus 21 °C, as the real graph centres its input: sums of raw °C values would lose more to
# float32 rounding (in either backend) than the 1e-5 the backends must agree within.


def _c(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype), name)


def _w(rng, name, shape):
    return _c(name, rng.normal(0, 0.3, shape))


def _op_graph(op, rng):
    n, i = helper.make_node, []
    if op == "Gemm":
        i = [_w(rng, "wt", (4, 64)), _w(rng, "b", (4,))]
        return [n("Gemm", ["flat", "wt", "b"], ["emb"], alpha=0.5, beta=2.0, transB=1)], i
    if op == "MatMul":
        return [n("MatMul", ["flat", "w"], ["emb"])], [_w(rng, "w", (64, 4))]
    if op == "Reshape":
        i = [_c("s", [0, 16, 4], np.int64), _c("ax", [1], np.int64)]
        return [n("Reshape", ["flat", "s"], ["r"]), n("ReduceSum", ["r", "ax"], ["emb"], keepdims=0)], i
    if op == "Flatten":
        return [n("Reshape", ["flat", "s"], ["cube"]), n("Flatten", ["cube"], ["f"], axis=1),
                n("MatMul", ["f", "w"], ["emb"])], [_c("s", [-1, 8, 8], np.int64), _w(rng, "w", (64, 4))]
    if op == "Identity":
        return [n("Identity", ["flat"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], [_w(rng, "w", (64, 4))]
    if op == "Cast":
        # float -> int32 truncates toward zero, negative values included.
        return [n("Cast", ["flat"], ["i"], to=TensorProto.INT32),
                n("Cast", ["i"], ["f"], to=TensorProto.FLOAT), n("MatMul", ["f", "w"], ["emb"])], \
            [_w(rng, "w", (64, 4))]
    if op in ("Add", "Sub", "Mul", "Div"):
        const = rng.uniform(0.5, 2.0, 64)
        return [n(op, ["flat", "k"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], \
            [_c("k", const), _w(rng, "w", (64, 4))]
    if op in ("Max", "Min"):
        return [n(op, ["flat", "k1", "k2"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], \
            [_c("k1", rng.normal(0, 1, 64)), _c("k2", [[1.0]]), _w(rng, "w", (64, 4))]
    if op in ("Relu", "Abs"):
        return [n("Sub", ["flat", "k"], ["d"]), n(op, ["d"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], \
            [_c("k", [0.5]), _w(rng, "w", (64, 4))]
    if op == "Sqrt":
        return [n("Abs", ["flat"], ["a"]), n("Sqrt", ["a"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], \
            [_w(rng, "w", (64, 4))]
    if op == "PRelu":
        # Slopes outside [0, 1] take the general path; the second PRelu the max() path.
        return [n("Sub", ["flat", "k"], ["d"]), n("PRelu", ["d", "s1"], ["p"]),
                n("PRelu", ["p", "s2"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], \
            [_c("k", [0.5]), _c("s1", rng.uniform(-2, 2, 64)), _c("s2", rng.uniform(0, 1, 64)),
             _w(rng, "w", (64, 4))]
    if op == "Clip":
        return [n("Sub", ["flat", "k"], ["d"]), n("Clip", ["d", "lo", "hi"], ["c1"]),
                n("Clip", ["d", "", "hi"], ["c2"]), n("Add", ["c1", "c2"], ["f"]),
                n("MatMul", ["f", "w"], ["emb"])], \
            [_c("k", [0.5]), _c("lo", 0.5), _c("hi", 2.5), _w(rng, "w", (64, 4))]
    if op in ("ReduceMean", "ReduceMin", "ReduceMax", "ReduceSumSquare", "ReduceSum", "ReduceL1"):
        i = [_c("s", [-1, 4, 16], np.int64), _c("ax", [-1], np.int64), _c("sq", [2], np.int64)]
        if op == "ReduceSum":  # opset 13+: axes is an input
            return [n("Reshape", ["flat", "s"], ["r"]), n(op, ["r", "ax"], ["k"], keepdims=1),
                    n("Squeeze", ["k", "sq"], ["emb"])], i
        return [n("Reshape", ["flat", "s"], ["r"]), n(op, ["r"], ["k"], axes=[2], keepdims=1),
                n("Squeeze", ["k", "sq"], ["emb"])], i
    if op == "TopK":
        # Sorted largest with their indices (ties at 0.25 °C steps are common), and an
        # unsorted smallest-k feeding a sum (order-free).
        i = [_c("k4", [4], np.int64), _c("k8", [8], np.int64), _c("ax", [1], np.int64),
             _c("w", rng.normal(0, 0.3, (4, 4)))]
        return [n("TopK", ["flat", "k4"], ["v", "idx"], axis=1, largest=1, sorted=1),
                n("Cast", ["idx"], ["fi"], to=TensorProto.FLOAT),
                n("TopK", ["flat", "k8"], ["low", "lowi"], axis=1, largest=0, sorted=0),
                n("ReduceSum", ["low", "ax"], ["lows"], keepdims=1),
                n("Add", ["v", "fi"], ["a"]), n("Add", ["a", "lows"], ["b"]),
                n("MatMul", ["b", "w"], ["emb"])], i
    if op in ("ArgMin", "ArgMax"):
        # Last of equals, then (ArgMax) the first: ties at 0.25 °C steps are common.
        i = [_c("s", [-1, 4, 16], np.int64), _c("one", [1.0])]
        return [n("Reshape", ["flat", "s"], ["r"]),
                n(op, ["r"], ["a"], axis=2, keepdims=0, select_last_index=1),
                n("ArgMax", ["r"], ["b"], axis=2, keepdims=0),
                n("Cast", ["a"], ["fa"], to=TensorProto.FLOAT), n("Cast", ["b"], ["fb"], to=TensorProto.FLOAT),
                n("Add", ["fa", "fb"], ["emb"])], i
    if op in ("Split", "Concat"):
        i = [_c("parts", [16, 40, 8], np.int64), _c("s", [-1, 4, 4], np.int64),
             _c("ax", [2], np.int64), _w(rng, "w", (8, 4))]
        return [n("Split", ["flat", "parts"], ["a", "b", "c"], axis=1),
                n("Reshape", ["a", "s"], ["r"]), n("ReduceMax", ["r"], ["m"], axes=[2], keepdims=0),
                n("MatMul", ["c", "w"], ["cw"]),
                n("Concat", ["m", "cw"], ["mc"], axis=1),
                n("Split", ["mc"], ["x", "y"], axis=1), n("Add", ["x", "y"], ["emb"])], i
    if op in ("Squeeze", "Unsqueeze"):
        i = [_c("one", [1], np.int64), _w(rng, "w", (64, 4))]
        return [n("Unsqueeze", ["flat", "one"], ["u"]), n("Squeeze", ["u", "one"], ["f"]),
                n("MatMul", ["f", "w"], ["emb"])], i
    if op == "Slice":
        i = [_c(name, v, np.int64) for name, v in
             (("st", [2]), ("en", [62]), ("ax", [1]), ("sp", [15]), ("st2", [-1]),
              ("en2", [-1000]), ("sp2", [-16]))]
        return [n("Slice", ["flat", "st", "en", "ax", "sp"], ["a"]),
                n("Slice", ["flat", "st2", "en2", "ax", "sp2"], ["b"]),
                n("Sub", ["a", "b"], ["emb"])], i
    if op == "Gather":
        return [n("Gather", ["flat", "ix"], ["emb"], axis=1)], [_c("ix", [5, 9, 40, -1], np.int64)]
    if op == "Transpose":
        i = [_c("s8", [-1, 8, 8], np.int64), _c("s64", [-1, 64], np.int64), _w(rng, "w", (64, 4))]
        return [n("Reshape", ["flat", "s8"], ["r"]), n("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
                n("Reshape", ["t", "s64"], ["f"]), n("MatMul", ["f", "w"], ["emb"])], i
    if op in ("GreaterOrEqual", "Where"):
        # Where a pixel reaches its threshold (ties at 0.25 °C steps included) keep it, else
        # a constant; as the apart rule picks its state or the nearest centroid.
        i = [_c("k", rng.choice([0.0, 0.25, 0.5, 1.0], 64)), _c("other", [-1.0]), _w(rng, "w", (64, 4))]
        return [n("GreaterOrEqual", ["flat", "k"], ["keep"]), n("Where", ["keep", "flat", "other"], ["f"]),
                n("MatMul", ["f", "w"], ["emb"])], i
    raise AssertionError(f"no test graph for {op}")


def operator_model(op, seed=0):
    rng = np.random.default_rng(seed)
    body, inits = _op_graph(op, rng)
    meanings = MEANINGS[:4]
    centroids = rng.normal(0, 1, (4, 4)) * 3
    inits = inits + [_c("flat_shape", [-1, 64], np.int64), _c("centroids", centroids),
                     _c("one_axis", [1], np.int64), _c("room", [21.0])]
    nodes = ([helper.make_node("Reshape", ["frames", "flat_shape"], ["raw"]),
              helper.make_node("Sub", ["raw", "room"], ["flat"])] + body + [
        helper.make_node("Identity", ["emb"], ["embedding"]),
        helper.make_node("Unsqueeze", ["emb", "one_axis"], ["emb3"]),
        helper.make_node("Sub", ["emb3", "centroids"], ["diff"]),
        helper.make_node("ReduceSumSquare", ["diff"], ["distances"], axes=[2], keepdims=0),
        helper.make_node("ArgMin", ["distances"], ["state"], axis=1, keepdims=0),
    ])
    model = contract_model(nodes, inits, meanings=meanings)
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("op", SUPPORTED_OPS)
def test_every_operator_runs_the_same_on_both_backends(op, tmp_path):
    model = operator_model(op)
    assert op in {node.op_type for node in model.graph.node}
    path = save(model, tmp_path / f"{op}.onnx")
    assert_backends_agree(path, doorway_frames(400, seed=zlib.crc32(op.encode())))


def test_exporter_graph_backends_agree(tmp_path):
    from thermalcount.model import graph as onnx_graph, preprocessing
    rng = np.random.default_rng(1)
    weights = {"enc1.weight": rng.normal(0, .3, (32, 64)), "enc1.bias": rng.normal(0, .1, 32),
               "prelu.weight": np.full(32, .25), "enc2.weight": rng.normal(0, .3, (4, 32)),
               "enc2.bias": rng.normal(0, .1, 4), "centroids": rng.normal(0, 1, (5, 4))}
    for background in ("mean", "lowest"):
        prep = preprocessing.Preprocessing(background=background)
        model = onnx_graph.build_graph(weights, prep, metadata())
        path = save(model, tmp_path / f"{background}.onnx")
        assert_backends_agree(path, doorway_frames(2000))


@pytest.mark.slow
def test_default_model_backends_agree():
    from thermalcount.sensors.sim.simulator import simulate

    model = Model.load("default")
    # The clusters' states, then the frame rules': edge-low, edge-high, apart.
    assert [m.rule for m in model.meanings[model.clusters:]] == ["faint edge", "faint edge", "two humps", "two humps", "two humps"]
    rule_states = set(range(model.clusters, len(model.meanings)))
    # Pairs passing and a 1 FPS doorway make the frame rules speak, in one stream.
    frames = np.concatenate([doorway_frames(3000), simulate(1500, "passing", seed=4).frames,
                             simulate(600, "single", seed=5, fps=1.0, fixed_pattern=0.0).frames])
    batch = assert_backends_agree(default_model_path(), frames)
    assert rule_states <= set(batch.state.tolist())
    # The single-frame paths (the numpy backend's compiled plan) on every frame, rules included.
    for backend in ("onnxruntime", "numpy"):
        single = Model.load("default", backend=backend)
        single.start_stream()
        np.testing.assert_array_equal([single.infer_one(frame) for frame in frames], batch.state)


# ------------------------------------------------------------------------------- errors


def _error(path, backend="auto") -> str:
    with pytest.raises(ModelError) as info:
        Model.load(path, backend=backend)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file_directory_empty_and_garbage(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope.onnx")
    assert "directory" in _error(tmp_path)
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.onnx")
    (tmp_path / "text.onnx").write_text("this is not a model\n" * 20)
    assert "not an ONNX model" in _error(tmp_path / "text.onnx")
    (tmp_path / "h5.onnx").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
    assert "not an ONNX model" in _error(tmp_path / "h5.onnx")


@pytest.mark.parametrize("kwargs, words", [
    ({"input_name": "pixels"}, "expected one input named 'frames'"),
    ({"input_shape": ("N", 64)}, "shape Nx64"),
    ({"input_shape": (1, 8, 8)}, "free batch dimension"),
    ({"input_shape": ("N", 8, 4)}, "shape Nx8x4"),
    ({"input_type": TensorProto.DOUBLE}, "must be float32, not double"),
])
def test_wrong_input_is_refused(kwargs, words, tmp_path):
    nodes = [helper.make_node("Identity", [kwargs.get("input_name", "frames")], ["state"])]
    model = contract_model(nodes, [], **kwargs)
    assert words in _error(save(model, tmp_path / "bad.onnx"))


def test_missing_output_is_refused(tmp_path):
    model = folded_model()
    kept = [o for o in model.graph.output if o.name != "embedding"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    assert "no output 'embedding'" in _error(save(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("key", REQUIRED_METADATA)
def test_missing_metadata_is_refused(key, tmp_path):
    model = folded_model(meta=metadata(**{key: None}))
    assert f"missing metadata '{key}'" in _error(save(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("overrides, words", [
    ({"format": "other/2"}, "format 'other/2'"),
    ({"states": "[not json"}, "malformed metadata"),
    ({"clusters": "7"}, "one entry per cluster"),
    ({"travel_axis": "diagonal"}, "travel_axis"),
    ({"states": json.dumps([{"cluster": 0, "name": "empty"}] * 5)}, "needs cluster, name"),
])
def test_bad_metadata_is_refused(overrides, words, tmp_path):
    model = folded_model(meta=metadata(**overrides))
    assert words in _error(save(model, tmp_path / "m.onnx"))


def test_unknown_operator_only_stops_the_numpy_backend(tmp_path):
    model = folded_model()
    # Exp is valid ONNX (onnxruntime runs it) but outside the contract's operator list.
    model.graph.node.insert(1, helper.make_node("Exp", ["flat"], ["unused"], name="odd"))
    path = save(model, tmp_path / "exp.onnx")
    assert Model.load(path, backend="onnxruntime").backend == "onnxruntime"
    message = _error(path, backend="numpy")
    assert "Exp" in message and "--backend onnxruntime" in message


@pytest.mark.parametrize("key", ["thermalcount_version", "input_units", "training", "created", "preprocessing"])
def test_descriptive_metadata_may_be_missing(key, tmp_path):
    model = folded_model(meta=metadata(**{key: None}))
    assert Model.load(save(model, tmp_path / "m.onnx")).clusters == len(MEANINGS)


def test_bad_backend_name(tmp_path):
    path = save(folded_model(), tmp_path / "m.onnx")
    assert "unknown backend 'tract'" in _error(path, backend="tract")


def test_without_onnxruntime_auto_falls_back_and_explicit_request_fails(tmp_path):
    path = save(folded_model(), tmp_path / "m.onnx")
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from thermalcount.model.loader import Model\n"
        "from thermalcount.errors import ModelError\n"
        f"m = Model.load({str(path)!r})\n"
        "print(m.backend)\n"
        "try:\n"
        f"    Model.load({str(path)!r}, backend='onnxruntime')\n"
        "except ModelError as e:\n"
        "    print('ERR', e)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "numpy"
    assert lines[1].startswith("ERR onnxruntime is not installed") and "--backend numpy" in lines[1]


def test_runtime_never_imports_torch_or_sklearn(tmp_path):
    path = save(folded_model(), tmp_path / "m.onnx")
    code = (
        "import sys, json, numpy as np\n"
        "from thermalcount.model.loader import Model\n"
        "from thermalcount.runtime.counter import Counter\n"
        "from thermalcount.model import numpy_backend\n"
        "from thermalcount.evaluation import scoring\n"
        "import thermalcount.runtime.offline, thermalcount.cli.count_cmd\n"
        f"for backend in ('onnxruntime', 'numpy'):\n"
        f"    m = Model.load({str(path)!r}, backend=backend)\n"
        "    m.infer(np.full((3, 8, 8), 21, np.float32)); m.infer_one(np.zeros((8, 8), np.float32))\n"
        "    Counter(m.meanings).process([0.0, 0.1], [0, 1])\n"
    )
    assert modules_loaded_by(code) == []


@pytest.mark.parametrize("backend", ["onnxruntime", pytest.param("numpy", marks=pytest.mark.slow)])
def test_the_runtime_never_imports_onnx(backend, tmp_path):
    """``import onnx`` (with ml_dtypes) is most of a second of start-up; both backends load,
    check and run the model through thermalcount.model.onnx_schema instead."""
    path = save(folded_model(), tmp_path / "m.onnx")
    code = (
        "import numpy as np\n"
        "from thermalcount.model.loader import Model\n"
        "from thermalcount.runtime.counter import Counter\n"
        f"m = Model.load({str(path)!r}, backend={backend!r})\n"
        "m.infer(np.full((3, 8, 8), 21, np.float32)); m.infer_states(np.full((3, 8, 8), 21, np.float32))\n"
        "m.infer_one(np.zeros((8, 8), np.float32))\n"
        "Counter(m.meanings).process([0.0, 0.1], [0, 1])\n"
        f"d = Model.load('default', backend={backend!r})\n"
        "assert d.backend == " + repr(backend) + "\n"
        "d.infer_one(np.zeros((8, 8), np.float32))\n"
    )
    assert modules_loaded_by(code, roots=("onnx", "ml_dtypes")) == []
    # The probe itself can see onnx: importing it here is caught.
    assert modules_loaded_by(code + "import onnx\n", roots=("onnx",)) != []


def test_light_parse_gives_the_same_runtime_graphs_as_onnx():
    """The onnxruntime path parses with thermalcount.model.onnx_schema (no onnx import): the
    state-only and flat-input copies it makes are the ones onnx's own messages give."""
    from thermalcount.model.contract import parse_model
    from thermalcount.model.graph import state_only_graph
    from thermalcount.model.onnxruntime_backend import without_leading_reshape

    path = default_model_path()
    data = path.read_bytes()
    light, full = parse_model(data, path, light=True), parse_model(data, path)
    assert onnx.load_model_from_string(light.SerializeToString()) == full
    light_state, full_state = state_only_graph(light), state_only_graph(full)
    assert onnx.load_model_from_string(light_state.SerializeToString()) == full_state
    assert len(full_state.graph.node) < len(full.graph.node)
    flat = onnx.load_model_from_string(without_leading_reshape(light_state).SerializeToString())
    onnx.checker.check_model(flat, full_check=True)
    assert [d.dim_param or d.dim_value for d in flat.graph.input[0].type.tensor_type.shape.dim] == ["N", 64]
    assert flat.graph.node[0].input[0] == "frames" and len(flat.graph.node) == len(full_state.graph.node) - 1


@pytest.mark.parametrize("opset", [9, 11])
def test_older_opsets_with_attribute_forms(opset, tmp_path):
    """Before opset 13 axes, splits and (before 10/11) slice and clip bounds were attributes."""
    n = helper.make_node
    rng = np.random.default_rng(opset)
    nodes = [n("Reshape", ["frames", "s"], ["raw"]), n("Sub", ["raw", "room"], ["flat"]),
             n("Unsqueeze", ["flat"], ["u"], axes=[1]), n("Squeeze", ["u"], ["f"], axes=[1]),
             n("Split", ["f"], ["a", "b"], axis=1, split=[32, 32]),
             n("Add", ["a", "b"], ["ab"]),
             n("ReduceSum", ["ab"], ["total"], axes=[1], keepdims=1),
             n("Mul", ["ab", "total"], ["abt"])]
    inits = [_c("s", [-1, 64], np.int64), _c("room", [21.0]), _w(rng, "w", (16, 4)),
             _c("centroids", rng.normal(0, 1, (4, 4))), _c("ax", [1], np.int64)]
    if opset < 10:
        nodes += [n("Slice", ["abt"], ["sl"], starts=[0], ends=[16], axes=[1]),
                  n("Clip", ["sl"], ["cl"], min=-2.0, max=2.0)]
    else:
        inits += [_c("st", [0], np.int64), _c("en", [16], np.int64), _c("lo", -2.0), _c("hi", 2.0)]
        nodes += [n("Slice", ["abt", "st", "en", "ax"], ["sl"]), n("Clip", ["sl", "lo", "hi"], ["cl"])]
    nodes += [n("MatMul", ["cl", "w"], ["embedding"]),
              n("Unsqueeze", ["embedding"], ["e3"], axes=[1]), n("Sub", ["e3", "centroids"], ["d"]),
              n("ReduceSumSquare", ["d"], ["distances"], axes=[2], keepdims=0),
              n("ArgMin", ["distances"], ["state"], axis=1, keepdims=0)]
    model = contract_model(nodes, inits, meanings=MEANINGS[:4], opset=opset)
    model.ir_version = 4 if opset < 10 else 6
    onnx.checker.check_model(model)
    assert_backends_agree(save(model, tmp_path / f"opset{opset}.onnx"), doorway_frames(300))
