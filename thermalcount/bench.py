"""``thermalcount bench``: how long each part of the live path takes, next to the floor.

Method (docs/performance.md says why):

* Every single-frame figure comes from ONE process and ONE interleaved loop: each variant
  runs a block of calls in turn, round after round, so a noisy neighbour on a shared machine
  slows every variant alike and the ratios stay meaningful. Absolute figures drift between
  runs; ratios measured together do not.
* Each call is timed on its own with ``time.perf_counter_ns``; the cyclic garbage collector
  is paused inside a timed block (as ``timeit`` does) so one variant's garbage is not
  collected on another's clock. Every variant is warmed up first.
* Frames come from the emulated AMG8833 through the real driver and smbus2; the counter and
  the light decision see the states of those frames in order, at 10 FPS times.

This module never imports torch or scikit-learn; the PyTorch comparison row lives in
:mod:`thermalcount.bench_torch` and is imported only when torch is installed.
"""

from __future__ import annotations

import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable, Optional

import numpy as np

from thermalcount.errors import ModelError, UsageError

SCHEMA = "thermalcount-bench/1"
FPS = 10.0
FRAME_PERIOD_US = 1e6 / FPS
ORIGINAL_TARGET_US = (30_000.0, 40_000.0)  # the original design on a Pi Zero
BLOCK_CALLS = 100  # calls per variant per round of the interleaved loop
WARMUP_CALLS = 500
BACKEND_CHOICES = ("auto", "onnxruntime", "numpy", "all")

# Targets of issue 5: reported, never asserted.
TARGET_FLOOR_RATIO = 1.2
TARGET_WHOLE_FRAME_P99_US = 50.0
TARGET_TORCH_SPEEDUP = 15.0
TARGET_COUNT_FPS = 1_000_000
TARGET_STARTUP_S = 1.0


