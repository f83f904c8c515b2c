"""Offline counting throughput: frames per second of `thermalcount count` end to end.

Simulates a recording of --frames frames (default 1,000,000, ~28 h at 10 FPS, mixed
scenario) through the real frame store, then counts it with the chosen model and backend
exactly as `thermalcount count` does (store -> batch inference -> counter -> scoring),
and prints where the time goes. The last line is the end-to-end figure.

    .venv/bin/python benchmarks/count_throughput.py
    .venv/bin/python benchmarks/count_throughput.py --backend numpy --keep /tmp/big.h5
    .venv/bin/python benchmarks/count_throughput.py --recording /tmp/big.h5   # reuse one
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames to simulate")
    parser.add_argument("--recording", help="count this existing recording instead of simulating")
    parser.add_argument("--keep", help="write the simulated recording here and keep it")
    parser.add_argument("--model", default="default", help="model path or 'default'")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "numpy"])
    parser.add_argument("--chunk-frames", type=int, default=None, help="default: count's own")
    parser.add_argument("--repeat", type=int, default=3, help="count this many times, report the best")
    args = parser.parse_args(argv)

    import numpy as np

    from thermalcount.evaluation.scoring import score_result
    from thermalcount.runtime.offline import DEFAULT_CHUNK_FRAMES, _unreadable_rows, count_recording
    from thermalcount.runtime.counter import Counter
    from thermalcount.model.loader import Model
    from thermalcount.store import open_recording

    if args.chunk_frames is None:
        args.chunk_frames = DEFAULT_CHUNK_FRAMES
    workdir = None
    path = args.recording
    if path is None:
        if args.keep:
            path = args.keep
        else:
            workdir = tempfile.TemporaryDirectory()
            path = os.path.join(workdir.name, "count-benchmark.h5")
        from thermalcount.sensors.sim.simulator import write_simulation

        began = time.perf_counter()
        result = write_simulation(path, args.frames, "mixed", seed=1, overwrite=True)
        print(f"simulated {result.frames:,} frames in {time.perf_counter() - began:.1f} s "
              f"({os.path.getsize(path) / result.frames:.1f} bytes/frame on disk)")

    model = Model.load(None if args.model == "default" else args.model, backend=args.backend)
    print(f"model {model.path.name}, backend {model.backend}, chunk {args.chunk_frames} frames, "
          f"{os.cpu_count()} cores, numpy {np.__version__}")

    # Stage by stage, one after the other (no overlap), to see where the time goes.
    with open_recording(path) as recording:
        n = recording.n_frames
        stages = dict.fromkeys(("read+decompress", "pattern (per pixel)", "graph (batch)",
                                "NaN check", "counter"), 0.0)
        model.start_stream(recording.fps)
        counter = Counter(model.meanings)
        chunks = recording.iter_chunks(args.chunk_frames)
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            if chunk is None:
                break
            t1 = time.perf_counter()
            # What Model.infer_states does, in its two parts.
            corrected = chunk.frames if model.tracker is None else model.tracker.correct(chunk.frames)
            t15 = time.perf_counter()
            states = model._impl.infer_states(corrected)
            t2 = time.perf_counter()
            _unreadable_rows(chunk.frames)
            t3 = time.perf_counter()
            counter.process(chunk.timestamps, states, start_frame=chunk.start)
            t4 = time.perf_counter()
            for name, seconds in zip(stages, (t1 - t0, t15 - t1, t2 - t15, t3 - t2, t4 - t3)):
                stages[name] += seconds

    print("stages one after the other:")
    for name, seconds in stages.items():
        print(f"  {name:<24} {seconds:6.3f} s  ({n / seconds / 1e6:6.2f} M frames/s alone)")

    best = None
    for _ in range(max(1, args.repeat)):
        began = time.perf_counter()
        # As `thermalcount count` calls it (with --backend auto it times both backends).
        result = count_recording(path, model=None if args.model == "default" else args.model,
                                 backend=args.backend, chunk_frames=args.chunk_frames)
        seconds = time.perf_counter() - began
        best = seconds if best is None else min(best, seconds)
    score = score_result(result)
    f1 = score["overall"]["f1"] if score else None
    print(f"counted {result.entries} in / {result.exits} out with backend {result.backend}"
          + (f", F1 {f1:.3f} against ground truth" if f1 is not None else ""))
    if workdir is not None:
        workdir.cleanup()
    print(f"count end to end: {n:,} frames in {best:.3f} s = {n / best:,.0f} frames/s")


if __name__ == "__main__":
    sys.exit(main())
