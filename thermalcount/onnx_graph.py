"""Write the model as ONE fused ONNX graph from plain numpy weights (no torch here).

The graph computes, for a batch of °C frames ``[N, 8, 8]``::

    x  = frames as [N, 64]
    r  = preprocessing(x)                       (see thermalcount.preprocessing)
    h  = PRelu(r W1' + b1')                     first Linear, preprocessing folded in
    embedding = h W2 + b2                       z
    partial   = h B + C                         ||c_k||^2 - 2 z.c_k: the second Linear folded in
    state     = ArgMin(partial)                 nearest centroid (||z||^2 is the same for all k)
    distances = (z * z) @ ones + partial        squared Euclidean distance to each centroid

"Fused in fact": the linear parts of the preprocessing (mean subtraction, scaling, the shift
after clipping) are folded into the first Gemm's weights, and the second Linear is folded into
the distance computation, because ``||z - c||^2 = ||z||^2 + ||c||^2 - 2 z.c`` is linear in
``h`` apart from ``||z||^2``. With the default preprocessing (mean + clip) the graph has 10
nodes, 8 with a linear one (``--no-clip``), 12 with ``--background lowest`` (TopK). Per-node
costs were measured in onnxruntime (Gemm beats ReduceMean + Sub and Split; Mul + Gemm beats
ReduceSumSquare + Add); see docs/model.md.

The runtime (``thermalcount.runtime.model``) imports this module for
:func:`default_model_path`; it must stay free of torch and scikit-learn.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from thermalcount.errors import ModelError, OutputPathError
from thermalcount.preprocessing import CONTRAST_FLOOR, CONTRAST_REFERENCE, PIXELS, Preprocessing

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.16 (the oldest we support)
MODEL_FORMAT = "thermalcount-model/1"
DEFAULT_MODEL_NAME = "default_model.onnx"
#: metadata keys every thermalcount ONNX model carries (docs/architecture.md)
REQUIRED_METADATA = ("thermalcount_version", "format", "states", "travel_axis", "input_units",
                     "latent", "clusters", "training", "created")
WEIGHT_NAMES = ("enc1.weight", "enc1.bias", "prelu.weight", "enc2.weight", "enc2.bias", "centroids")


def default_model_path() -> Path:
    """Path of the default model shipped inside the package (used for ``--model default``)."""
    return Path(str(resources.files("thermalcount") / "data" / DEFAULT_MODEL_NAME))


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

    # First layer. Where the graph clips, the Gemm sees (clipped residual - offset) / scale,
    # with the offset either already subtracted in the graph (mean background: it rides on the
    # centring Gemm's bias) or folded into this bias.
    first = w1.T / preprocessing.scale  # (64, hidden)
    if preprocessing.contrast_skin is not None:
        # The graph divides by (skin - mean) only; the constant reference rides on W1.
        first = first * CONTRAST_REFERENCE
    offset_here = 0.0 if _centring_gemm(preprocessing) and not preprocessing.gain_first else preprocessing.offset
    bias1 = b1 - (offset_here / preprocessing.scale) * w1.sum(axis=1)
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


def _centring_gemm(preprocessing: Preprocessing) -> bool:
    """Mean background, not linear: S x - mean(x) - offset as one Gemm (cheaper than
    ReduceMean + Sub), with the smoothing S (identity without blur) folded in."""
    return preprocessing.background == "mean" and not preprocessing.is_linear


def build_graph(weights: dict, preprocessing: Preprocessing, metadata: dict):
    """Return the fused ``onnx.ModelProto``; ``metadata`` values are strings (see REQUIRED_METADATA)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folded = folded_weights(weights, preprocessing)
    latent, clusters = folded["latent"], folded["clusters"]

    def constant(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    inits = []
    nodes = [helper.make_node("Reshape", ["frames", constant("flat_shape", np.array([-1, PIXELS], np.int64))],
                              ["pixels"], name="flatten")]
    source = "pixels"
    if not preprocessing.is_linear:
        low, high = preprocessing.clip_low, preprocessing.clip_high
        if _centring_gemm(preprocessing):
            # The floor's shift rides on this Gemm, unless the gain comes first: then the
            # clip is in 21 °C-room units and the shift is folded into the first layer's bias.
            shift = 0.0 if preprocessing.gain_first else preprocessing.offset
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
        helper.make_node("ArgMin", ["partial_distances"], ["state"], axis=1, keepdims=0, name="nearest_centroid"),
        helper.make_node("Mul", ["embedding", "embedding"], ["embedding_squared"], name="embedding_squared"),
        helper.make_node("Gemm", ["embedding_squared", constant("sum_to_each_centroid", np.ones((latent, clusters), np.float32)),
                                  "partial_distances"], ["distances"], name="distances"),
    ]
    graph = helper.make_graph(
        nodes, "thermalcount",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["N", 8, 8])],
        [helper.make_tensor_value_info("state", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("distances", TensorProto.FLOAT, ["N", clusters]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", latent])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="thermalcount", doc_string="frames (°C) -> state, distances, embedding")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


def save_graph(model, path, *, overwrite: bool = False) -> Path:
    """Write an ONNX model atomically (never a half-written file at ``path``)."""
    return write_atomically(path, model.SerializeToString(), overwrite=overwrite)


def write_atomically(path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place, so a crash
    never leaves a half-written model; OutputPathError if ``path`` exists and not ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it")
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OutputPathError(f"cannot write {path} ({error.strerror or error}); choose another --out") from None
    return path


def load_graph(path):
    """Read and check a thermalcount ONNX model; ModelError (one line) if it is not one."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; export one with 'thermalcount export'")
    try:
        model = onnx.load_model(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ... - all mean "not a model"
        raise ModelError(f"{path} is not a valid ONNX model ({type(error).__name__}); "
                         "pass a file written by 'thermalcount export'") from None
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing or metadata.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path} is an ONNX file but not a thermalcount model (missing {', '.join(missing) or 'format'}); "
                         "export one with 'thermalcount export'")
    return model


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