def _installed(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (a blocked import counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------------ statistics


def summarize(samples_ns) -> dict:
    """p50 / p90 / p99 / max / mean in µs of per-call times in ns."""
    values = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    if not len(values):
        return {"samples": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50_us": round(float(p50), 3), "p90_us": round(float(p90), 3),
            "p99_us": round(float(p99), 3), "max_us": round(float(values.max()), 3),
            "mean_us": round(float(values.mean()), 3), "samples": int(len(values))}


def interleaved(variants: dict, calls: int, block: int = BLOCK_CALLS,
                warmup: int = WARMUP_CALLS) -> dict:
    """Time ``calls`` calls of every zero-argument callable in ``variants``, in turns.

    Returns name -> int64 array of per-call ns. Each variant advances its own frame cursor,
    so a stateful stage (the counter) sees one continuous stream.
    """
    clock = time.perf_counter_ns
    for step in variants.values():
        for _ in range(warmup):
            step()
    samples = {name: np.empty(calls, np.int64) for name in variants}
    done = 0
    gc_was_enabled = gc.isenabled()
    try:
        while done < calls:
            n = min(block, calls - done)
            for name, step in variants.items():
                out = samples[name]
                gc.disable()
                for i in range(done, done + n):
                    start = clock()
                    step()
                    out[i] = clock() - start
                if gc_was_enabled:
                    gc.enable()
            done += n
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


# ----------------------------------------------------------------------------- the machine


def machine_note() -> dict:
    """CPU, cores and versions, so figures from different machines can be compared."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(name: str) -> Optional[str]:
        # Read from the installed metadata: importing torch just to print its version would
        # cost a second and defeat --no-torch.
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    from thermalcount import __version__

    return {
        "cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "thermalcount": __version__,
        "numpy": np.__version__, "onnxruntime": version("onnxruntime"), "onnx": version("onnx"),
        "torch": version("torch"),
        # Other jobs on the machine lengthen the tails (p99, max) first: note how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
    }


# ------------------------------------------------------------------- weights and floor graphs


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

    from thermalcount.preprocessing import Preprocessing

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
    return {
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
    before its first Gemm are kept in front (input ``frames`` [N, 8, 8]): the same states as
    the exported graph, since ``argmin_k(‖z‖² + p_k) = argmin_k p_k``, in fewer nodes.
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


def single_frame_session(model_bytes: bytes):
    """An onnxruntime session set up like the runtime's single-frame one (1 thread, no spin)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


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


# ------------------------------------------------------------------------------ live stages


def capture_frames(n_frames: int, *, seed: int = 0, bus: int = 1):
    """``(sensor, frames, raw)``: n frames read from the emulated AMG8833 at full speed.

    The sensor stays open (the caller closes it): the interleaved loop keeps reading from it
    to time the full ``read()``. ``raw`` holds each frame's 128 register bytes.
    """
    from thermalcount.sensors import open_sensor
    from thermalcount.sensors.conversions import pixels_to_bytes

    sensor = open_sensor("emulated", speed=None, bus=bus, seed=seed)
    try:
        frames = np.empty((n_frames, 8, 8), np.float32)
        for i in range(n_frames):
            frames[i] = sensor.read().pixels
    except BaseException:
        sensor.close()
        raise
    # Orientation is the identity here, so the register bytes are the frame's own bytes.
    raw = [pixels_to_bytes(frame) for frame in frames]
    return sensor, frames, raw


def driver_decode():
    """``decode(raw) -> SensorFrame``: the driver's per-frame arithmetic after the I2C read.

    The same steps, in the same order, as ``AMG8833.read()`` after its transfer: stale-frame
    comparison, :func:`~thermalcount.sensors.conversions.pixels_from_bytes`, the plausibility
    range check, orientation and the SensorFrame.
    """
    from thermalcount.sensors.amg8833 import PIXEL_PLAUSIBLE_C
    from thermalcount.sensors.base import SensorFrame
    from thermalcount.sensors.conversions import parse_orientation, pixels_from_bytes

    permutation = parse_orientation(None).permutation()
    low, high = PIXEL_PLAUSIBLE_C
    last = [b""]
    wall = time.time

    def decode(raw: bytes, index: int):
        if raw == last[0]:
            pass  # the driver counts repeats here
        last[0] = raw
        values = pixels_from_bytes(raw)
        if values.min() < low or values.max() > high:
            raise ValueError("implausible pixel")
        return SensorFrame(values[permutation].reshape(8, 8), wall(), index, None)
    return decode


class _Cursor:
    """A frame index that runs on forever over a pool, with 10 FPS times that never go back."""

    __slots__ = ("i", "n")

    def __init__(self, n: int):
        self.i, self.n = -1, n

    def next(self) -> tuple:
        self.i += 1
        return self.i % self.n, self.i * (1.0 / FPS)


def live_variants(models: dict, frames: np.ndarray, raw: list, sensor, meanings, off_delay: float = 30.0):
    """Zero-argument callables, one per live stage and backend, each on its own cursor."""
    from thermalcount.lights.policy import LightPolicy
    from thermalcount.runtime.counter import Counter

    n = len(frames)
    first_model = next(iter(models.values()))
    states = first_model.infer_states(frames)
    occupancy = np.empty(n, np.int64)
    replay = Counter(meanings)
    for i in range(n):
        replay.update(i / FPS, int(states[i]), i)
        occupancy[i] = replay.occupancy
    states_list, occupancy_list = [int(s) for s in states], [int(o) for o in occupancy]
    variants = {}
    read = sensor.read
    variants["sensor_read"] = read

    decode, decode_cursor = driver_decode(), _Cursor(n)

    def decode_step():
        i, _ = decode_cursor.next()
        decode(raw[i], i)
    variants["decode"] = decode_step

    counter, counter_cursor = Counter(meanings), _Cursor(n)

    def counter_step():
        i, t = counter_cursor.next()
        counter.update(t, states_list[i], counter_cursor.i)
    variants["counter"] = counter_step

    policy, policy_cursor = LightPolicy(off_delay), _Cursor(n)

    def light_step():
        i, t = policy_cursor.next()
        policy.update(t, occupancy_list[i])
    variants["light_decision"] = light_step

    for backend, model in models.items():
        infer_one, cursor = model.infer_one, _Cursor(n)

        def infer_step(infer_one=infer_one, cursor=cursor):
            infer_one(frames[cursor.next()[0]])
        variants[f"inference.{backend}"] = infer_step
        variants[f"whole_frame.{backend}"] = _whole_frame(model, raw, meanings, off_delay, read=None)
        variants[f"whole_frame_with_read.{backend}"] = _whole_frame(model, raw, meanings, off_delay, read=read)
    return variants, states


def _whole_frame(model, raw: list, meanings, off_delay: float, read=None) -> Callable:
    """One frame of the live loop: (read +) decode, inference, counter, light decision."""
    from thermalcount.lights.policy import LightPolicy
    from thermalcount.runtime.counter import Counter

    decode, cursor = driver_decode(), _Cursor(len(raw))
    counter, policy = Counter(meanings), LightPolicy(off_delay)
    infer_one, update, decide = model.infer_one, counter.update, policy.update

    def step():
        i, t = cursor.next()
        pixels = read().pixels if read is not None else decode(raw[i], i).pixels
        update(t, infer_one(pixels), cursor.i)
        decide(t, counter.occupancy)
    return step


def comparison_variants(proto, metadata: dict, use_torch: bool) -> tuple:
    """``(variants, skipped, references)`` for the inference comparison rows.

    ``references`` maps a row to a batch function giving its states, for the agreement check.
    """
    variants, skipped, references = {}, {}, {}
    try:
        weights = model_weights(proto, metadata)
    except ModelError as error:
        return variants, {"floor": str(error), "torch_original": str(error)}, references
    if _installed("onnxruntime"):
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
    if not use_torch:
        skipped["torch_original"] = "skipped (--no-torch)"
    elif not _installed("torch"):
        skipped["torch_original"] = "torch is not installed (pip install 'thermalcount[train]' to compare)"
    else:
        try:
            from thermalcount.bench_torch import build_original
        except ImportError as error:
            skipped["torch_original"] = f"torch cannot be imported ({error})"
        else:
            infer_one, infer_states, _ = build_original(weights, weights["preprocessing"])
            variants["torch_original"] = infer_one
            references["torch_original"] = infer_states
    return variants, skipped, references


def _on_frames(infer_one: Callable, frames: np.ndarray) -> Callable:
    cursor = _Cursor(len(frames))

    def step():
        infer_one(frames[cursor.next()[0]])
    return step


# ------------------------------------------------------------------- throughput and start-up


def count_throughput(model, n_frames: int, *, chunk_frames: int = 65536, seed: int = 0, repeats: int = 3) -> dict:
    """Offline counting speed: batch inference + the run-length counter, in memory.

    What ``count`` does per chunk minus the HDF5 read (benchmarks/count_throughput.py times
    the command on a file). ``n_frames`` are made by repeating one simulated chunk of mixed
    scenes with times running on, so a million frames cost one chunk of memory. The best of
    ``repeats`` passes is the figure (the median is reported too): on a shared machine a pass
    can lose its cores to other jobs.
    """
    from thermalcount.runtime.counter import Counter
    from thermalcount.sensors.simulator import simulate

    if n_frames < 1:
        raise UsageError("--count-frames must be at least 1")
    base_n = min(chunk_frames, n_frames)
    base = simulate(base_n, "mixed", seed=seed)
    frames = np.ascontiguousarray(base.frames)
    base_times = np.arange(base_n, dtype=np.float64) / FPS
    model.infer_states(frames[:256])  # warm-up: first use builds the batch session
    passes = []
    for _ in range(repeats):
        counter = Counter(model.meanings)
        events = 0
        started = time.perf_counter_ns()
        done = 0
        while done < n_frames:
            n = min(base_n, n_frames - done)
            states = model.infer_states(frames[:n])
            events += len(counter.process(base_times[:n] + done / FPS, states, start_frame=done))
            done += n
        events += len(counter.finish())
        passes.append((time.perf_counter_ns() - started) / 1e9)
    seconds = min(passes)
    return {"backend": model.backend, "frames": n_frames, "chunk_frames": base_n, "repeats": repeats,
            "seconds": round(seconds, 4), "frames_per_second": round(n_frames / seconds),
            "median_frames_per_second": round(n_frames / float(np.median(passes))), "events": events}


_STARTUP_CODE = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from thermalcount.runtime.model import Model
imported = time.perf_counter()
model = Model.load(sys.argv[1], backend=sys.argv[2])
loaded = time.perf_counter()
model.infer_one(np.zeros((8, 8), np.float32))
done = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1e3, "load_ms": (loaded - imported) * 1e3,
                  "first_inference_ms": (done - loaded) * 1e3, "backend": model.backend,
                  "torch_imported": "torch" in sys.modules, "sklearn_imported": "sklearn" in sys.modules}))
