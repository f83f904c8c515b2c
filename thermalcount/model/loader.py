"""Load the exported ONNX model and run it: onnxruntime where it exists, numpy everywhere.

:meth:`Model.from_bytes` is THE validator of an exported model: it checks the contract
(:mod:`thermalcount.model.contract`) and runs a few test frames, so a wrong file fails with
one line instead of a shape error mid-count.

Backends:

* ``onnxruntime``: :mod:`thermalcount.model.onnxruntime_backend`.
* ``numpy``: :class:`NumpyBackend` over :mod:`thermalcount.model.numpy_backend`, which
  executes the same graph node by node, for machines without onnxruntime wheels (Pi Zero W,
  32-bit Raspberry Pi OS).

``auto`` picks onnxruntime when it can be imported, else numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model import contract
from thermalcount.model.contract import INPUT_NAME, OUTPUT_NAMES, InferenceResult

BACKENDS = ("auto", "onnxruntime", "numpy")


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
        self.pattern_seconds: Optional[float] = contract.pattern_seconds(metadata, path)
        self.tracker = None
        self.start_stream()

    def start_stream(self, fps: float = 10.0) -> None:
        """Begin a new frame stream at ``fps`` (10 when unknown): forget the per-pixel
        background of the last one (models without one: nothing to forget). ``infer_one``, ``infer`` and
        ``infer_states`` then take the stream's frames in order."""
        if self.pattern_seconds is None:
            # Bound once: the live loop calls this ~10 times a second for days.
            self.infer_one = self._impl.infer_one
            self.settle = _nothing_to_settle
            return
        from thermalcount.model.pattern import PatternTracker, stream_fps

        self.tracker = PatternTracker(self.pattern_seconds, stream_fps(fps))
        correct_one, infer_one = self.tracker.correct_one, self._impl.infer_one
        self.infer_one = lambda frame: infer_one(correct_one(frame))
        self.settle = self.tracker.settle

    # settle is set per instance in start_stream (the tracker's bound method, or a no-op).
    def settle(self) -> bool:  # pragma: no cover - replaced in start_stream
        """Work :meth:`infer_one` left for after the frame's decision: the per-pixel
        background's step update, every 32nd frame (model/pattern.py, ``settle``). Call it
        once the frame's state has been acted on; skipping it changes no result, the next
        frame then does the work first. True when there was work."""
        raise NotImplementedError

    def _prepared(self, frames: np.ndarray) -> np.ndarray:
        if self.tracker is not None:
            return self.tracker.correct(frames)
        return np.ascontiguousarray(frames)

    @classmethod
    def load(cls, path: Union[str, Path, None] = None, backend: str = "auto") -> "Model":
        """Load ``path`` (None or ``"default"``: the embedded model) with ``backend``."""
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        path = contract.resolve_model_path(path)
        return cls.from_bytes(contract.read_model_bytes(path), path, backend)

    @classmethod
    def from_bytes(cls, data: bytes, path: Path, backend: str = "auto") -> "Model":
        """The one validator of an exported model: ``count``, ``run``, ``inspect`` and
        ``export`` (before it writes) all go through it, so none accepts what another refuses.
        ``path`` names the model in messages."""
        use_onnxruntime = backend in ("auto", "onnxruntime") and _onnxruntime_installed()
        # Parsed without `import onnx` (most of start-up, see onnx_schema) for both backends:
        # onnxruntime takes the bytes and needs only the graph's wiring from Python, the numpy
        # backend reads every node's attributes and initializers through the same messages.
        proto = contract.parse_model(data, path, light=True)
        contract.check_io(proto, path)
        metadata = {entry.key: entry.value for entry in proto.metadata_props}
        meanings, travel_axis, latent, clusters = contract.check_metadata(metadata, path)
        impl = _make_backend(backend, use_onnxruntime, data, proto, path)
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
        that compute distances and embedding. The same as ``states_of(prepare(frames))``."""
        return self.states_of(self.prepare(frames))

    def prepare(self, frames: np.ndarray) -> np.ndarray:
        """The first half of :meth:`infer_states`: (N, 8, 8) °C -> the graph's input, with the
        per-pixel background removed. It learns the stream, so batches go in stream order."""
        frames = _batch(frames)
        return self._prepared(frames) if len(frames) else frames

    def states_of(self, prepared: np.ndarray) -> np.ndarray:
        """The second half of :meth:`infer_states`: the graph on what :meth:`prepare` gave.
        It remembers nothing, so it may run on another thread while the next batch is
        prepared (``count`` does: onnxruntime works without Python's lock)."""
        if len(prepared) == 0:
            return np.zeros(0, np.int64)
        states = self._impl.infer_states(prepared)
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


def _nothing_to_settle() -> bool:
    return False


def _batch(frames) -> np.ndarray:
    """Frames as float32 (N, 8, 8); ModelError for any other shape."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3 or frames.shape[1:] != (8, 8):
        raise ModelError(f"frames must have shape (N, 8, 8), got {frames.shape}")
    return frames


# ------------------------------------------------------------------------------ backends


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _make_backend(backend: str, use_onnxruntime: bool, data: bytes, proto, path: Path):
    if use_onnxruntime:
        from thermalcount.model.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(data, proto, path)
    if backend == "onnxruntime":
        raise ModelError("onnxruntime is not installed (no wheel for this machine?); "
                         "pip install onnxruntime or use --backend numpy")
    try:
        return NumpyBackend(proto)
    except ModelError:
        raise
    except Exception as error:  # a graph that onnx accepts but whose nodes do not fit together
        message = " ".join(str(error).split())[:160]
        raise ModelError(f"the numpy backend cannot run {path} ({type(error).__name__}: {message}); "
                         "re-export the model with 'thermalcount export'") from None


class NumpyBackend:
    name = "numpy"
    #: Batches run in blocks of this many frames: big enough to spread numpy's per-call cost,
    #: small enough for the intermediates to stay in cache. (Matrix products are further
    #: cut into 256-row calls, see numpy_ops.BLAS_ROWS.)
    block_frames = 1024

    def __init__(self, proto):
        from thermalcount.model.graph import state_only_graph
        from thermalcount.model.numpy_backend import compile_graph

        self._program = compile_graph(proto, INPUT_NAME, list(OUTPUT_NAMES))
        # Single frames run a program compiled from the state-only graph, like the onnxruntime
        # backend. The full program's own plan for 'state' has the same 45 calls but was
        # slower (default model, one frame: ~77 us against ~57 us, measured 2026-12-06; why
        # was not investigated: see numpy_backend's single_frame_plan).
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
