"""Load the exported ONNX model and run it: onnxruntime where it exists, numpy everywhere.

The model contract (input ``frames`` float32 [N, 8, 8], outputs ``state``, ``distances``,
``embedding``, metadata ``states`` etc.) is in docs/architecture.md; this module checks it
on load so a wrong file fails with one line instead of a shape error mid-count.

Backends:

* ``onnxruntime``: two sessions over the same bytes. The single-frame session runs on one
  thread with io_binding: the input and all outputs are numpy buffers bound once, so a call
  is "copy 64 floats in, run, read one int64" with no allocation and no output dict. The
  batch session keeps onnxruntime's default thread pool for throughput.
* ``numpy``: :mod:`thermalcount.model.numpy_backend` executes the same graph node by
  node, for machines without onnxruntime wheels (Pi Zero W, 32-bit Raspberry Pi OS).

``auto`` picks onnxruntime when it can be imported, else numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.rules import APART_PLACES, FrameRules, apart_where

MODEL_FORMAT = "thermalcount-model/1"
INPUT_NAME = "frames"
OUTPUT_NAMES = ("state", "distances", "embedding")
BACKENDS = ("auto", "onnxruntime", "numpy")
REQUIRED_METADATA = ("format", "states", "travel_axis", "latent", "clusters")
STATE_NAMES = ("empty", "low", "middle", "high", "two")
DEFAULT_MODEL_RESOURCE = "default_model.onnx"


@dataclass(frozen=True)
class StateMeaning:
    """What a cluster means: how many people, and where the warm blob sits (0..1)."""

    cluster: int
    name: str
    position: Optional[float]
    people: int
    #: None for a cluster; "faint edge" or "two humps" for a frame rule's state (frame_rules.py).
    rule: Optional[str] = None
    #: Two people apart: where the pair sits ("low": one at the low edge and one further
    #: in, "both": one near each end, "high"), else None.
    apart: Optional[str] = None


class InferenceResult(NamedTuple):
    state: np.ndarray  # (N,) int64
    distances: np.ndarray  # (N, K) float32
    embedding: np.ndarray  # (N, latent) float32


def default_model_path() -> Path:
    """Where the embedded default model lives inside the installed package."""
    return Path(__file__).resolve().parent.parent / "data" / DEFAULT_MODEL_RESOURCE


class Model:
    """A loaded model with one backend. Use :meth:`Model.load`."""

    def __init__(self, *, path: Path, backend_impl, meanings: list, travel_axis: str,
                 latent: int, clusters: int, metadata: dict):
        self.path = path
        self._impl = backend_impl
        self.backend: str = backend_impl.name
        self.meanings: list = meanings
        self.travel_axis: str = travel_axis
        self.latent: int = latent
        self.clusters: int = clusters
        self.metadata: dict = metadata
        #: Seconds of the per-pixel background this model wants removed before its graph
        #: (thermalcount.model.pattern), or None. Then the model remembers the stream:
        #: call :meth:`start_stream` before each new one.
        self.pattern_seconds: Optional[float] = _pattern_seconds(metadata, path)
        self.tracker = None
        self.start_stream()

    def start_stream(self, fps: float = 10.0) -> None:
        """Begin a new frame stream at ``fps`` (10 when unknown): forget the per-pixel
        background of the last one (models without one: nothing to forget). ``infer_one``, ``infer`` and
        ``infer_states`` then take the stream's frames in order."""
        if self.pattern_seconds is None:
            # Bound once: the live loop calls this ~10 times a second for days.
            self.infer_one = self._impl.infer_one
            return
        from thermalcount.model.pattern import PatternTracker, stream_fps

        self.tracker = PatternTracker(self.pattern_seconds, stream_fps(fps))
        correct_one, infer_one = self.tracker.correct_one, self._impl.infer_one
        self.infer_one = lambda frame: infer_one(correct_one(frame))

    def _prepared(self, frames: np.ndarray) -> np.ndarray:
        if self.tracker is not None:
            return self.tracker.correct(frames)
        return np.ascontiguousarray(frames)

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, backend: str = "auto") -> "Model":
        """Load ``path`` (None or ``"default"``: the embedded model) with ``backend``."""
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if path is None or str(path) == "default":
            path = default_model_path()
            if not path.is_file():
                raise ModelError("the embedded default model is missing from this install; "
                                 "reinstall thermalcount or pass --model PATH")
        path = Path(path)
        return cls.from_bytes(_read_bytes(path), path, backend)

    @classmethod
    def from_bytes(cls, data: bytes, path: Path, backend: str = "auto") -> "Model":
        """The one validator of an exported model: ``count``, ``run``, ``inspect`` and
        ``export`` (before it writes) all go through it, so none accepts what another refuses.
        ``path`` names the model in messages."""
        proto = _parse(data, path)
        _check_io(proto, path)
        metadata = {entry.key: entry.value for entry in proto.metadata_props}
        meanings, travel_axis, latent, clusters = _check_metadata(metadata, path)
        impl = _make_backend(backend, data, proto, path)
        model = cls(path=path, backend_impl=impl, meanings=meanings, travel_axis=travel_axis,
                    latent=latent, clusters=clusters, metadata=metadata)
        _probe(model, path)
        return model

    # infer_one is set per instance in __init__ (the backend's bound method).
    def infer_one(self, frame: np.ndarray) -> int:  # pragma: no cover - replaced in start_stream
        """(8, 8) float32 °C -> state index."""
        raise NotImplementedError

    def infer(self, frames: np.ndarray) -> InferenceResult:
        """(N, 8, 8) float32 °C -> InferenceResult(state, distances, embedding)."""
        frames = _batch(frames)
        if len(frames) == 0:
            return InferenceResult(np.zeros(0, np.int64), np.zeros((0, self.clusters), np.float32),
                                   np.zeros((0, self.latent), np.float32))
        return self._impl.infer(self._prepared(frames))

    def infer_states(self, frames: np.ndarray) -> np.ndarray:
        """Only the states (N,) int64 of a batch: what ``count`` needs, skipping the nodes
        that compute distances and embedding."""
        frames = _batch(frames)
        if len(frames) == 0:
            return np.zeros(0, np.int64)
        states = self._impl.infer_states(self._prepared(frames))
        if states.min() < 0 or states.max() >= len(self.meanings):  # two passes over N ints: ~free
            bad = int(np.flatnonzero((states < 0) | (states >= len(self.meanings)))[0])
            raise self.state_error(int(states[bad]), f"frame {bad} of this batch")
        return states

    def state_error(self, state: int, where: str) -> ModelError:
        """The error for a graph that answered a state its metadata does not list."""
        return ModelError(f"{self.path} gave state {state} for {where}, but its metadata lists "
                          f"states 0-{len(self.meanings) - 1}; the model file is damaged: "
                          "re-export it with 'thermalcount export'")

    def __repr__(self) -> str:
        return (f"<Model {self.path.name} backend={self.backend} clusters={self.clusters} "
                f"latent={self.latent} travel_axis={self.travel_axis}>")