"""


def startup_time(model_path: str, backend: str, repeats: int = 3) -> dict:
    """Import + model load in a fresh interpreter, best of ``repeats`` (process wall time too)."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", _STARTUP_CODE, str(model_path), backend],
                                capture_output=True, text=True, timeout=120)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return {"backend": backend, "error": last}
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        figures["process_ms"] = wall * 1e3
        runs.append(figures)
    best = min(runs, key=lambda r: r["process_ms"])
    out = {key: (round(value, 1) if isinstance(value, float) else value) for key, value in best.items()}
    out["import_and_load_ms"] = round(best["import_ms"] + best["load_ms"], 1)
    out["repeats"] = repeats
    return out


# ------------------------------------------------------------------------------- the bench


def resolve_backends(choice: str) -> list:
    """The backends to measure for ``--backend`` (``auto``: what the runtime would pick)."""
    if choice not in BACKEND_CHOICES:
        raise UsageError(f"unknown backend {choice!r}; use one of {', '.join(BACKEND_CHOICES)}")
    has_ort = _installed("onnxruntime")
    if choice == "all":
        return (["onnxruntime"] if has_ort else []) + ["numpy"]
    if choice == "auto":
        return ["onnxruntime" if has_ort else "numpy"]
    return [choice]


def run_bench(model_path=None, *, frames: int = 20000, backend: str = "auto", use_torch: bool = True,
              count_frames: int = 1_000_000, startup: bool = True, seed: int = 0, bus: int = 1,
              progress: Optional[Callable[[str], None]] = None) -> dict:
    """Run every measurement and return the report (the JSON object ``bench --json`` prints)."""
    from thermalcount.runtime.model import Model, default_model_path

    say = progress or (lambda message: None)
    if frames < 100:
        raise UsageError("--frames must be at least 100 for percentiles to mean anything")
    backends = resolve_backends(backend)
    if model_path is None or str(model_path) == "default":
        model_path = default_model_path()
    models = {name: Model.load(model_path, backend=name) for name in backends}
    first = next(iter(models.values()))
    import onnx

    proto = onnx.load_model(str(model_path))
    report = {"schema": SCHEMA, "machine": machine_note(),
              "model": {"path": str(model_path), "clusters": first.clusters, "latent": first.latent,
                        "nodes": [node.op_type for node in proto.graph.node]},
              "settings": {"frames": frames, "backends": backends, "block_calls": BLOCK_CALLS,
                           "warmup_calls": WARMUP_CALLS, "count_frames": count_frames,
                           "sensor": "emulated AMG8833 (real driver + smbus2), speed max", "seed": seed}}

    say(f"reading {frames} frames from the emulated AMG8833")
    sensor, pool, raw = capture_frames(frames, seed=seed, bus=bus)
    try:
        say("building comparison rows")
        live, _ = live_variants(models, pool, raw, sensor, first.meanings)
        compared, skipped, references = comparison_variants(proto, first.metadata, use_torch)
        variants = dict(live)
        variants.update({name: _on_frames(fn, pool) for name, fn in compared.items()})
        variants["timer_overhead"] = lambda: None
        say(f"timing {len(variants)} variants x {frames} calls, interleaved")
        samples = interleaved(variants, frames)
        head_to_head = {}
        if "ort_bound.floor" in compared:
            # The floor target again with only the two contenders in the loop: with twenty
            # variants in turn (torch among them) each block starts with cold caches, which
            # costs the bigger graph more than the floor.
            say("runtime against the folded floor, head to head")
            pair = {f"inference.{name}": _on_frames(model.infer_one, pool) for name, model in models.items()}
            pair["ort_bound.floor"] = _on_frames(compared["ort_bound.floor"], pool)
            head_to_head = {name: summarize(values) for name, values in interleaved(pair, frames).items()}
        # The whole frame again on its own: in the live loop nothing but the sensor read runs
        # between two frames, not twenty other variants.
        say("whole frame on its own")
        alone = {name: live[name] for name in live if name.startswith("whole_frame.")}
        whole_alone = {name: summarize(values) for name, values in interleaved(alone, frames).items()}
    finally:
        sensor.close()
    stats = {name: summarize(values) for name, values in samples.items()}
    report["stages"] = {name: stats[name] for name in live}
    report["comparison"] = {name: stats[name] for name in compared}
    report["comparison"]["timer_overhead"] = stats["timer_overhead"]
    report["skipped"] = skipped
    report["agreement"] = _agreement(pool, models, references)
    report["ratios"] = _ratios(stats, backends)
    report["head_to_head"] = head_to_head
    report["whole_frame_alone"] = whole_alone
    for name in backends:
        ratio = _ratio(head_to_head, f"inference.{name}", "ort_bound.floor")
        if ratio is not None:
            report["ratios"][f"head to head: inference.{name} / ort_bound.floor (p50)"] = ratio
    report["headroom"] = _headroom(stats, backends)

    if count_frames:
        report["throughput"] = {}
        for name, model in models.items():
            say(f"offline counting throughput on {count_frames:,} frames ({name})")
            report["throughput"][name] = count_throughput(model, count_frames, seed=seed)
    if startup:
        report["startup"] = {}
        for name in backends:
            say(f"start-up (import + load) in a fresh interpreter ({name})")
            report["startup"][name] = startup_time(str(model_path), name)
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = evaluate_targets(report)
    return report


