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
state where the frame shows someone just outside the view (9 nodes, 10 with their own
residual Gemm) or two people apart (13 nodes). Each rule gives its state or -1, and one Max
joins them with the nearest cluster (the rules' states are numbered after the clusters', the
apart states last), in place of a Where per rule: 23 nodes for both rules where they were 36
(measured on the default model: the graph one frame 6.9x -> ~4x the hand-folded floor).

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
from thermalcount.model.rules import OUTSIDE, SIZE, FrameRules, travel_profile_matrix
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
    if rules.edges is not None and rules.apart is not None and min(rules.apart_states) < rules.edge_low:
        raise ModelError("the model's apart states must come after its edge states; re-train the model")

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
    # Each rule gives its state or -1, and the rules' states come after the clusters' and the
    # apart states after the edge states (rules.rule_states): one Max over them is "apart, else
    # the edge, else the nearest cluster", in place of a Where per rule.
    chosen = ["nearest"]
    if rules.edges is not None:
        residual = "residual"
        if _centring_shift(preprocessing) != 0.0:  # the rule wants the residual without a shift
            residual = "edge_residual"
            centring = "centring" if _centring_gemm(preprocessing) else \
                constant("centring", preprocessing.centring_matrix().astype(np.float32))  # shared when it exists
            nodes.append(helper.make_node("Gemm", ["pixels", centring], [residual], name="edge_residual"))
        nodes += _edge_rule_nodes(rules.edges, residual, travel_axis=travel_axis, first_state=rules.edge_low,
                                  empty=rules.empty, constant=constant)
        chosen.append("edge_state")
    if rules.apart is not None:
        nodes += _apart_rule_nodes(rules.apart, source, gain_shift=input_affine(preprocessing), travel_axis=travel_axis,
                                   states=rules.apart_states, constant=constant)
        chosen.append("apart_state")
    if len(chosen) > 1:
        nodes.append(helper.make_node("Max", chosen, ["state"], name="frame_rules"))
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


def _edge_rule_nodes(test, residual: str, *, travel_axis: str, first_state: int, empty: np.ndarray,
                     constant) -> list:
    """The faint-edge rule (thermalcount.model.rules) as 9 nodes giving ``edge_state``: the
    edge's state, or -1 where no edge shows.

    ``EdgeTest.deficits`` says an end line fires where it is the warmest line, reaches the
    noise (floored) and the nearest cluster is empty. Put the end lines first in one row
    ``[low end, high end, the 6 inner lines, noise, gate]``, with ``gate`` the floor where the
    nearest cluster is empty and the largest float otherwise: an end fires exactly where it
    is that row's maximum, and ArgMax keeps the first of equals, so the low end wins a tie
    as ``deficits``' ArgMin did. One ArgMax and a table lookup replace ten comparison nodes.
    The noise is ReduceL1 of the coolest pixels minus their mean (Abs and ReduceMean in one):
    k times the mean absolute deviation, so the lines and the gate are in k times the units.
    """
    from onnx import helper

    node = helper.make_node
    cool = test.cool_pixels
    lines = [0, SIZE - 1] + list(range(1, SIZE - 1))
    profile = travel_profile_matrix(travel_axis)[:, lines] * (cool / test.noise_units)
    floor = np.float32(test.min_c * cool / test.noise_units)
    gate = np.array([[floor if flag else np.finfo(np.float32).max] for flag in empty], np.float32)
    states = np.array([first_state, first_state + 1] + [-1] * SIZE, np.int64)  # inner lines, noise, gate: none
    return [
        node("TopK", [residual, constant("edge_k_cool", np.array([cool], np.int64))],
             ["edge_cool", "edge_cool_index"], axis=1, largest=0, sorted=0, name="edge_coolest_pixels"),
        node("ReduceMean", ["edge_cool"], ["edge_cool_mean"], axes=[1], keepdims=1, name="edge_cool_mean"),
        node("Sub", ["edge_cool", "edge_cool_mean"], ["edge_cool_deviation"], name="edge_cool_deviation"),
        node("ReduceL1", ["edge_cool_deviation"], ["edge_noise"], axes=[1], keepdims=1, name="edge_noise"),
        node("Gemm", [residual, constant("edge_profile_weights", profile.astype(np.float32))],
             ["edge_profile"], name="edge_profile"),
        node("Gather", [constant("edge_gate_by_cluster", gate), "nearest"], ["edge_gate"], axis=0,
             name="edge_gate"),
        node("Concat", ["edge_profile", "edge_noise", "edge_gate"], ["edge_candidates"], axis=1,
             name="edge_candidates"),
        node("ArgMax", ["edge_candidates"], ["edge_warmest"], axis=1, keepdims=0, name="edge_warmest"),
        node("Gather", [constant("edge_states", states), "edge_warmest"], ["edge_state"], axis=0,
             name="edge_state"),
    ]


