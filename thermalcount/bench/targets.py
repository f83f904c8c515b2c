"""Issue 17's performance targets: the one table of them, the figures bench measures for
them that the per-frame loops do not, and the meets / misses verdict.

Every target is a row of :data:`TARGETS`; :func:`evaluate` turns a bench report into one
verdict per row, computed only from the measured number and the row's bound (:func:`verdict`).
A row whose figure was not measured (torch not installed, ``--count-frames 0``,
``--no-startup``, no onnxruntime for the floor) says "not measured", never meets or misses.

The figures measured here run in child processes, so the bench process's own memory and
imports do not count: ``thermalcount count`` on a generated recording (wall time and peak
RSS from ``os.wait4``), the runtime's start-up in a fresh interpreter (median of 3) and
``thermalcount run --help``. No module here imports torch.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Optional

MEETS, MISSES, NOT_MEASURED = "meets", "misses", "not measured"
REPEATS = 3


class Target(NamedTuple):
    key: str
    what: str
    op: str  # "<=" or ">=", or "keep" for a figure bench does not measure
    bound: Optional[float]
    unit: str
    how: str


#: Issue 17's targets, the only place they are written down in code.
TARGETS = (
    Target("graph_vs_floor", "exported graph, one frame, onnxruntime (bound io) / hand-folded floor",
           "<=", 2.0, "x", "p50 ratio of ort_bound.exported and ort_bound.floor, same interleaved loop"),
    Target("whole_frame_p99", "whole frame p99 (decode + pattern + graph + counter + light decision)",
           "<=", 50.0, "us", "whole_frame.<run's backend> timed on its own, p99"),
    Target("torch_vs_graph", "the seed's eager PyTorch module (64-32-4, 3 centroids) / our graph, one frame",
           ">=", 6.0, "x", "p50 ratio of torch_seed and the runtime's inference, torch's own loop"),
    Target("count_fps", "`count` throughput on a generated recording",
           ">=", 1_000_000, "frames/s", "frames / wall time of a separate `thermalcount count` process"),
    Target("count_peak_mib", "`count` peak memory on the same recording",
           "<=", 250.0, "MiB", "peak RSS of that `thermalcount count` process (os.wait4)"),
    Target("startup_run_backend", "runtime start-up, import + load model, backend `run` uses",
           "<=", 0.2, "s", f"fresh interpreter, median of {REPEATS}"),
    Target("startup_numpy", "runtime start-up, import + load model, numpy backend",
           "<=", 0.2, "s", f"fresh interpreter, median of {REPEATS}"),
    Target("run_help", "`thermalcount run --help` wall time (keep: was 0.054 s)",
           "<=", 0.1, "s", f"launch to exit of the console script, median of {REPEATS}"),
    Target("train_1m", "train 1 M frames (keep: 25 s, ~560 MiB)",
           "keep", None, "", "not measured by bench: benchmarks/train_scale.py"),
)
#: The count rows decide only on a recording at least this long (issue 17 says 1 M frames).
COUNT_TARGET_FRAMES = 1_000_000


def verdict(measured: Optional[float], op: str, bound: Optional[float]) -> str:
    """"meets" / "misses" from the number and the bound; "not measured" without a number."""
    if measured is None or bound is None or op not in ("<=", ">="):
        return NOT_MEASURED
    ok = measured <= bound if op == "<=" else measured >= bound
    return MEETS if ok else MISSES


# ------------------------------------------------------------------- child-process figures


def _thermalcount() -> list:
    script = Path(sys.executable).with_name("thermalcount")
    return [str(script)] if script.exists() else [sys.executable, "-m", "thermalcount"]


# The child is started by this small reaper, not forked from the bench process: Linux carries
# the forking process's peak RSS into the child's ru_maxrss across exec, so a child forked
# from a bench that has loaded models (and torch) reported ~600 MiB for "python -c pass".
# The reaper is a bare interpreter (-I -S, a few MiB), so its child's figure is its own.
_REAPER = """
import os, sys, time
args = sys.argv[1:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        os.execvp(args[0], args)
    except OSError as error:
        os.write(2, f"cannot start {args[0]}: {error.strerror}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def timed_child(args: list, timeout: float = 600) -> dict:
    """Run ``args`` to the end: wall seconds, peak RSS in MiB of that process, return code."""
    process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _REAPER, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        return {"seconds": float(timeout), "peak_rss_mib": 0.0, "returncode": -signal.SIGKILL,
                "error": f"still running after {timeout:g} s"}
    except BaseException:  # Ctrl-C: the child is in a session of its own, so it would outlive bench
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    stderr = err.decode(errors="replace")
    try:
        seconds, returncode, maxrss = out.decode().split()
    except ValueError:  # the reaper itself failed: its traceback is the error
        return {"seconds": 0.0, "peak_rss_mib": 0.0, "returncode": process.returncode or 1,
                "error": (stderr.strip().splitlines() or ["no output"])[-1]}
    returncode = int(returncode)
    # ru_maxrss is KiB on Linux (bytes on macOS).
    kib = int(maxrss) / 1024 if sys.platform == "darwin" else int(maxrss)
    return {"seconds": float(seconds), "peak_rss_mib": kib / 1024, "returncode": returncode,
            "error": (stderr.strip().splitlines() or ["no output"])[-1] if returncode else None}


def count_file(n_frames: int, backend: str, model_path: Optional[str] = None, *, seed: int = 0,
               workdir: Optional[str] = None) -> dict:
    """``thermalcount count`` on a simulated ``n_frames`` recording, in a process of its own."""
    from thermalcount.sensors.sim.simulator import write_simulation

    with tempfile.TemporaryDirectory(prefix="thermalcount-bench-", dir=workdir) as tmp:
        path = os.path.join(tmp, "count.h5")
        write_simulation(path, n_frames, "mixed", seed=seed, overwrite=True)
        args = _thermalcount() + ["count", path, "--json", "--backend", backend]
        if model_path is not None:
            args += ["--model", str(model_path)]
        run = timed_child(args)
    if run["returncode"] != 0:
        return {"frames": n_frames, "backend": backend, "error": run["error"]}
    return {"frames": n_frames, "backend": backend, "seconds": round(run["seconds"], 3),
            "frames_per_second": round(n_frames / run["seconds"]),
            "peak_rss_mib": round(run["peak_rss_mib"], 1)}


_STARTUP_CODE = """
import json, sys, time
started = time.perf_counter()
import numpy as np
from thermalcount.model.loader import Model
imported = time.perf_counter()
model = Model.load(sys.argv[1], backend=sys.argv[2])
loaded = time.perf_counter()
model.infer_one(np.zeros((8, 8), np.float32))
done = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1e3, "load_ms": (loaded - imported) * 1e3,
                  "first_inference_ms": (done - loaded) * 1e3, "backend": model.backend,
                  "torch_imported": "torch" in sys.modules, "sklearn_imported": "sklearn" in sys.modules}))
"""


def startup_time(model_path: str, backend: str, repeats: int = REPEATS) -> dict:
    """Import + model load in ``repeats`` fresh interpreters: the best run's breakdown (import,
    load, first inference, process wall time) and the median of import + load (the target row)."""
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
    totals = [(r["import_ms"] + r["load_ms"]) / 1e3 for r in runs]
    out["median_s"] = round(statistics.median(totals), 4)
    out["runs_s"] = [round(r, 4) for r in totals]
    return out


def run_help(repeats: int = REPEATS) -> dict:
    """``thermalcount run --help`` from launch to exit, median of ``repeats``."""
    runs = []
    for _ in range(repeats):
        run = timed_child(_thermalcount() + ["run", "--help"], timeout=60)
        if run["returncode"] != 0:
            return {"error": run["error"]}
        runs.append(run["seconds"])
    return {"median_s": round(statistics.median(runs), 4), "runs_s": [round(r, 4) for r in runs]}


def measure(report: dict, model_path, *, count_frames: int, startup_rows: bool, run_backend: str,
            seed: int = 0, say=lambda message: None) -> dict:
    """The child-process figures for the target rows (``report["target_figures"]``)."""
    figures = {"run_backend": run_backend}
    if count_frames:
        say(f"`thermalcount count` on a {count_frames:,}-frame recording, own process ({run_backend})")
        figures["count"] = count_file(count_frames, run_backend, model_path, seed=seed)
    if startup_rows:
        figures["startup"] = {}
        for backend in dict.fromkeys((run_backend, "numpy")):
            known = report.get("startup", {}).get(backend)  # bench measured it already
            if known is None:
                say(f"start-up, import + load, median of {REPEATS} fresh interpreters ({backend})")
                known = startup_time(model_path, backend)
            figures["startup"][backend] = known
        say(f"`thermalcount run --help`, median of {REPEATS}")
        figures["run_help"] = run_help()
    return figures


# ------------------------------------------------------------------------------ the verdict


def measured_values(report: dict) -> dict:
    """Target key -> the measured number (None when not measured) and a note."""
    figures = report.get("target_figures", {})
    main = figures.get("run_backend")
    if f"whole_frame.{main}" not in report.get("stages", {}):
        main = report["settings"]["backends"][0]  # --backend asked for another one
    ratios = report.get("ratios", {})
    values = {t.key: (None, "") for t in TARGETS}
    ratio = ratios.get("ort_bound.exported / ort_bound.floor (p50)")
    values["graph_vs_floor"] = (ratio, "" if ratio is not None else report.get("skipped", {}).get(
        "ort_bound.floor", "onnxruntime rows not run"))
    alone = report.get("whole_frame_alone", {}).get(f"whole_frame.{main}")
    if alone is None:
        alone = report.get("stages", {}).get(f"whole_frame.{main}")
    values["whole_frame_p99"] = (alone["p99_us"] if alone else None, main)
    speedup = ratios.get(f"torch_seed / inference.{main} (p50)")
    values["torch_vs_graph"] = (speedup, main if speedup is not None else report.get("skipped", {}).get(
        "torch_original", "torch row not run"))
    count = figures.get("count")
    if count is None:
        values["count_fps"] = values["count_peak_mib"] = (None, "--count-frames 0")
    elif "error" in count:
        values["count_fps"] = values["count_peak_mib"] = (None, f"count failed: {count['error']}")
    elif count["frames"] < COUNT_TARGET_FRAMES:
        note = f"{count['frames']:,} frames < {COUNT_TARGET_FRAMES:,}"
        values["count_fps"] = (None, f"{note} ({count['frames_per_second']:,} frames/s)")
        values["count_peak_mib"] = (None, f"{note} ({count['peak_rss_mib']} MiB)")
    else:
        values["count_fps"] = (count["frames_per_second"], f"{count['frames']:,} frames, {main}")
        values["count_peak_mib"] = (count["peak_rss_mib"], f"{count['frames']:,} frames, {main}")
    starts = figures.get("startup", {})
    run_backend = figures.get("run_backend", main)
    for key, backend in (("startup_run_backend", run_backend), ("startup_numpy", "numpy")):
        row = starts.get(backend)
        if row is None:
            values[key] = (None, "--no-startup")
        elif "error" in row:
            values[key] = (None, f"failed: {row['error']}")
        else:
            values[key] = (row["median_s"], backend + (", torch imported" if row["torch_imported"] else ""))
    helped = figures.get("run_help")
    if helped is None:
        values["run_help"] = (None, "--no-startup")
    else:
        values["run_help"] = (helped.get("median_s"), helped.get("error", ""))
    values["train_1m"] = (None, "benchmarks/train_scale.py")
    return values


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def evaluate(report: dict) -> list:
    """One row per target: what, measured, target, verdict (and ``met``: True / False / None)."""
    values = measured_values(report)
    rows = []
    for target in TARGETS:
        measured, note = values[target.key]
        result = verdict(measured, target.op, target.bound)
        goal = "keep" if target.op == "keep" else f"{target.op} {_number(target.bound)} {target.unit}".strip()
        rows.append({"key": target.key, "target": target.what, "goal": goal, "measured": measured,
                     "unit": target.unit, "verdict": result, "note": note, "how": target.how,
                     "met": {MEETS: True, MISSES: False}.get(result)})
    return rows


def format_table(rows: list) -> str:
    """The plain-text meets / misses table ``thermalcount bench`` ends with."""
    def shown(row):
        if row["measured"] is None:
            return "-"
        value = row["measured"]
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"
        return f"{text} {row['unit']}".strip()

    lines = [("what", "measured", "target", "verdict")]
    lines += [(r["target"], shown(r), r["goal"], r["verdict"] + (f" ({r['note']})" if r["note"] and r["measured"] is None else ""))
              for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    out = ["Targets (issue 17): meets / misses"]
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line[:3], widths)) + "  " + line[3])
        if i == 0:
            out.append("  ".join("-" * width for width in widths) + "  " + "-" * 7)
    return "\n".join(out)
