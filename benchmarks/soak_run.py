"""Soak test of `run`: one long session on the simulated sensor at max speed, memory and threads sampled.

Runs the real `run` session in this process (model, counter, light policy, the Hue worker
talking to the fake bridge over real HTTP, the event log) for --frames frames of the
simulator at --speed max, and samples the process's resident memory (VmRSS) and thread
count every --every seconds from a side thread. A leak shows up as RSS or threads growing
with the frame count; the verdict compares the last quarter of the samples with the second
quarter (the first quarter includes warm-up: imports, onnxruntime arenas, the first chunk).

    .venv/bin/python benchmarks/soak_run.py                       # 1M frames, Hue on the fake bridge
    .venv/bin/python benchmarks/soak_run.py --frames 200000 --lights console

Not a test: nothing is asserted, the figures and the verdict are printed (verdict last).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def os_threads() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--lights", choices=["hue", "console", "none"], default="hue")
    parser.add_argument("--scenario", default="busy")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--tolerance-mib", type=float, default=1.0,
                        help="RSS growth between the 2nd and the 4th quarter still called flat")
    args = parser.parse_args(argv)

    from thermalcount.config import save_hue_key
    from thermalcount.app.run import ModelOptions, OutputOptions, RunOptions, SensorOptions, run_session
    from thermalcount.lights.registry import LightsSettings

    workdir = tempfile.mkdtemp(prefix="soak-")
    os.environ.setdefault("THERMALCOUNT_CONFIG_DIR", os.path.join(workdir, "config"))
    events_path = os.path.join(workdir, "events.jsonl")
    samples = []  # (wall s, frames, rss MiB, python threads, OS threads)
    loops = []
    done = threading.Event()
    started = time.monotonic()

    def sample():
        frames = loops[0].snapshot.frames if loops else 0
        samples.append((time.monotonic() - started, frames, rss_mib(), threading.active_count(), os_threads()))

    def sampler():
        while not done.wait(args.every):
            sample()

    with contextlib.ExitStack() as stack:
        lights = LightsSettings(kind=args.lights, off_delay=5.0)
        if args.lights == "hue":
            from thermalcount.testing.fake_hue import FakeHueBridge

            bridge = stack.enter_context(FakeHueBridge(lights={"1": "Hall"}))
            save_hue_key(bridge.host, bridge.create_key())
            lights = replace(lights, bridge=bridge.host, names=("Hall",))
        options = RunOptions(sensor=SensorOptions(spec="sim", scenario=args.scenario, seed=1, speed=None),
                             model=ModelOptions(backend=args.backend), lights=lights,
                             output=OutputOptions(events_out=events_path, dashboard=False, max_frames=args.frames))
        devnull = stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(devnull))  # console lights print here
        sample()
        thread = threading.Thread(target=sampler, name="soak-sampler", daemon=True)
        thread.start()
        stats = run_session(options, out=devnull, on_loop=loops.append)
        sample()
        done.set()
        thread.join()
        light_changes = len(bridge.changes("light")) if args.lights == "hue" else None

    with open(events_path) as handle:
        logged = sum(1 for _ in handle)
    rss = [s[2] for s in samples]
    quarter = max(1, len(samples) // 4)
    second_q = max(rss[quarter:2 * quarter] or rss[:1])
    last_q = max(rss[-quarter:])
    print("wall_s   frames     rss_MiB  py_threads  os_threads")
    for wall, frames, mib, py_threads, threads in samples:
        print(f"{wall:7.1f}  {frames:9d}  {mib:8.1f}  {py_threads:10d}  {threads:10d}")
    print(f"frames {stats.frames}, events {stats.entries} in / {stats.exits} out ({logged} lines logged)"
          + (f", {light_changes} light changes applied on the fake bridge" if light_changes is not None else ""))
    print(f"wall {stats.wall_seconds:.1f} s, {stats.frames / stats.wall_seconds:,.0f} frames/s, "
          f"longest frame gap {stats.max_frame_gap * 1000:.1f} ms")
    print(f"RSS MiB: start {rss[0]:.1f}, end {rss[-1]:.1f}, max {max(rss):.1f}; "
          f"2nd quarter max {second_q:.1f} -> last quarter max {last_q:.1f}")
    if len(samples) > 2 and samples[-1][1] > samples[1][1]:
        slope = (rss[-1] - rss[1]) / (samples[-1][1] - samples[1][1]) * 1e6
        print(f"RSS growth after warm-up: {slope:+.2f} MiB per million frames")
    print(f"threads (OS): start {samples[0][4]}, end {samples[-1][4]}, max {max(s[4] for s in samples)}")
    flat_memory = last_q - second_q <= args.tolerance_mib
    # The first sample is taken before the session opens its lights worker; compare from the second.
    running_threads = [s[4] for s in samples[1:-1]] or [samples[-1][4]]
    flat_threads = max(running_threads) - min(running_threads) <= 1
    verdict = "FLAT" if flat_memory and flat_threads and stats.frames >= args.frames else "NOT FLAT"
    print(f"verdict: {verdict} (memory {'flat' if flat_memory else 'growing'}, "
          f"threads {'flat' if flat_threads else 'changing'}, {stats.frames} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