# ------------------------------------------------------------------------------- checks


def _probe_frames() -> np.ndarray:
    """An empty room, a warm blob at each end, and a hot room: frames any model must take."""
    frames = np.full((4, 8, 8), 22.0, np.float32)
    frames[1, 0:3, 3:5] = 30.0
    frames[2, 5:8, 3:5] = 30.0
    frames[3] = 35.0
    return frames


def _probe(model: "Model", path: Path) -> None:
    """Run the probe frames through both paths of the backend at load, so a graph that
    validates but cannot run (or answers states it does not have) fails here in one line,
    not in the middle of a count. Costs well under a millisecond."""
    frames = _probe_frames()
    try:
        batch = np.asarray(model._impl.infer_states(frames)).reshape(-1)
        singles = [model._impl.infer_one(frame) for frame in frames]
    except ModelError:
        raise
    except Exception as error:  # a backend's own error types: the graph is at fault
        message = " ".join(str(error).split())[:160]
        raise ModelError(f"the {model.backend} backend cannot run {path} ({type(error).__name__}: "
                         f"{message}); re-export the model with 'thermalcount export'") from None
    for index, state in enumerate(list(batch) + singles):
        if not 0 <= int(state) < len(model.meanings):
            raise model.state_error(int(state), f"test frame {index % len(frames)}")


def _read_bytes(path: Path) -> bytes:
    from thermalcount.support.safe_files import lookup, special_kind

    info = lookup(path, ModelError)
    if info is None:
        raise ModelError(f"model file {path} does not exist; pass --model PATH to an exported "
                         ".onnx file or --model default")
    if path.is_dir():
        raise ModelError(f"model path {path} is a directory; pass the .onnx file inside it")
    kind = special_kind(info.st_mode)
    if kind is not None:  # reading a FIFO would wait for a writer forever
        raise ModelError(f"model file {path} is {kind}, not a file; pass an exported .onnx file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read model file {path} ({error.strerror}); check its permissions") \
            from None


