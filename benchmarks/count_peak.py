"""`thermalcount count` in a process of its own: frames/s and peak memory (issue 17's
`count_fps` and `count_peak_mib` rows).

Simulates a --frames recording (default 1,000,000, mixed scenes) into a temporary file, then
launches the installed `thermalcount count FILE --json` as a child process and times it from
outside: frames / wall time of that process (its start-up included: what a user waits for),
and its peak resident memory from `os.wait4` (the child's own, not this script's). The same
function `thermalcount bench` uses (thermalcount/bench/targets.py). Prints one line per
repeat, the median last.

    .venv/bin/python benchmarks/count_peak.py
    .venv/bin/python benchmarks/count_peak.py --frames 200000 --backend numpy --repeat 3
"""

from __future__ import annotations

import argparse
import statistics

from thermalcount.bench.targets import count_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "numpy"])
    parser.add_argument("--model", default=None, help="model path (default: the embedded model)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    runs = []
    for i in range(max(1, args.repeat)):
        run = count_file(args.frames, args.backend, args.model, seed=i)
        if "error" in run:
            raise SystemExit(f"count failed: {run['error']}")
        print(f"run {i + 1}: {run['frames']:,} frames in {run['seconds']:.2f} s = "
              f"{run['frames_per_second']:,} frames/s, peak RSS {run['peak_rss_mib']:.0f} MiB")
        runs.append(run)
    fps = statistics.median(r["frames_per_second"] for r in runs)
    peak = statistics.median(r["peak_rss_mib"] for r in runs)
    print(f"count ({args.backend}) on {args.frames:,} frames: {fps:,.0f} frames/s "
          f"(target >= 1,000,000), peak RSS {peak:.0f} MiB (target <= 250)")


if __name__ == "__main__":
    main()