def hump_terms(test) -> tuple:
    """``(weights (25, 4 (P + 1)), bias)``: the two-humps margin terms of every pair as one
    Gemm of ``[profile (8), c, valleys (P + 1)]``, c = ``max(peak_ratio * top, min_peak)``,
    laid out (P + 1, 4) for ``_apart_rule_nodes``.

    ``HumpTest.pair_margins`` for the pair (i, j) is ``min(L - peak_ratio * top, valley_ratio *
    L - valley, L - min_peak)`` with L = min(p_i, p_j): that is the minimum of ``p_i - c``,
    ``p_j - c``, ``valley_ratio * p_i - valley`` and ``valley_ratio * p_j - valley``, in the
    same float operations (a float subtraction is monotone in each argument, so
    ``p - max(x, y) = min(p - x, p - y)`` and ``min(a, b) - v = min(a - v, b - v)``; the
    valley ratio 0.25 scales exactly). Row 0 is a constant just below 0 (its terms' weights
    are 0), so that ArgMax over the margins says "no two humps" exactly where every pair's
    margin is < 0.
    """
    pairs = test.pair_ends()
    inputs, count = SIZE + 1 + pairs.shape[1] + 1, pairs.shape[1] + 1
    weights, bias = np.zeros((inputs, count, 4)), np.zeros((count, 4))
    bias[0] = -float(np.nextafter(np.float32(0), np.float32(1)))
    for row, (i, j) in enumerate(pairs.T, start=1):
        for term, a in enumerate((i, j)):
            weights[a, row, term], weights[SIZE, row, term] = 1.0, -1.0
            weights[a, row, 2 + term], weights[SIZE + 1 + row, row, 2 + term] = test.valley_ratio, -1.0
    return weights.reshape(inputs, -1).astype(np.float32), bias.reshape(-1).astype(np.float32)


def _apart_rule_nodes(test, source: str, *, gain_shift: tuple, travel_axis: str, states: tuple, constant) -> list:
    """The apart rule (thermalcount.model.rules) as 13 nodes giving ``apart_state``: the apart
    state for where the best pair sits, or -1 where the frame does not show two humps.

    The model input's profile along the travel axis (one Gemm from the clipped tensor, the
    input's gain and shift folded in); c = max(peak_ratio * top, min_peak); each pair's valley
    as the reference takes it (the profile plus a large number outside the pair, minimum);
    then one Gemm gives the four terms of :func:`hump_terms` per pair, ReduceMin their
    margins (bit for bit ``HumpTest.pair_margins``), and ArgMax picks the best pair (the first
    of equals, as ``HumpTest.best_groups``) or the "none" row before them. Laying all terms
    out for one Gemm with no valley input measured 2 nodes fewer but 1.5 us a frame slower in
    batches (6x the floats) and a 50 % larger file.
    """
    from onnx import helper

    node = helper.make_node
    gain, shift = gain_shift
    profile = travel_profile_matrix(travel_axis) * gain
    weights, bias = hump_terms(test)
    pairs = test.pair_ends().shape[1]
    outside = np.concatenate([np.full((1, SIZE), OUTSIDE, np.float32), test.outside_penalty()])
    table = np.concatenate([[-1], np.asarray(states, np.int64)[test.pair_groups()]]).astype(np.int64)
    return [
        node("Gemm", [source, constant("profile_weights", profile.astype(np.float32)),
                      constant("profile_bias", np.full(SIZE, SIZE * shift, np.float32))], ["profile"],
             name="travel_profile"),
        node("ReduceMax", ["profile"], ["top"], axes=[1], keepdims=1, name="highest_hump"),
        node("Mul", ["top", constant("peak_ratio", np.array(test.peak_ratio, np.float32))], ["top_share"],
             name="top_share"),
        node("Max", ["top_share", constant("min_peak", np.array(test.min_peak, np.float32))], ["hump_floor"],
             name="hump_floor"),
        node("Unsqueeze", ["profile", constant("pair_axis", np.array([1], np.int64))], ["profile_per_pair"],
             name="profile_per_pair"),
        node("Add", ["profile_per_pair", constant("outside_pair", outside)], ["between_ends"], name="between_humps"),
        node("ReduceMin", ["between_ends"], ["valley"], axes=[2], keepdims=0, name="valley"),
        node("Concat", ["profile", "hump_floor", "valley"], ["hump_inputs"], axis=1, name="hump_inputs"),
        node("Gemm", ["hump_inputs", constant("pair_term_weights", weights), constant("pair_term_bias", bias)],
             ["pair_terms_flat"], name="pair_terms"),
        node("Reshape", ["pair_terms_flat", constant("pair_terms_shape", np.array([-1, pairs + 1, 4], np.int64))],
             ["pair_terms"], name="pair_terms_by_pair"),
        node("ReduceMin", ["pair_terms"], ["pair_margins"], axes=[2], keepdims=0, name="pair_margins"),
        node("ArgMax", ["pair_margins"], ["best_pair"], axis=1, keepdims=0, name="best_pair"),
        node("Gather", [constant("apart_states", table), "best_pair"], ["apart_state"], axis=0,
             name="apart_state"),
    ]


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
