"""Issue 17's per-frame rows, measured the way `thermalcount bench` measures them: the
exported graph against the hand-folded floor (`graph_vs_floor`), the whole frame's p99
(`whole_frame_p99`) and the seed's eager PyTorch module against the runtime
(`torch_vs_graph`, only when torch is installed).

Runs bench's loops (thermalcount/bench/suite.py) without the count and start-up figures
(benchmarks/count_peak.py and benchmarks/startup_backends.py measure those) and prints the
three rows of the targets table.

    .venv/bin/python benchmarks/frame_targets.py
    .venv/bin/python benchmarks/frame_targets.py --frames 50000 --no-torch
"""

from __future__ import annotations

import argparse

from thermalcount.bench.suite import run_bench
from thermalcount.bench.targets import format_table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    report = run_bench(args.model, frames=args.frames, use_torch=not args.no_torch, count_frames=0,
                       startup=False, progress=lambda message: print("...", message))
    rows = [row for row in report["targets"]
            if row["key"] in ("graph_vs_floor", "whole_frame_p99", "torch_vs_graph")]
    print(f"load average before {report['machine']['load_average']}, after "
          f"{report['machine'].get('load_average_after')}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