def _parse(data: bytes, path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelError(f"model file {path} is empty; re-export it with 'thermalcount export'")
    if data[:4] == b"PK\x03\x04":
        # A training model file (a zip of arrays): the runtime needs its exported graph.
        raise ModelError(f"{path} is a training model, not an exported one; run "
                         f"'thermalcount export {path} --out model.onnx' and pass the .onnx file")
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError):
        raise ModelError(f"{path} is not an ONNX model; pass a file written by "
                         "'thermalcount export'") from None
    if not proto.graph.node:
        raise ModelError(f"{path} is not an ONNX model (no graph); pass a file written by "
                         "'thermalcount export'")
    return proto


def _check_io(proto, path: Path) -> None:
    from onnx import TensorProto

    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    names = [value.name for value in inputs]
    if names != [INPUT_NAME]:
        raise ModelError(f"{path} has inputs {names}, expected one input named {INPUT_NAME!r} "
                         "(float32 [N, 8, 8]); re-export it with 'thermalcount export'")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != TensorProto.FLOAT:
        raise ModelError(f"{path}: input {INPUT_NAME!r} must be float32, not "
                         f"{TensorProto.DataType.Name(tensor.elem_type).lower()}; re-export the model")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) != 3 or dims[1:] != [8, 8] or dims[0] not in (None, 0):
        shown = "x".join("N" if d is None else str(d) for d in dims) or "scalar"
        raise ModelError(f"{path}: input {INPUT_NAME!r} has shape {shown}, expected Nx8x8 with a "
                         "free batch dimension; re-export the model")
    outputs = {value.name: value.type.tensor_type.elem_type for value in graph.output}
    expected = {"state": TensorProto.INT64, "distances": TensorProto.FLOAT,
                "embedding": TensorProto.FLOAT}
    for name, elem in expected.items():
        if name not in outputs:
            raise ModelError(f"{path} has no output {name!r} (outputs: {sorted(outputs)}); "
                             "re-export it with 'thermalcount export'")
        if outputs[name] != elem:
            raise ModelError(f"{path}: output {name!r} has the wrong type; re-export the model")


def _check_metadata(metadata: dict, path: Path):
    for key in REQUIRED_METADATA:
        if key not in metadata:
            raise ModelError(f"{path} is missing metadata {key!r}; re-export it with "
                             "'thermalcount export'")
    if metadata["format"] != MODEL_FORMAT:
        raise ModelError(f"{path} has format {metadata['format']!r}, this thermalcount reads "
                         f"{MODEL_FORMAT!r}; re-export it or upgrade thermalcount")
    try:
        latent, clusters = int(metadata["latent"]), int(metadata["clusters"])
        states = json.loads(metadata["states"])
    except (ValueError, TypeError):
        raise ModelError(f"{path} has malformed metadata 'latent', 'clusters' or 'states'; "
                         "re-export the model") from None
    travel_axis = metadata["travel_axis"]
    if travel_axis not in ("rows", "columns"):
        raise ModelError(f"{path}: metadata travel_axis is {travel_axis!r}, expected 'rows' or "
                         "'columns'; re-export the model")
    try:
        rules = FrameRules(states)  # also checks that states is a list of objects
    except ModelError as error:
        raise ModelError(f"{path}: {error}") from None
    if rules.clusters != clusters or clusters < 1:
        raise ModelError(f"{path}: metadata 'states' must list one entry per cluster ({clusters}), then the "
                         "frame rules' states; re-export the model")
    meanings = []
    for index, entry in enumerate(states):
        try:
            position = entry["position"]
            meaning = StateMeaning(int(entry["cluster"]), str(entry["name"]),
                                   None if position is None else float(position),
                                   int(entry["people"]), entry["rule"]["test"] if "rule" in entry else None,
                                   apart_where(entry))
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{path}: metadata 'states' entry {index} needs cluster, name, "
                             "position and people; re-export the model") from None
        if meaning.cluster != index or meaning.people < 0 or meaning.apart not in (None, *APART_PLACES) or (
                meaning.position is not None and not 0.0 <= meaning.position <= 1.0):
            raise ModelError(f"{path}: metadata 'states' entry {index} is inconsistent "
                             f"({entry}); re-export the model")
        meanings.append(meaning)
    return meanings, travel_axis, latent, clusters


