"""The onnxruntime backend: two sessions over the same model bytes.

The single-frame session runs on one thread with io_binding: the input and the ``state``
output are numpy buffers bound once, so a call is "copy 64 floats in, run, read one int64"
with no allocation and no output dict. The batch sessions run on one thread too: ``count``
gives them a core of their own (``_batch_options``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.contract import INPUT_NAME, OUTPUT_NAMES, InferenceResult
from thermalcount.model.graph import state_only_graph


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, data: bytes, proto, path: Path):
        import onnxruntime as ort

        self._ort = ort
        self._batch_states = None  # made on first use: only `count` needs it
        try:
            state_proto = state_only_graph(proto)
            self._state_graph = state_proto.SerializeToString()
            # Kept at load (the exported graph must take [N, 8, 8], the contract's input):
            # single frames skip the graph's leading Reshape, the same buffer is bound as
            # [1, 64] (bench: ~0.35 us of ~6.5 us per frame, 1.25x -> 1.18x the folded floor).
            flat_proto = without_leading_reshape(state_proto)
            single_graph = self._state_graph if flat_proto is None else flat_proto.SerializeToString()
            self._single = single_frame_session(single_graph)
            self._batch = ort.InferenceSession(data, _batch_options(ort),
                                               providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            message = " ".join(str(error).split())[:200]
            raise ModelError(f"onnxruntime cannot load {path}: {message}; re-export the model") \
                from None
        self._frame = np.zeros((1, 8, 8), np.float32)
        self._state = np.zeros(1, np.int64)
        binding = self._single.io_binding()
        # OrtValues made from numpy arrays share their memory: bound once, reused forever.
        bound_input = self._frame if flat_proto is None else self._frame.reshape(1, 64)
        binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(bound_input))
        binding.bind_ortvalue_output("state", ort.OrtValue.ortvalue_from_numpy(self._state))
        self._binding = binding
        # The C method directly: the Python wrapper's checks cost ~1 µs per call.
        self._run_bound = self._single._sess.run_with_iobinding
        self._raw_binding = binding._iobinding
        self._view = self._frame.reshape(8, 8)

    def infer_one(self, frame: np.ndarray) -> int:
        # The OrtValues wrap our numpy buffers, so writing the frame in place IS the input.
        self._view[...] = frame
        self._run_bound(self._raw_binding, None)
        return int(self._state[0])

    def infer(self, frames: np.ndarray) -> InferenceResult:
        state, distances, embedding = self._batch.run(list(OUTPUT_NAMES), {INPUT_NAME: frames})
        return InferenceResult(state, distances, embedding)

    def infer_states(self, frames: np.ndarray) -> np.ndarray:
        if self._batch_states is None:
            self._batch_states = self._ort.InferenceSession(
                self._state_graph, _batch_options(self._ort), providers=["CPUExecutionProvider"])
        return self._batch_states.run(["state"], {INPUT_NAME: frames})[0]


def single_frame_session(model_bytes: bytes):
    """An onnxruntime session for one frame at a time: one thread, sequential, no spinning
    (a 1-thread pool only burns CPU between frames). bench times its comparison graphs in
    sessions made here, so they run exactly as the runtime's."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _batch_options(ort):
    """Batches run on one thread, without spin-waiting. ``count`` runs the graph on a worker
    thread beside the pattern step and the counter (runtime/offline.py, ``_inferred``), so the
    two cores are already busy: a second onnxruntime thread only competes with them. Measured
    on a 1 M-frame recording, idle 2-core machine, alternating runs: 2.67-2.69 s end to end
    with one thread against 2.79-2.84 s with the default pool (which alone infers 1.6x faster).
    Spinning workers took the other threads' CPU too (earlier: a count at 0.43-0.49 M frames/s
    with spinning, 0.61-0.63 without)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def without_leading_reshape(proto):
    """A copy of ``proto`` whose input ``frames`` is [N, 64] in place of its first node
    ``Reshape(frames, [-1, 64])``, or None when the graph does not start that way.
    ``proto``: an ``onnx_schema.ModelProto`` (an ``onnx.ModelProto`` works the same)."""
    from thermalcount.model.onnx_schema import FLOAT, int64_values

    graph = proto.graph
    first = graph.node[0] if graph.node else None
    inits = {init.name: init for init in graph.initializer}
    if (first is None or first.op_type != "Reshape" or first.input[0] != INPUT_NAME
            or len(first.input) < 2 or first.input[1] not in inits
            or int64_values(inits[first.input[1]]) not in ([-1, 64], [0, 64])
            or any(INPUT_NAME in node.input for node in graph.node[1:])
            or INPUT_NAME in [output.name for output in graph.output]):
        return None
    flat = type(proto)()
    flat.CopyFrom(proto)
    graph = flat.graph
    reshaped = graph.node[0].output[0]
    shape_name = graph.node[0].input[1]
    del graph.node[0]
    for node in graph.node:
        for position, name in enumerate(node.input):
            if name == reshaped:
                node.input[position] = INPUT_NAME
    for output in graph.output:
        if output.name == reshaped:
            return None
    if not any(shape_name in node.input for node in graph.node):
        kept = [init for init in graph.initializer if init.name != shape_name]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    del graph.input[:]
    flat_input = graph.input.add(name=INPUT_NAME)
    flat_input.type.tensor_type.elem_type = FLOAT
    flat_input.type.tensor_type.shape.dim.add(dim_param="N")
    flat_input.type.tensor_type.shape.dim.add(dim_value=64)
    return flat
