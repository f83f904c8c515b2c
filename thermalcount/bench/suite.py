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

The stages live in :mod:`thermalcount.bench.live`, the comparison graphs in
:mod:`thermalcount.bench.graphs`. No bench module imports torch or scikit-learn except
:mod:`thermalcount.bench.torch_seed` (the original PyTorch module's row), imported only when torch
is installed.
"""

from __future__ import annotations

import datetime
import gc
import importlib.metadata
import importlib.util
import os
import platform
import time
from typing import Callable, Optional

import numpy as np

from thermalcount.bench import targets
from thermalcount.bench.graphs import comparison_variants, installed, torch_row
from thermalcount.bench.live import FPS, AfterDecision, capture_frames, inference, live_variants, on_frames
from thermalcount.errors import UsageError

SCHEMA = "thermalcount-bench/1"
FRAME_PERIOD_US = 1e6 / FPS
ORIGINAL_TARGET_US = (30_000.0, 40_000.0)  # the original design on a Pi Zero
BLOCK_CALLS = 100  # calls per variant per round of the interleaved loop
WARMUP_CALLS = 500
BACKEND_CHOICES = ("auto", "onnxruntime", "numpy", "all")


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
    so a stateful stage (the counter) sees one continuous stream. An
    :class:`~thermalcount.bench.live.AfterDecision` variant is timed up to its decision; its
    gap runs right after each call, timed into the rows it names (else untimed), which follow
    the variant's own row in the result.
    """
    clock = time.perf_counter_ns
    for step in variants.values():
        for _ in range(warmup):
            step()
    samples = {}
    gaps = {}  # name -> (gap ns, did work) of an AfterDecision variant
    for name, step in variants.items():
        samples[name] = np.empty(calls, np.int64)
        if isinstance(step, AfterDecision):
            gaps[name] = (np.empty(calls, np.int64), np.empty(calls, bool))
    done = 0
    gc_was_enabled = gc.isenabled()
    try:
        while done < calls:
            n = min(block, calls - done)
            for name, step in variants.items():
                out = samples[name]
                gc.disable()
                if name in gaps:
                    step, gap = step.step, step.gap
                    gap_out, worked = gaps[name]
                    for i in range(done, done + n):
                        start = clock()
                        step()
                        middle = clock()
                        worked[i] = gap()
                        gap_out[i] = clock() - middle
                        out[i] = middle - start
                else:
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
    result = {}
    for name, values in samples.items():
        result[name] = values
        rows = getattr(variants[name], "rows", None)
        if rows is not None:
            gap_out, worked = gaps[name]
            update, steps, total = rows
            result[update], result[steps], result[total] = gap_out, gap_out[worked], values + gap_out
    return result


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
    from thermalcount.sensors.sim.simulator import simulate

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


# ------------------------------------------------------------------------------- the bench


def resolve_backends(choice: str) -> list:
    """The backends to measure for ``--backend`` (``auto``: what the runtime would pick)."""
    if choice not in BACKEND_CHOICES:
        raise UsageError(f"unknown backend {choice!r}; use one of {', '.join(BACKEND_CHOICES)}")
    has_ort = installed("onnxruntime")
    if choice == "all":
        return (["onnxruntime"] if has_ort else []) + ["numpy"]
    if choice == "auto":
        return ["onnxruntime" if has_ort else "numpy"]
    return [choice]


def run_bench(model_path=None, *, frames: int = 20000, backend: str = "auto", use_torch: bool = True,
              count_frames: int = 1_000_000, startup: bool = True, seed: int = 0, bus: int = 1,
              progress: Optional[Callable[[str], None]] = None) -> dict:
    """Run every measurement and return the report (the JSON object ``bench --json`` prints)."""
    from thermalcount.model.contract import resolve_model_path
    from thermalcount.model.loader import Model

    say = progress or (lambda message: None)
    if frames < 100:
        raise UsageError("--frames must be at least 100 for percentiles to mean anything")
    backends = resolve_backends(backend)
    model_path = resolve_model_path(model_path)
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
        compared, skipped, references, weights = comparison_variants(proto, first.metadata)
        variants = dict(live)
        variants.update({name: on_frames(fn, pool) for name, fn in compared.items()})
        variants["timer_overhead"] = lambda: None
        say(f"timing {len(variants)} variants x {frames} calls, interleaved")
        samples = interleaved(variants, frames)
        head_to_head = {}
        if "ort_bound.floor" in compared:
            # The floor target again with only the two contenders in the loop: with twenty
            # variants in turn each block starts with cold caches, which costs the bigger
            # graph more than the floor.
            say("runtime against the folded floor, head to head")
            pair = {f"inference.{name}": inference(model, pool) for name, model in models.items()}
            pair["ort_bound.floor"] = on_frames(compared["ort_bound.floor"], pool)
            head_to_head = {name: summarize(values) for name, values in interleaved(pair, frames).items()}
        # The whole frame again on its own: in the live loop nothing but the sensor read runs
        # between two frames, not twenty other variants.
        say("whole frame on its own")
        alone = {name: live[name] for name in live if name.startswith("whole_frame.")}
        whole_alone = {name: summarize(values) for name, values in interleaved(alone, frames).items()}
    finally:
        sensor.close()
    stats = {name: summarize(values) for name, values in samples.items()}
    # The live stages, with the rows of their deferred work (pattern_update...) after them.
    report["stages"] = {name: stats[name] for name in samples if name not in compared and name != "timer_overhead"}
    report["comparison"] = {name: stats[name] for name in compared}
    report["comparison"]["timer_overhead"] = stats["timer_overhead"]
    report["head_to_head"] = head_to_head
    report["whole_frame_alone"] = whole_alone
    if count_frames:
        report["throughput"] = {}
        for name, model in models.items():
            say(f"offline counting throughput on {count_frames:,} frames ({name})")
            report["throughput"][name] = count_throughput(model, count_frames, seed=seed)

    # torch comes last and in a loop of its own: once torch is loaded into the process, the
    # other rows' times rise (measured: whole-frame p50 15 -> 17-26 us, p99 29 -> 87-115 us),
    # and the live loop never has torch loaded.
    torch_one, torch_states, reason = torch_row(weights, use_torch)
    with_torch = {}
    if reason is not None:
        skipped["torch_original"] = reason
    else:
        say("original PyTorch module against the runtime")
        from thermalcount.bench.torch_seed import build_seed  # torch_row imported torch already

        contenders = {"torch_original": on_frames(torch_one, pool),
                      "torch_seed": on_frames(build_seed(seed), pool)}
        contenders.update({f"inference.{name}": inference(model, pool) for name, model in models.items()})
        if "ort_bound.floor" in compared:
            contenders["ort_bound.floor"] = on_frames(compared["ort_bound.floor"], pool)
        if "numpy.floor" in compared:
            contenders["numpy.floor"] = on_frames(compared["numpy.floor"], pool)
        with_torch = {name: summarize(values) for name, values in interleaved(contenders, frames).items()}
        report["comparison"]["torch_original"] = with_torch["torch_original"]
        report["comparison"]["torch_seed"] = with_torch["torch_seed"]
        references["torch_original"] = torch_states
    report["with_torch"] = with_torch
    report["skipped"] = skipped
    report["agreement"] = _agreement(pool, models, references)
    report["ratios"] = _ratios(stats, with_torch, backends)
    for name in backends:
        ratio = _ratio(head_to_head, f"inference.{name}", "ort_bound.floor")
        if ratio is not None:
            report["ratios"][f"head to head: inference.{name} / ort_bound.floor (p50)"] = ratio
    report["headroom"] = _headroom(stats, backends)

    if startup:
        report["startup"] = {}
        for name in backends:
            say(f"start-up (import + load) in a fresh interpreter ({name})")
            report["startup"][name] = targets.startup_time(str(model_path), name)
    report["target_figures"] = targets.measure(report, model_path, count_frames=count_frames,
                                               startup_rows=startup, run_backend=resolve_backends("auto")[0],
                                               seed=seed, say=say)
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = targets.evaluate(report)  # issue 17's table (bench/targets.py)
    return report


#: Comparison rows without the frame rules: the nearest centroid only.
NEAREST_ONLY = ("torch_original", "ort_bound.state_path")


def _agreement(pool: np.ndarray, models: dict, references: dict) -> dict:
    """How many benchmark frames get the state the exported graph's own ``state`` output gives
    (batch inference of the full graph), for each batch and single-frame path."""
    first = next(iter(models.values()))
    first.start_stream()
    result = first.infer(pool)
    expected = np.asarray(result.state).reshape(-1)
    # The original PyTorch module and the floor-based state path know only the centroids:
    # they are compared with the graph's nearest cluster, before its frame rules (docs/model.md).
    nearest = np.asarray(result.distances).argmin(axis=1)
    # References are bare graphs: a model that removes a per-pixel background first (runtime
    # state, not graph) is compared on frames with it removed the same way.
    reference_pool = pool
    if first.tracker is not None:
        first.start_stream()
        reference_pool = first.tracker.correct(pool)

    def fresh(run, model):
        def call(frames):
            model.start_stream()  # every path sees the pool as one new stream
            return run(model, frames)
        return call

    rows = {}
    for name, model in models.items():
        rows[name] = fresh(lambda m, frames: m.infer_states(frames), model)
        rows[f"{name} (single frame)"] = fresh(lambda m, frames: np.array([m.infer_one(f) for f in frames]), model)
    rows.update({name: (lambda frames, run=run: run(reference_pool)) for name, run in references.items()})
    out = {}
    for name, infer_states in rows.items():
        other = np.asarray(infer_states(pool)).reshape(-1)
        same = int((other == (nearest if name in NEAREST_ONLY else expected)).sum())
        out[name] = {"frames": int(len(expected)), "same_state": same, "fraction": round(same / len(expected), 6)}
    return out


def _ratio(stats: dict, numerator: str, denominator: str, key: str = "p50_us") -> Optional[float]:
    if numerator not in stats or denominator not in stats:
        return None
    return round(stats[numerator][key] / stats[denominator][key], 3)


def _ratios(stats: dict, with_torch: dict, backends: list) -> dict:
    """Ratios of p50s; the PyTorch ones come from the loop that ran torch with the runtime."""
    ratios = {}
    for backend in backends:
        row = f"inference.{backend}"
        ratios[f"{row} / ort_bound.floor (p50)"] = _ratio(stats, row, "ort_bound.floor")
        ratios[f"{row} / numpy.floor (p50)"] = _ratio(stats, row, "numpy.floor")
        ratios[f"{row} / ort_bound.exported (p50)"] = _ratio(stats, row, "ort_bound.exported")
        ratios[f"torch_original / {row} (p50)"] = _ratio(with_torch, "torch_original", row)
        ratios[f"torch_seed / {row} (p50)"] = _ratio(with_torch, "torch_seed", row)
    ratios["torch_original / ort_bound.floor (p50)"] = _ratio(with_torch, "torch_original", "ort_bound.floor")
    ratios["torch_original / numpy.floor (p50)"] = _ratio(with_torch, "torch_original", "numpy.floor")
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
