"""How training scales: wall time and peak memory of `thermalcount train` on big recordings.

Writes simulated recordings (streamed into the file, never all in memory), then runs
`thermalcount train` on each in a fresh process and reports wall time and the child's peak
resident memory (ru_maxrss). Targets: 1M frames in < 60 s on 2 cores; 10M frames with
peak memory < 1 GB.

    python benchmarks/train_scale.py                 # 1M and 10M frames
    python benchmarks/train_scale.py --frames 1000000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_simulated(path: Path, n_frames: int, seed: int = 0) -> float:
    from thermalcount.sensors.sim.simulator import Simulator
    from thermalcount.store import RecordingWriter

    started = time.perf_counter()
    simulator = Simulator("mixed", seed=seed)
    with RecordingWriter(path, fps=10.0, overwrite=True) as writer:
        done = 0
        while done < n_frames:
            chunk = simulator.generate(min(65536, n_frames - done))
            writer.append_many(chunk.frames, chunk.timestamps, chunk.thermistor)
            done += len(chunk.frames)
    return time.perf_counter() - started


def run_train(recording: Path, out: Path, extra: list) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    command = [sys.executable, "-m", "thermalcount", "train", str(recording), "--out", str(out), "--overwrite", *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        raise SystemExit(f"train failed: {result.stderr or result.stdout}")
    # ru_maxrss of children is the max over all children so far: run the biggest last.
    return seconds, max(peak_kb, before) / 1024, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", default=None, help="where to write the recordings (default: a temp dir)")
    parser.add_argument("--train-args", default="", help="extra arguments for thermalcount train")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="thermalcount-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{'frames':>12} {'write s':>8} {'train s':>8} {'frames/s':>10} {'peak MB':>8}")
    for n_frames in sorted(args.frames):
        recording = workdir / f"sim-{n_frames}.h5"
        if recording.exists():
            write_seconds = float("nan")
        else:
            write_seconds = write_simulated(recording, n_frames)
        seconds, peak_mb, report = run_train(recording, workdir / f"model-{n_frames}.npz", args.train_args.split())
        print(f"{n_frames:>12,} {write_seconds:>8.1f} {seconds:>8.1f} {n_frames / seconds:>10,.0f} {peak_mb:>8.0f}")
        print("   " + "\n   ".join(line for line in report.splitlines() if line.strip())[:2000])


if __name__ == "__main__":
    main()
