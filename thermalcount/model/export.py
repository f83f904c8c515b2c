"""``thermalcount export``: a trained-model file (.npz) -> one fused ONNX graph. numpy + onnx only (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.graph import build_graph, write_atomically
from thermalcount.model.trained_file import load_model


def export_model(model_path, out, *, overwrite: bool = False):
    """Model file -> one fused ONNX graph at ``out``; returns the ``onnx.ModelProto``."""
    from thermalcount.model.loader import Model
    from thermalcount.support.safe_files import check_output_path, refuse_same_file

    out = Path(out)
    check_output_path(out, overwrite=overwrite)
    refuse_same_file(model_path, out, "model")
    model = load_model(model_path)
    broken = sorted(name for name, array in model.weights.items()
                    if np.asarray(array).dtype.kind in "fc" and not np.all(np.isfinite(array)))
    if broken:
        raise ModelError(f"{model_path} holds NaN or infinite weights ({', '.join(broken)}); "
                         "re-train it with 'thermalcount train'")
    graph = build_graph(model.weights, model.preprocessing, model.onnx_metadata())
    # The graph goes through the same validator `count` and `run` load with (metadata, states,
    # a run of test frames), so export never writes a model they would refuse.
    data = graph.SerializeToString()
    Model.from_bytes(data, Path(model_path), backend="auto")
    write_atomically(out, data, overwrite=overwrite)
    return graph
