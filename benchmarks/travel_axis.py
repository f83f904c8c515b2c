"""The travel axis found from the frames (`count`/`run --orientation auto`): right or not, how
soon, with what margin, and at what cost.

For every simulated family (three seeds, both mountings, 10 and 1 FPS) it feeds the frames to
thermalcount.model.travel_axis.TravelAxisFinder in 32-frame pieces, as `run` does, and reports
whether the axis found is the simulated one, after how many frames it was decided and the
ratio of the mean squared moves along and across at the end. Then static warm things
without people (they must not decide), the finder's cost per frame, the sample `count` reads
from a long recording, and a `run` re-count of a full 10-minute buffer.

    .venv/bin/python benchmarks/travel_axis.py
    .venv/bin/python benchmarks/travel_axis.py --frames 6000 --seeds 1 2 3 --long 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

FAMILIES = ("single", "following", "passing", "lingering", "turnback", "low_contrast", "warm_room",
            "drift", "warm_object", "busy", "mixed")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6000, help="frames per 10 FPS stream (1 FPS: a fifth)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--long", type=int, default=200_000, help="frames of the recording count samples")
    args = parser.parse_args(argv)

    import numpy as np

    from thermalcount.sensors.sim.simulator import simulate
    from thermalcount.model.travel_axis import TravelAxisFinder

    def look(frames, fps):
        finder = TravelAxisFinder(fps)
        decided_at = None
        for start in range(0, len(frames), 32):
            finder.add(frames[start:start + 32])
            if decided_at is None and finder.finding.axis is not None:
                decided_at = start + 32
        return finder.finding, decided_at

    right = wrong = total = 0
    print(f"{'family':<13} fps  right wrong  ratio min..max  decided after (frames, median / max)")
    for family in FAMILIES:
        for fps in (10.0, 1.0):
            n = args.frames if fps == 10 else max(args.frames // 5, 200)
            ratios, decided, ok, bad = [], [], 0, 0
            for seed in args.seeds:
                for axis in ("rows", "columns"):
                    finding, at = look(simulate(n, family, seed=seed, travel_axis=axis, fps=fps).frames, fps)
                    ok += finding.axis == axis
                    bad += finding.axis not in (None, axis)
                    ratios.append(finding.ratio)
                    decided.append(at if at is not None else float("inf"))
            right, wrong, total = right + ok, wrong + bad, total + 2 * len(args.seeds)
            print(f"{family:<13} {fps:3.0f}  {ok:2d}/{2 * len(args.seeds):<2d} {bad:3d}   "
                  f"{min(ratios):6.1f}..{max(ratios):<7.1f} {statistics.median(decided):7.0f} / {max(decided):.0f}"
                  "   (inf: not decided)")

    empty_decided = 0
    for seed in args.seeds:
        for fps in (10.0, 1.0):
            finding, _ = look(simulate(args.frames, "empty", seed=seed, fps=fps).frames, fps)
            empty_decided += finding.axis is not None
    print(f"empty rooms decided: {empty_decided} of {2 * len(args.seeds)} (must be 0)")

    rng = np.random.default_rng(0)
    for name, rows, columns, warmth, start in (("bar along columns, there from the start", 2, slice(1, 7), 6.0, 0),
                                               ("bar along columns, put down at 5 min", 6, slice(0, 6), 5.0, 3000),
                                               ("faint full-width bar at 100 s", 3, slice(0, 8), 3.0, 1000)):
        frames = 21.0 + rng.normal(0, 0.25, (6000, 8, 8)) + rng.normal(0, 0.8, (8, 8))
        frames[start:, rows, columns] += warmth
        finding, _ = look(np.round(frames * 4).astype(np.float32) / 4, 10.0)
        print(f"static: {name}: {finding.moves} moves in 10 min ({finding.needed} needed), axis {finding.axis}")

    # Cost: the finder in run's 32-frame pieces, and a run-sized buffer re-counted.
    frames = simulate(6400, "busy", seed=1).frames
    finder = TravelAxisFinder(10.0)
    began = time.perf_counter()
    for start in range(0, len(frames), 32):
        finder.add(frames[start:start + 32])
    per_frame = (time.perf_counter() - began) / len(frames) * 1e6
    print(f"finder: {per_frame:.1f} µs per frame in 32-frame pieces ({per_frame * 32 / 1000:.2f} ms a look)")

    from thermalcount.runtime.axis_watch import AxisWatch
    from thermalcount.runtime.counter import Counter
    from thermalcount.model.loader import Model
    from thermalcount.sensors.base import SensorFrame

    model = Model.load(None)
    counter = Counter(model.meanings)
    watch = AxisWatch(model, counter, 10.0)
    chunk = simulate(6000, "mixed", seed=4, travel_axis="columns")
    adds = []
    for i, (pixels, stamp) in enumerate(zip(chunk.frames, chunk.timestamps)):
        frame = SensorFrame(pixels, float(stamp), i, 20.0)
        t0 = time.perf_counter()
        watch.add(frame, 0)
        adds.append(time.perf_counter() - t0)
    began = time.perf_counter()
    watch.recount(model, counter)
    print(f"run: buffer copy {np.median(adds) * 1e6:.2f} µs per frame (median); re-count of 6000 frames "
          f"(10 minutes) {(time.perf_counter() - began) * 1e3:.0f} ms")

    from thermalcount.runtime.offline import find_recording_axis
    from thermalcount.sensors.sim.simulator import write_simulation
    from thermalcount.store import open_recording

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "long.h5")
        write_simulation(path, args.long, "mixed", seed=5, travel_axis="columns")
        with open_recording(path) as recording:
            began = time.perf_counter()
            finding = find_recording_axis(recording)
            seconds = time.perf_counter() - began
        print(f"count: the sample of a {args.long:,}-frame recording looked at in {seconds:.3f} s "
              f"({finding.frames:,} frames), found {finding.axis}")
    print(f"right axis in {right} of {total} simulated streams, wrong in {wrong}, the rest undecided; "
          f"empty rooms decided {empty_decided}")


if __name__ == "__main__":
    sys.exit(main())
