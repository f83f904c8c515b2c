"""Write the model as ONE fused ONNX graph from plain numpy weights (no torch here).

The graph computes, for a batch of °C frames ``[N, 8, 8]``::

    x  = frames as [N, 64]
    r  = preprocessing(x)                       (see thermalcount.model.preprocessing)
    h  = PRelu(r W1' + b1')                     first Linear, preprocessing folded in
    embedding = h W2 + b2                       z
    partial   = h B + C                         ||c_k||^2 - 2 z.c_k: the second Linear folded in
    state     = ArgMin(partial)                 nearest centroid (||z||^2 is the same for all k)
    distances = (z * z) @ ones + partial        squared Euclidean distance to each centroid

and, in models with frame rules (``thermalcount.model.rules``), ``state`` becomes a rule's
state where the frame shows someone just outside the view (18 nodes, 19 with their own
residual Gemm) or two people apart (16 nodes; 18 when it also tells where the pair sits).

"Fused in fact": the linear parts of the preprocessing (mean subtraction, scaling, the shift
after clipping) are folded into the first Gemm's weights, and the second Linear is folded into
the distance computation, because ``||z - c||^2 = ||z||^2 + ||c||^2 - 2 z.c`` is linear in
``h`` apart from ``||z||^2``. With the default preprocessing (mean + clip) the graph has 10
nodes, 8 with a linear one (``--no-clip``), 12 with ``--background lowest`` (TopK). Per-node
costs were measured in onnxruntime (Gemm beats ReduceMean + Sub and Split; Mul + Gemm beats
ReduceSumSquare + Add); see docs/model.md.

The graph follows :mod:`thermalcount.model.contract` (input, outputs, metadata). The runtime
(``thermalcount.model.loader``) imports this module for :func:`state_only_graph`; it must
stay free of torch and scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from thermalcount.errors import ModelError, OutputPathError
from thermalcount.model.contract import INPUT_NAME, OUTPUT_NAMES
from thermalcount.model.rules import FrameRules, travel_profile_matrix
from thermalcount.model.preprocessing import CONTRAST_FLOOR, CONTRAST_REFERENCE, PIXELS, Preprocessing

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.16 (the oldest we support)
WEIGHT_NAMES = ("enc1.weight", "enc1.bias", "prelu.weight", "enc2.weight", "enc2.bias", "centroids")


def folded_weights(weights: dict, preprocessing: Preprocessing) -> dict:
    """The arrays the graph is made of, computed in float64 then stored as float32.

    ``weights`` holds the trained arrays in torch's layout: ``enc1.weight`` (32, 64),
    ``enc1.bias`` (32,), ``prelu.weight`` (32,), ``enc2.weight`` (latent, 32),
    ``enc2.bias`` (latent,) and ``centroids`` (K, latent).
    """
    missing = [name for name in WEIGHT_NAMES if name not in weights]
    if missing:
        raise ModelError(f"the model lacks weight(s) {', '.join(missing)}; re-train it with 'thermalcount train'")
    w1 = np.asarray(weights["enc1.weight"], np.float64)
    b1 = np.asarray(weights["enc1.bias"], np.float64)
    slope = np.asarray(weights["prelu.weight"], np.float64).reshape(-1)
    w2 = np.asarray(weights["enc2.weight"], np.float64)
    b2 = np.asarray(weights["enc2.bias"], np.float64)
    centroids = np.asarray(weights["centroids"], np.float64)
    hidden, latent = w1.shape[0], w2.shape[0]
    if (w1.shape != (hidden, PIXELS) or b1.shape != (hidden,) or slope.shape not in ((1,), (hidden,))
            or w2.shape != (latent, hidden) or b2.shape != (latent,)
            or centroids.ndim != 2 or centroids.shape[1] != latent):
        raise ModelError("the model's weight shapes do not fit together; re-train it with 'thermalcount train'")

    gain, shift = input_affine(preprocessing)
    first = w1.T * gain  # (64, hidden)
    bias1 = b1 + shift * w1.sum(axis=1)
    if preprocessing.is_linear:
        projection, _ = preprocessing.linear_parts()
        first, bias1 = projection @ w1.T, b1
    # Distances: ||z - c||^2 = ||z||^2 + (||c||^2 - 2 z.c) and z = W2 h + b2, so the bracket is
    # ONE Gemm on the hidden layer h (the second Linear folded in) and ArgMin can use it alone.
    return {
        "first": first.astype(np.float32), "bias1": bias1.astype(np.float32),
        "slope": np.broadcast_to(slope, (hidden,)).astype(np.float32),
        "to_latent": w2.T.astype(np.float32), "latent_bias": b2.astype(np.float32),
        "to_partial": (-2.0 * w2.T @ centroids.T).astype(np.float32),
        "partial_bias": ((centroids ** 2).sum(axis=1) - 2.0 * centroids @ b2).astype(np.float32),
        "latent": latent, "clusters": centroids.shape[0],
    }


def input_affine(preprocessing: Preprocessing) -> tuple:
    """(gain, shift) with the model input (``Preprocessing.apply``) = gain x the graph's
    clipped tensor + shift, for preprocessings that clip.

    Where the graph clips, the first Gemm sees (clipped residual - offset) / scale, with the
    offset either already subtracted in the graph (mean background: it rides on the centring
    Gemm's bias) or folded into the first layer's bias; with a contrast gain the graph divides
    by (skin - mean) only, and the constant reference rides on the weights.
    """
    gain = 1.0 / preprocessing.scale
    if preprocessing.contrast_skin is not None:
        gain *= CONTRAST_REFERENCE
    offset_here = preprocessing.offset - (_centring_shift(preprocessing) or 0.0)
    return gain, -offset_here / preprocessing.scale


def _centring_gemm(preprocessing: Preprocessing) -> bool:
    """Mean background, not linear: S x - mean(x) - offset as one Gemm (cheaper than
    ReduceMean + Sub), with the smoothing S (identity without blur) folded in."""
    return preprocessing.background == "mean" and not preprocessing.is_linear


def _centring_shift(preprocessing: Preprocessing) -> Optional[float]:
    """What the centring Gemm subtracts after the mean (°C), or None without that Gemm: the
    floor's shift rides on it, unless the gain comes first - then the clip is in 21 °C-room
    units and the shift is folded into the first layer's bias instead."""
    if not _centring_gemm(preprocessing):
        return None
    return 0.0 if preprocessing.gain_first else preprocessing.offset


def build_graph(weights: dict, preprocessing: Preprocessing, metadata: dict):
    """Return the fused ``onnx.ModelProto``; ``metadata`` values are strings
    (``thermalcount.model.contract.exported_metadata``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folded = folded_weights(weights, preprocessing)
    latent, clusters = folded["latent"], folded["clusters"]
    rules = FrameRules(json.loads(metadata.get("states", "[]")))
    if rules.apart is not None and preprocessing.clip_low is None:
        raise ModelError("the apart rule needs a preprocessing with a noise floor (clip_low); "
                         "re-train the model")
    if rules.edges is not None and preprocessing.background != "mean":
        raise ModelError("the faint-edge rule needs the mean background; re-train the model")
    if rules and rules.clusters != clusters:
        raise ModelError("the model's states do not match its centroids; re-train the model")

    def constant(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    inits = []
    nodes = [helper.make_node("Reshape", [INPUT_NAME, constant("flat_shape", np.array([-1, PIXELS], np.int64))],
                              ["pixels"], name="flatten")]
    source = "pixels"
    if not preprocessing.is_linear:
        low, high = preprocessing.clip_low, preprocessing.clip_high
        shift = _centring_shift(preprocessing)
        if shift is not None:
            centring = preprocessing.centring_matrix()
            nodes.append(helper.make_node(
                "Gemm", [source, constant("centring", centring.astype(np.float32)),
                         constant("centring_shift", np.full(PIXELS, -shift, np.float32))],
                ["residual"], name="remove_background"))
            low = None if low is None else low - shift
            high = None if high is None else high - shift
            source = "residual"
        elif preprocessing.background == "lowest":
            nodes += [
                helper.make_node("TopK", [source, constant("k_lowest", np.array([preprocessing.lowest_pixels], np.int64))],
                                 ["coolest", "coolest_index"], axis=1, largest=0, sorted=0, name="coolest_pixels"),
                helper.make_node("ReduceMean", ["coolest"], ["background"], axes=[1], keepdims=1,
                                 name="background_level"),
                helper.make_node("Sub", [source, "background"], ["residual"], name="remove_background"),
            ]
            source = "residual"
        if preprocessing.sort_axis is not None:
            # Each line across the travel axis sorted warmest first: one TopK over all 8 values
            # (after the background Gemm: sorting commutes with subtracting a per-frame level).
            nodes += [
                helper.make_node("Reshape", [source, constant("frame_shape", np.array([-1, 8, 8], np.int64))],
                                 ["residual_frames"], name="to_frames"),
                helper.make_node("TopK", ["residual_frames", constant("k_line", np.array([8], np.int64))],
                                 ["sorted_frames", "sorted_index"], axis=preprocessing.sort_axis,
                                 largest=1, sorted=1, name="lateral_sort"),
                helper.make_node("Reshape", ["sorted_frames", "flat_shape"], ["sorted_residual"], name="to_pixels"),
            ]
            source = "sorted_residual"
        if preprocessing.contrast_skin is not None:
            # (skin - mean) as one Gemm column, floored, divides the residual; the reference
            # factor is folded into W1, so the clip bounds are in units of that reference.
            nodes += [
                helper.make_node("Gemm", ["pixels", constant("minus_mean", np.full((PIXELS, 1), -1.0 / PIXELS, np.float32)),
                                          constant("skin", np.array([preprocessing.contrast_skin], np.float32))],
                                 ["contrast_raw"], name="person_contrast"),
                # Gain first: also never below gain 1 (a cool room's person is not shrunk
                # under the floor); the same one node, Clip instead of Max.
                helper.make_node("Clip", ["contrast_raw", constant("contrast_floor", np.array(CONTRAST_FLOOR, np.float32)),
                                          constant("contrast_ceiling", np.array(CONTRAST_REFERENCE, np.float32))],
                                 ["contrast"], name="contrast_floor")
                if preprocessing.gain_first else
                helper.make_node("Max", ["contrast_raw", constant("contrast_floor", np.array([CONTRAST_FLOOR], np.float32))],
                                 ["contrast"], name="contrast_floor"),
                helper.make_node("Div", [source, "contrast"], ["normalised"], name="normalise_contrast"),
            ]
            source = "normalised"
            low = None if low is None else low / CONTRAST_REFERENCE
            high = None if high is None else high / CONTRAST_REFERENCE
        if preprocessing.clips:
            bounds = ["" if value is None else constant(name, np.array(value, np.float32))
                      for name, value in (("clip_low", low), ("clip_high", high))]
            nodes.append(helper.make_node("Clip", [source] + bounds, ["clipped"], name="clip_residual"))
            source = "clipped"
    nodes += [
        helper.make_node("Gemm", [source, constant("W1_folded", folded["first"]),
                                  constant("b1_folded", folded["bias1"])], ["hidden_linear"], name="encoder_linear1"),
        helper.make_node("PRelu", ["hidden_linear", constant("prelu_slope", folded["slope"])], ["hidden"],
                         name="encoder_prelu"),
        helper.make_node("Gemm", ["hidden", constant("W2", folded["to_latent"]), constant("b2", folded["latent_bias"])],
                         ["embedding"], name="encoder_linear2"),
        helper.make_node("Gemm", ["hidden", constant("W2_distance", folded["to_partial"]),
                                  constant("b2_distance", folded["partial_bias"])],
                         ["partial_distances"], name="linear2_folded_into_distances"),
        # ||z||^2 is the same for every centroid: the nearest one is the ArgMin of the partial
        # distances, so the state does not wait for (or, pruned, need) the two nodes below.
        helper.make_node("ArgMin", ["partial_distances"], ["nearest" if rules else "state"], axis=1, keepdims=0,
                         name="nearest_centroid"),
        helper.make_node("Mul", ["embedding", "embedding"], ["embedding_squared"], name="embedding_squared"),
        helper.make_node("Gemm", ["embedding_squared", constant("sum_to_each_centroid", np.ones((latent, clusters), np.float32)),
                                  "partial_distances"], ["distances"], name="distances"),
    ]
    travel_axis = metadata.get("travel_axis")
    chosen = "nearest"
    if rules.edges is not None:
        residual = "residual"
        if _centring_shift(preprocessing) != 0.0:  # the rule wants the residual without a shift
            residual = "edge_residual"
            centring = "centring" if _centring_gemm(preprocessing) else \
                constant("centring", preprocessing.centring_matrix().astype(np.float32))  # shared when it exists
            nodes.append(helper.make_node("Gemm", ["pixels", centring], [residual], name="edge_residual"))
        empty = np.array([[0.0 if flag else 1.0] for flag in rules.empty], np.float32)
        nodes += _edge_rule_nodes(rules.edges, residual, travel_axis=travel_axis, first_state=rules.edge_low,
                                  not_empty=empty, out="state" if rules.apart is None else "edge_or_nearest",
                                  constant=constant)
        chosen = "edge_or_nearest"
    if rules.apart is not None:
        nodes += _apart_rule_nodes(rules.apart, source, gain_shift=input_affine(preprocessing), travel_axis=travel_axis,
                                   states=rules.apart_states, otherwise=chosen, constant=constant)
    graph = helper.make_graph(
        nodes, "thermalcount",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 8, 8])],
        [helper.make_tensor_value_info(name, elem, ["N"] + size) for name, elem, size in
         zip(OUTPUT_NAMES, (TensorProto.INT64, TensorProto.FLOAT, TensorProto.FLOAT), ([], [clusters], [latent]))],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="thermalcount", doc_string="frames (°C) -> state, distances, embedding")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def _edge_rule_nodes(test, residual: str, *, travel_axis: str, first_state: int, not_empty: np.ndarray,
                     out: str, constant) -> list:
    """The faint-edge rule (thermalcount.model.rules): where the nearest cluster is empty and
    an end line is the warmest and ``noise_units`` x the frame's noise, that end's state.

    Node for node what ``EdgeTest.deficits`` computes, on the smoothed residual in °C; the
    profile Gemm divides by ``noise_units`` so the noise is compared as it is.
    """
    from onnx import helper

    node = helper.make_node
    return [
        node("TopK", [residual, constant("edge_k_cool", np.array([test.cool_pixels], np.int64))],
             ["edge_cool", "edge_cool_index"], axis=1, largest=0, sorted=0, name="edge_coolest_pixels"),
        node("ReduceMean", ["edge_cool"], ["edge_cool_mean"], axes=[1], keepdims=1, name="edge_cool_mean"),
        node("Sub", ["edge_cool", "edge_cool_mean"], ["edge_cool_deviation"], name="edge_cool_deviation"),
        node("Abs", ["edge_cool_deviation"], ["edge_cool_spread"], name="edge_cool_spread"),
        node("ReduceMean", ["edge_cool_spread"], ["edge_spread"], axes=[1], keepdims=1, name="edge_noise_spread"),
        node("Clip", ["edge_spread", constant("edge_noise_floor", np.array(test.min_c / test.noise_units, np.float32))],
             ["edge_noise"], name="edge_noise"),
        node("Gemm", [residual, constant("edge_profile_weights",
                                         (travel_profile_matrix(travel_axis) / test.noise_units).astype(np.float32))],
             ["edge_profile"], name="edge_profile"),
        node("ReduceMax", ["edge_profile"], ["edge_top"], axes=[1], keepdims=1, name="edge_warmest_line"),
        node("Gather", ["edge_profile", constant("edge_end_lines", np.array([0, 7], np.int64))], ["edge_ends"],
             axis=1, name="edge_end_lines"),
        node("Sub", ["edge_top", "edge_ends"], ["edge_not_warmest"], name="edge_not_warmest"),
        node("Sub", ["edge_noise", "edge_ends"], ["edge_too_faint"], name="edge_too_faint"),
        node("Gather", [constant("edge_cluster_not_empty", not_empty), "nearest"], ["edge_cluster_saw"], axis=0,
             name="edge_cluster_saw"),
        node("Max", ["edge_not_warmest", "edge_too_faint", "edge_cluster_saw"], ["edge_deficit"], name="edge_deficit"),
        node("ReduceMin", ["edge_deficit"], ["edge_best"], axes=[1], keepdims=0, name="edge_best"),
        node("ArgMin", ["edge_deficit"], ["edge_side"], axis=1, keepdims=0, name="edge_side"),
        node("Add", ["edge_side", constant("edge_first_state", np.array(first_state, np.int64))], ["edge_state"],
             name="edge_state"),
        node("GreaterOrEqual", [constant("edge_zero", np.array(0.0, np.float32)), "edge_best"], ["edge_found"],
             name="edge_found"),
        node("Where", ["edge_found", "edge_state", "nearest"], [out], name="edge_rule"),
    ]


def _apart_rule_nodes(test, source: str, *, gain_shift: tuple, travel_axis: str, states: tuple,
                      otherwise: str, constant) -> list:
    """The apart rule (thermalcount.model.rules): ``state = apart if two humps else otherwise``.

    Node for node what ``HumpTest.pair_margins`` computes, on the model input's profile along
    the travel axis (one Gemm from the clipped tensor, the input's gain and shift folded in),
    as deficits (the margins negated, exactly): two humps where the best pair's deficit is
    <= 0. With three apart states the best pair (ArgMin) picks the state by where it sits.
    """
    from onnx import helper

    gain, shift = gain_shift
    profile = travel_profile_matrix(travel_axis) * gain
    nodes = [
        helper.make_node("Gemm", [source, constant("profile_weights", profile.astype(np.float32)),
                                  constant("profile_bias", np.full(8, 8 * shift, np.float32))],
                         ["profile"], name="travel_profile"),
        helper.make_node("Gather", ["profile", constant("pair_ends", test.pair_ends())], ["pair_heat"], axis=1,
                         name="hump_pairs"),
        helper.make_node("ReduceMin", ["pair_heat"], ["lower_end"], axes=[1], keepdims=0, name="lower_hump"),
        helper.make_node("Unsqueeze", ["profile", constant("pair_axis", np.array([1], np.int64))],
                         ["profile_per_pair"], name="profile_per_pair"),
        helper.make_node("Add", ["profile_per_pair", constant("outside_pair", test.outside_penalty())],
                         ["between_ends"], name="between_humps"),
        helper.make_node("ReduceMin", ["between_ends"], ["valley"], axes=[2], keepdims=0, name="valley"),
        helper.make_node("ReduceMax", ["profile"], ["top"], axes=[1], keepdims=1, name="highest_hump"),
        helper.make_node("Mul", ["top", constant("peak_ratio", np.array(test.peak_ratio, np.float32))],
                         ["top_share"], name="top_share"),
        helper.make_node("Sub", ["top_share", "lower_end"], ["peak_deficit"], name="peak_deficit"),
        helper.make_node("Mul", ["lower_end", constant("valley_ratio", np.array(test.valley_ratio, np.float32))],
                         ["valley_limit"], name="valley_limit"),
        helper.make_node("Sub", ["valley", "valley_limit"], ["valley_deficit"], name="valley_deficit"),
        helper.make_node("Sub", [constant("min_peak", np.array(test.min_peak, np.float32)), "lower_end"],
                         ["size_deficit"], name="size_deficit"),
        helper.make_node("Max", ["peak_deficit", "valley_deficit", "size_deficit"], ["pair_deficit"],
                         name="pair_deficit"),
        helper.make_node("ReduceMin", ["pair_deficit"], ["hump_deficit"], axes=[1], keepdims=0, name="best_pair"),
        helper.make_node("GreaterOrEqual", [constant("zero", np.array(0.0, np.float32)), "hump_deficit"],
                         ["apart"], name="two_humps"),
    ]
    if len(set(states)) == 1:
        chosen = constant("apart_state", np.array(states[0], np.int64))
    else:
        table = np.asarray(states, np.int64)[test.pair_groups()]
        nodes += [
            helper.make_node("ArgMin", ["pair_deficit"], ["best_pair_index"], axis=1, keepdims=0,
                             name="best_pair_index"),
            helper.make_node("Gather", [constant("apart_states", table), "best_pair_index"], ["apart_where"],
                             axis=0, name="apart_where"),
        ]
        chosen = "apart_where"
    nodes.append(helper.make_node("Where", ["apart", chosen, otherwise], ["state"], name="apart_rule"))
    return nodes


def save_graph(model, path, *, overwrite: bool = False) -> Path:
    """Write an ONNX model atomically (never a half-written file at ``path``)."""
    return write_atomically(path, model.SerializeToString(), overwrite=overwrite)


def write_atomically(path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place, so a crash
    never leaves a half-written model; OutputPathError if ``path`` exists and not ``overwrite``."""
    from thermalcount.support.safe_files import check_output_path, write_bytes_atomically

    path = Path(path)
    check_output_path(path, overwrite=overwrite)
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputPathError(f"cannot write {path}: {blocking} is a file, not a folder; choose another --out")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(f"cannot write {path} ({error.strerror or error}); choose another --out") from None
    return write_bytes_atomically(path, data)


def state_only_graph(proto):
    """A copy of the model holding only the nodes and weights the ``state`` output needs.

    Made at load, not written by export: the file must keep all three outputs (the
    contract), and onnxruntime runs every node of a session's graph whatever outputs are
    bound, so the live and ``count`` paths run this cut-down copy (measured: ~15 % faster
    per frame than binding all three outputs of the full graph). ``proto``: an
    ``onnx.ModelProto`` or an ``onnx_schema.ModelProto``; the copy is of the same kind."""
    graph = proto.graph
    producer = {name: node for node in graph.node for name in node.output}
    needed_nodes, needed_names, stack = set(), set(), ["state"]
    while stack:
        name = stack.pop()
        if name in needed_names:
            continue
        needed_names.add(name)
        node = producer.get(name)
        if node is not None:
            needed_nodes.add(id(node))
            stack.extend(n for n in node.input if n)
    pruned = type(proto)()
    pruned.CopyFrom(proto)
    del pruned.graph.node[:]
    pruned.graph.node.extend(n for n in graph.node if id(n) in needed_nodes)
    del pruned.graph.initializer[:]
    pruned.graph.initializer.extend(i for i in graph.initializer if i.name in needed_names)
    del pruned.graph.output[:]
    pruned.graph.output.extend(o for o in graph.output if o.name == "state")
    del pruned.graph.value_info[:]
    return pruned


def graph_summary(model) -> dict:
    """Metadata (JSON values decoded), inputs, outputs and node list of an ONNX model."""
    from onnx import TensorProto

    def value_info(item):
        dims = [d.dim_param or d.dim_value for d in item.type.tensor_type.shape.dim]
        return {"name": item.name, "type": TensorProto.DataType.Name(item.type.tensor_type.elem_type).lower(),
                "shape": dims}

    metadata = {}
    for prop in model.metadata_props:
        try:
            metadata[prop.key] = json.loads(prop.value) if prop.key in ("states", "training", "preprocessing") else prop.value
        except ValueError:
            metadata[prop.key] = prop.value
    return {
        "metadata": metadata,
        "opset": max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")),
        "inputs": [value_info(item) for item in model.graph.input],
        "outputs": [value_info(item) for item in model.graph.output],
        "nodes": [node.op_type for node in model.graph.node],
    }