def _batch(frames) -> np.ndarray:
    """Frames as float32 (N, 8, 8); ModelError for any other shape."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (8, 8):
        raise ModelError(f"frames must have shape (N, 8, 8), got {frames.shape}")
    return frames


def _pattern_seconds(metadata: dict, path: Path) -> Optional[float]:
    """``pattern_seconds`` from the model's preprocessing description (None: no tracker)."""
    try:
        value = json.loads(metadata.get("preprocessing", "{}")).get("pattern_seconds")
        seconds = None if value is None else float(value)
    except (ValueError, TypeError, AttributeError):
        raise ModelError(f"{path}: metadata 'preprocessing' is malformed; re-export the model") from None
    if seconds is not None and not seconds > 0:
        raise ModelError(f"{path}: metadata pattern_seconds must be positive; re-export the model")
    return seconds


# ------------------------------------------------------------------------------ backends


def _make_backend(backend: str, data: bytes, proto, path: Path):
    if backend in ("auto", "onnxruntime"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if backend == "onnxruntime":
                raise ModelError("onnxruntime is not installed (no wheel for this machine?); "
                                 "pip install onnxruntime or use --backend numpy") from None
        else:
            return OnnxRuntimeBackend(data, proto, path)
    try:
        return NumpyBackend(proto)
    except ModelError:
        raise
    except Exception as error:  # a graph that onnx accepts but whose nodes do not fit together
        message = " ".join(str(error).split())[:160]
        raise ModelError(f"the numpy backend cannot run {path} ({type(error).__name__}: {message}); "
                         "re-export the model with 'thermalcount export'") from None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, data: bytes, proto, path: Path):
        import onnxruntime as ort

        self._ort = ort
        self._batch_states = None  # made on first use: only `count` needs it
        try:
            # onnxruntime runs every node of a session's graph whatever outputs are bound, so
            # the live path gets the graph cut down to what 'state' needs (measured: ~15 %
            # faster per frame than binding all three outputs of the full graph).
            state_proto = state_only_graph(proto)
            self._state_graph = state_proto.SerializeToString()
            # Single frames skip the graph's leading Reshape: the same buffer is bound as
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
    """Batches use onnxruntime's default thread pool, without spin-waiting: during a count
    the other threads inflate chunks, and spinning workers took their CPU (measured: a
    count at 0.43-0.49 M frames/s with spinning, 0.61-0.63 without, same machine and load)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def state_only_graph(proto):
    """A copy of the model holding only the nodes and weights the ``state`` output needs."""
    import onnx

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
    pruned = onnx.ModelProto()
    pruned.CopyFrom(proto)
    del pruned.graph.node[:]
    pruned.graph.node.extend(n for n in graph.node if id(n) in needed_nodes)
    del pruned.graph.initializer[:]
    pruned.graph.initializer.extend(i for i in graph.initializer if i.name in needed_names)
    del pruned.graph.output[:]
    pruned.graph.output.extend(o for o in graph.output if o.name == "state")
    del pruned.graph.value_info[:]
    _drop_shared_distance_term(pruned.graph)
    return pruned


def without_leading_reshape(proto):
    """A copy of ``proto`` whose input ``frames`` is [N, 64] in place of its first node
    ``Reshape(frames, [-1, 64])``, or None when the graph does not start that way."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    first = graph.node[0] if graph.node else None
    inits = {init.name: init for init in graph.initializer}
    if (first is None or first.op_type != "Reshape" or first.input[0] != INPUT_NAME
            or len(first.input) < 2 or first.input[1] not in inits
            or numpy_helper.to_array(inits[first.input[1]]).reshape(-1).tolist() not in ([-1, 64], [0, 64])
            or any(INPUT_NAME in node.input for node in graph.node[1:])
            or INPUT_NAME in [output.name for output in graph.output]):
        return None
    flat = onnx.ModelProto()
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
    graph.input.extend([helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 64])])
    return flat