def _agreement(pool: np.ndarray, models: dict, references: dict) -> dict:
    """How many benchmark frames get the state the exported graph's own ``state`` output gives
    (batch inference of the full graph), for each batch and single-frame path."""
    expected = np.asarray(next(iter(models.values())).infer(pool).state).reshape(-1)
    rows = {}
    for name, model in models.items():
        rows[name] = model.infer_states
        rows[f"{name} (single frame)"] = lambda frames, infer_one=model.infer_one: np.array(
            [infer_one(frame) for frame in frames])
    rows.update(references)
    out = {}
    for name, infer_states in rows.items():
        other = np.asarray(infer_states(pool)).reshape(-1)
        same = int((other == expected).sum())
        out[name] = {"frames": int(len(expected)), "same_state": same, "fraction": round(same / len(expected), 6)}
    return out


def _ratio(stats: dict, numerator: str, denominator: str, key: str = "p50_us") -> Optional[float]:
    if numerator not in stats or denominator not in stats:
        return None
    return round(stats[numerator][key] / stats[denominator][key], 3)


def _ratios(stats: dict, backends: list) -> dict:
    ratios = {}
    for backend in backends:
        row = f"inference.{backend}"
        ratios[f"{row} / ort_bound.floor (p50)"] = _ratio(stats, row, "ort_bound.floor")
        ratios[f"{row} / numpy.floor (p50)"] = _ratio(stats, row, "numpy.floor")
        ratios[f"{row} / ort_bound.exported (p50)"] = _ratio(stats, row, "ort_bound.exported")
        ratios[f"torch_original / {row} (p50)"] = _ratio(stats, "torch_original", row)
    ratios["torch_original / ort_bound.floor (p50)"] = _ratio(stats, "torch_original", "ort_bound.floor")
    ratios["torch_original / numpy.floor (p50)"] = _ratio(stats, "torch_original", "numpy.floor")
    ratios["ort_bound.exported / ort_bound.floor (p50)"] = _ratio(stats, "ort_bound.exported", "ort_bound.floor")
    ratios["ort_bound.state_path / ort_bound.floor (p50)"] = _ratio(stats, "ort_bound.state_path", "ort_bound.floor")
    ratios["ort_plain.exported / ort_bound.exported (p50)"] = _ratio(stats, "ort_plain.exported", "ort_bound.exported")
    return {key: value for key, value in ratios.items() if value is not None}


