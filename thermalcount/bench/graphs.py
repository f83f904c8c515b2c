"""Comparison graphs for ``thermalcount bench``: the folded floor and friends, from a model's weights.

The rows ``bench`` times next to the runtime: a bare onnxruntime session on the exported
graph (``session.run`` and io_binding), the exported preprocessing with a folded tail, the
hand-folded floor (Gemm, PRelu, Gemm 32->K, ArgMin), a one-node graph (onnxruntime's fixed
cost per run), the floor in numpy, and the original PyTorch module when torch is installed
(:mod:`thermalcount.bench.torch_seed`, imported only then). No torch import here.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Callable

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.onnxruntime_backend import single_frame_session


def installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (a blocked import counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def model_weights(proto, metadata: dict) -> dict:
    """The folded arrays of a thermalcount graph, plus the unfolded second layer and centroids.

    The exporter stores the second layer ``W2ᵀ, b2`` (as ``W2``/``b2``, or as the first
    ``latent`` columns of ``W2_distance`` in older files) and the partial distances
    ``-2 W2ᵀ Cᵀ`` and ``‖c‖² - 2 C b2``. The centroids C are recovered by least squares
    (W2ᵀ has full column rank), which the PyTorch row needs; ``centroid_residual`` says how
    well they reproduce the stored bias. ``input_shift`` is what the graph subtracts from the
    clipped residual before the first Gemm (older files fold it into that Gemm's bias).
    """
    from onnx import numpy_helper

    from thermalcount.model.preprocessing import Preprocessing

    arrays = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    needed = ("W1_folded", "b1_folded", "prelu_slope", "W2_distance", "b2_distance")
    missing = [name for name in needed if name not in arrays]
    if missing:
        raise ModelError(f"the model has no initializer(s) {', '.join(missing)}: it was not written by "
                         "'thermalcount export', so bench cannot build its comparison graphs")
    latent = int(metadata["latent"])
    second = arrays["W2_distance"].astype(np.float64)
    bias2 = arrays["b2_distance"].astype(np.float64)
    if "W2" in arrays and "b2" in arrays:
        w2t, b2 = arrays["W2"].astype(np.float64), arrays["b2"].astype(np.float64)
        partial, partial_bias = second, bias2
    else:  # older layout: one Gemm for [z | partial] followed by a Split
        w2t, b2 = second[:, :latent], bias2[:latent]
        partial, partial_bias = second[:, latent:], bias2[latent:]
    centroids_t, *_ = np.linalg.lstsq(w2t, -0.5 * partial, rcond=None)
    centroids = centroids_t.T
    rebuilt_bias = (centroids ** 2).sum(axis=1) - 2.0 * centroids @ b2
    preprocessing = None
    if "preprocessing" in metadata:
        preprocessing = Preprocessing.from_dict(json.loads(metadata["preprocessing"]))
    # A centring Gemm subtracts the clip offset itself (its bias is -offset everywhere).
    shift = float(-arrays["centring_shift"].reshape(-1)[0]) if "centring_shift" in arrays else 0.0
    # The graph's own nodes before the first encoder Gemm: the PyTorch row runs them in
    # torch, so it computes exactly what the exported graph computes, whatever the
    # preprocessing (a hand port drifted once when the preprocessing grew).
    prefix = []
    for node in proto.graph.node:
        if "W1_folded" in node.input:
            break
        prefix.append(node)
    return {
        "prefix_nodes": prefix, "prefix_input": node.input[0], "arrays": arrays,
        "first": arrays["W1_folded"], "b1": arrays["b1_folded"],
        "slope": arrays["prelu_slope"].reshape(-1),
        "w2": w2t, "b2": b2, "centroids": centroids,
        "partial": partial.astype(np.float32), "partial_bias": partial_bias.astype(np.float32),
        "centroid_residual": float(np.abs(rebuilt_bias - partial_bias).max()),
        "preprocessing": preprocessing, "input_shift": shift, "latent": latent,
    }


def floor_graph(weights: dict, with_preprocessing_of=None):
    """The hand-folded floor: Gemm, PRelu, Gemm 32->K, ArgMin (input ``x`` [1, 64]).

    With ``with_preprocessing_of`` (the exported ModelProto), the exported graph's own nodes
    before its first Gemm are kept in front (input ``frames`` [N, 8, 8]): the exported graph's
    nearest cluster, since ``argmin_k(‖z‖² + p_k) = argmin_k p_k``, in fewer nodes - without
    its frame rules (docs/model.md), which a floor leaves out.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, source = [], [], "x"
    graph_input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
    if with_preprocessing_of is not None:
        graph = with_preprocessing_of.graph
        first_gemm = next((n for n in graph.node if n.op_type == "Gemm" and n.input[1] == "W1_folded"), None)
        if first_gemm is None:
            raise ModelError("the model has no Gemm on W1_folded; bench cannot build its comparison graphs")
        # The preprocessing: every node the first encoder Gemm's input depends on.
        producer = {name: node for node in graph.node for name in node.output}
        wanted, stack = set(), [first_gemm.input[0]]
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in wanted:
                wanted.add(id(node))
                stack.extend(node.input)
        nodes = [node for node in graph.node if id(node) in wanted]
        used = {name for node in nodes for name in node.input}
        inits = [init for init in graph.initializer if init.name in used]
        source = first_gemm.input[0]
        graph_input = helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["N", 8, 8])
    inits = list(inits) + [
        numpy_helper.from_array(np.asarray(weights["first"], np.float32), "floor_W1"),
        numpy_helper.from_array(np.asarray(weights["b1"], np.float32), "floor_b1"),
        numpy_helper.from_array(np.asarray(weights["slope"], np.float32), "floor_slope"),
        numpy_helper.from_array(np.asarray(weights["partial"], np.float32), "floor_W2"),
        numpy_helper.from_array(np.asarray(weights["partial_bias"], np.float32), "floor_b2"),
    ]
    nodes = list(nodes) + [
        helper.make_node("Gemm", [source, "floor_W1", "floor_b1"], ["floor_h"]),
        helper.make_node("PRelu", ["floor_h", "floor_slope"], ["floor_hp"]),
        helper.make_node("Gemm", ["floor_hp", "floor_W2", "floor_b2"], ["floor_distances"]),
        helper.make_node("ArgMin", ["floor_distances"], ["state"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(nodes, "floor", [graph_input],
                              [helper.make_tensor_value_info("state", TensorProto.INT64, ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def one_node_graph():
    """ArgMin over a [1, 64] input: what onnxruntime costs per run before any real work."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("ArgMin", ["x"], ["state"], axis=1, keepdims=0)], "one_node",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("state", TensorProto.INT64, ["N"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def bound_runner(session, input_name: str, input_shape: tuple) -> Callable:
    """``run(frame) -> state`` through io_binding with buffers bound once (the floor)."""
    import onnxruntime as ort

    buffer = np.zeros(input_shape, np.float32)
    state = np.zeros(1, np.int64)
    binding = session.io_binding()
    binding.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(buffer))
    binding.bind_ortvalue_output("state", ort.OrtValue.ortvalue_from_numpy(state))
    run, raw, view = session._sess.run_with_iobinding, binding._iobinding, buffer.reshape(8, 8)

    def infer_one(frame):
        view[...] = frame
        run(raw, None)
        return int(state[0])
    return infer_one


def plain_runner(session) -> Callable:
    """``run(frame) -> state`` through ``session.run`` (what most code does)."""
    run = session.run

    def infer_one(frame):
        return int(run(["state"], {"frames": frame.reshape(1, 8, 8)})[0][0])
    return infer_one


def numpy_floor_runner(weights: dict) -> Callable:
    """The floor in numpy: folded weights, buffers allocated once (no preprocessing)."""
    w1, b1 = np.asarray(weights["first"], np.float32), np.asarray(weights["b1"], np.float32)[None]
    slope = np.asarray(weights["slope"], np.float32)[None]
    w2, b2 = np.asarray(weights["partial"], np.float32), np.asarray(weights["partial_bias"], np.float32)[None]
    x, h, negative = np.zeros((1, 64), np.float32), np.zeros_like(b1), np.zeros_like(b1)
    distances = np.zeros_like(b2)
    view = x.reshape(8, 8)

    def infer_one(frame):
        view[...] = frame
        np.add(np.dot(x, w1, out=h), b1, out=h)
        np.minimum(h, 0.0, out=negative)
        np.maximum(h, 0.0, out=h)
        np.add(h, np.multiply(negative, slope, out=negative), out=h)
        np.add(np.dot(h, w2, out=distances), b2, out=distances)
        return int(distances.argmin())
    return infer_one


def comparison_variants(proto, metadata: dict) -> tuple:
    """``(variants, skipped, references, weights)`` for the torch-free comparison rows.

    ``references`` maps a row to a batch function giving its states, for the agreement check;
    ``weights`` is :func:`model_weights` (None when the graph is not thermalcount's).
    """
    variants, skipped, references = {}, {}, {}
    try:
        weights = model_weights(proto, metadata)
    except ModelError as error:
        return variants, {"floor": str(error)}, references, None
    if installed("onnxruntime"):
        exported = single_frame_session(proto.SerializeToString())
        variants["ort_plain.exported"] = plain_runner(exported)
        variants["ort_bound.exported"] = bound_runner(exported, "frames", (1, 8, 8))
        simplified = floor_graph(weights, with_preprocessing_of=proto)
        simplified_session = single_frame_session(simplified.SerializeToString())
        variants["ort_bound.state_path"] = bound_runner(simplified_session, "frames", (1, 8, 8))
        references["ort_bound.state_path"] = lambda frames: simplified_session.run(["state"], {"frames": frames})[0]
        floor = single_frame_session(floor_graph(weights).SerializeToString())
        variants["ort_bound.floor"] = bound_runner(floor, "x", (1, 64))
        one_node = single_frame_session(one_node_graph().SerializeToString())
        variants["ort_bound.one_node"] = bound_runner(one_node, "x", (1, 64))
    else:
        for row in ("ort_plain.exported", "ort_bound.exported", "ort_bound.state_path", "ort_bound.floor",
                    "ort_bound.one_node"):
            skipped[row] = "onnxruntime is not installed"
    variants["numpy.floor"] = numpy_floor_runner(weights)
    return variants, skipped, references, weights


def torch_row(weights, use_torch: bool) -> tuple:
    """``(infer_one, infer_states, None)`` for the original PyTorch module, or
    ``(None, None, reason)`` when it cannot run. Imports torch: call it last."""
    if not use_torch:
        return None, None, "skipped (--no-torch)"
    if weights is None:
        return None, None, "the model was not written by 'thermalcount export'"
    if not installed("torch"):
        return None, None, "torch is not installed (pip install 'thermalcount[train]' to compare)"
    from thermalcount.support.interrupts import interrupt_after

    try:
        with interrupt_after():  # Ctrl-C inside torch's import leaves it half made
            from thermalcount.bench.torch_seed import build_original
    except ImportError as error:
        return None, None, f"torch cannot be imported ({error})"
    infer_one, infer_states, _ = build_original(weights, weights["preprocessing"])
    return infer_one, infer_states, None