def _drop_shared_distance_term(graph) -> None:
    """Rewrite ``ArgMin(partial + ReduceSumSquare(z))`` with ``[z | partial] = Split(Gemm(h))``
    into ``ArgMin(Gemm(h))`` over the ``partial`` columns only, in place.

    ``||z||^2`` is the same for every centroid, so it cannot change which one is nearest:
    the state path loses Split, ReduceSumSquare, Add and the embedding columns of the Gemm.
    Measured with ``thermalcount bench`` (ort_bound.state_path row): single-frame p50 from
    ~1.4x to ~1.13x the hand-folded floor. Only a float32 near-tie (two distances equal to
    within rounding of ``||z||^2``) could pick the other of the two. Any other graph shape
    is left as it is.
    """
    from onnx import helper, numpy_helper

    producer = {name: node for node in graph.node for name in node.output}
    inits = {init.name: init for init in graph.initializer}

    def made_by(name, op):
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    argmin = made_by("state", "ArgMin")
    add = made_by(argmin.input[0], "Add") if argmin is not None else None
    if add is None:
        return
    for partial, norm in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        square = made_by(norm, "ReduceSumSquare")
        split = made_by(partial, "Split")
        if square is not None and split is not None:
            break
    else:
        return
    gemm = made_by(split.input[0], "Gemm")
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute} if gemm is not None else {}
    split_axis = {a.name: helper.get_attribute_value(a) for a in split.attribute}.get("axis", 0)
    if (gemm is None or len(split.output) != 2 or list(split.output) != [square.input[0], partial]
            or split_axis not in (1, -1) or len(split.input) < 2 or split.input[1] not in inits
            or len(gemm.input) < 3 or gemm.input[1] not in inits or gemm.input[2] not in inits
            or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0)):
        return
    sizes = numpy_helper.to_array(inits[split.input[1]]).reshape(-1)
    weight = numpy_helper.to_array(inits[gemm.input[1]])
    bias = numpy_helper.to_array(inits[gemm.input[2]])
    latent = int(sizes[0])
    columns = weight.shape[0] if attrs.get("transB", 0) else weight.shape[1]
    if len(sizes) != 2 or int(sizes.sum()) != columns or bias.ndim != 1 or bias.shape[0] != columns:
        return
    weight = weight[latent:] if attrs.get("transB", 0) else weight[:, latent:]
    names = (gemm.input[1] + "_state", gemm.input[2] + "_state", partial + "_state")
    new_gemm = helper.make_node("Gemm", [gemm.input[0], names[0], names[1]], [names[2]],
                                name=(gemm.name or "gemm") + "_state", transB=int(attrs.get("transB", 0)))
    argmin.input[0] = names[2]
    nodes = [new_gemm if node is gemm else node for node in graph.node
             if node is not split and node is not square and node is not add]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(weight), names[0]),
                              numpy_helper.from_array(np.ascontiguousarray(bias[latent:]), names[1])])
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


class NumpyBackend:
    name = "numpy"
    #: Batches run in blocks of this many frames: big enough to spread numpy's per-call cost,
    #: small enough for the intermediates to stay in cache. (Matrix products are further
    #: cut into 256-row calls, see numpy_ops.BLAS_ROWS.)
    block_frames = 1024

    def __init__(self, proto):
        from thermalcount.model.numpy_backend import compile_graph

        self._program = compile_graph(proto, INPUT_NAME, list(OUTPUT_NAMES))
        # Single frames run the state-only graph (no shared ||z||^2 term, see
        # _drop_shared_distance_term), like the onnxruntime backend: ~2 us less per frame.
        plan = compile_graph(state_only_graph(proto), INPUT_NAME, ["state"]).single_frame_plan((1, 8, 8), "state")
        if plan is None:
            self.infer_one = self._infer_one_general
        else:
            frame_buffer, self._calls, self._state = plan
            self._view = frame_buffer.reshape(8, 8)
            self._state_flat = self._state.reshape(-1)

    def infer_one(self, frame: np.ndarray) -> int:
        self._view[...] = frame
        for call in self._calls:
            call()
        return int(self._state_flat[0])

    def _infer_one_general(self, frame: np.ndarray) -> int:
        frames = np.asarray(frame, np.float32).reshape(1, 8, 8)
        return int(np.asarray(self._program.run(frames)[0]).reshape(-1)[0])

    def infer(self, frames: np.ndarray) -> InferenceResult:
        block = self.block_frames
        if len(frames) <= block:
            state, distances, embedding = self._program.run(frames)
            return InferenceResult(np.asarray(state, np.int64), np.asarray(distances, np.float32),
                                   np.asarray(embedding, np.float32))
        parts = [self._program.run(frames[i:i + block]) for i in range(0, len(frames), block)]
        return InferenceResult(*(np.concatenate([p[k] for p in parts]) for k in range(3)))

    def infer_states(self, frames: np.ndarray) -> np.ndarray:
        block = self.block_frames
        run = self._program.run_one_output
        if len(frames) <= block:
            return np.asarray(run(frames, "state"), np.int64).reshape(-1)
        return np.concatenate([np.asarray(run(frames[i:i + block], "state"), np.int64).reshape(-1)
                               for i in range(0, len(frames), block)])