def _headroom(stats: dict, backends: list) -> dict:
    """How many times the whole frame fits in the original 30-40 ms and the 100 ms period."""
    out = {}
    for backend in backends:
        for row in (f"whole_frame.{backend}", f"whole_frame_with_read.{backend}"):
            p99 = stats[row]["p99_us"]
            out[row] = {"p99_us": p99,
                        "x_under_original_30ms": round(ORIGINAL_TARGET_US[0] / p99, 1),
                        "x_under_original_40ms": round(ORIGINAL_TARGET_US[1] / p99, 1),
                        "x_under_frame_period_100ms": round(FRAME_PERIOD_US / p99, 1),
                        "frame_period_used_percent": round(100.0 * p99 / FRAME_PERIOD_US, 4)}
    return out


def evaluate_targets(report: dict) -> list:
    """Issue 5's targets that bench itself measures, each with its figure and met / not met."""
    targets = []

    def add(name, target, measured, met, unit=""):
        targets.append({"target": name, "goal": target, "measured": measured, "unit": unit,
                        "met": None if measured is None else bool(met)})

    stages = report["stages"]
    backends = report["settings"]["backends"]
    main = backends[0]
    for how, key in (("head to head", f"head to head: inference.{main} / ort_bound.floor (p50)"),
                     ("among all rows", f"inference.{main} / ort_bound.floor (p50)")):
        ratio = report["ratios"].get(key)
        add(f"runtime ({main}) single-frame p50 <= {TARGET_FLOOR_RATIO}x bare folded floor ({how})",
            f"<= {TARGET_FLOOR_RATIO}", ratio, ratio is not None and ratio <= TARGET_FLOOR_RATIO, "x")
    for backend in backends:
        for how, table in (("among all rows", stages), ("on its own", report.get("whole_frame_alone", {}))):
            if f"whole_frame.{backend}" not in table:
                continue
            p99 = table[f"whole_frame.{backend}"]["p99_us"]
            add(f"whole frame ({backend}: decode + inference + counter + lights) p99 <= "
                f"{TARGET_WHOLE_FRAME_P99_US:g} us ({how})", f"<= {TARGET_WHOLE_FRAME_P99_US:g}", p99,
                p99 <= TARGET_WHOLE_FRAME_P99_US, "us")
    speedup = report["ratios"].get(f"torch_original / inference.{main} (p50)")
    add(f"runtime ({main}) >= {TARGET_TORCH_SPEEDUP:g}x faster than the original PyTorch module",
        f">= {TARGET_TORCH_SPEEDUP:g}", speedup, speedup is not None and speedup >= TARGET_TORCH_SPEEDUP, "x")
    for backend, figures in report.get("throughput", {}).items():
        rate = figures["frames_per_second"]
        big = figures["frames"] >= 1_000_000
        add(f"offline count ({backend}) >= 1M frames/s on >= 1M frames", ">= 1000000",
            rate, big and rate >= TARGET_COUNT_FPS, "frames/s")
    for backend, figures in report.get("startup", {}).items():
        if "error" in figures:
            continue
        seconds = figures["process_ms"] / 1e3
        add(f"runtime start-up ({backend}): fresh interpreter, import + load + first inference < 1 s, no torch",
            "< 1 s", round(seconds, 3), seconds < TARGET_STARTUP_S and not figures["torch_imported"], "s")
    return targets
