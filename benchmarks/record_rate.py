"""`record` at 10 FPS: dropped frames, timing gaps and bytes per frame on disk.

Runs `thermalcount record --sensor emulated` in real time (the real AMG8833 driver over
smbus2, paced at 10 FPS like the part) for --duration, then opens the file and checks it:
frames written against frames expected, the recorder's own "dropped" count, the largest gap
between consecutive timestamps, and bytes per frame (whole file, and the marginal cost
against a 2-second recording, which leaves out the fixed HDF5 overhead).

    .venv/bin/python benchmarks/record_rate.py                  # 60 s
    .venv/bin/python benchmarks/record_rate.py --duration 10m
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def seconds_of(text: str) -> float:
    match = DURATION_RE.match(text)
    if not match:
        raise SystemExit(f"--duration {text!r}: use e.g. 60s, 10m or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def record(path: Path, duration: str) -> str:
    script = Path(sys.executable).with_name("thermalcount")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "thermalcount"]
    result = subprocess.run(command + ["record", "--sensor", "emulated", "--fps", "10", "--duration", duration,
                                       "--out", str(path), "--no-preview", "--seed", "1"],
                            capture_output=True, text=True, timeout=seconds_of(duration) + 120)
    if result.returncode != 0:
        raise SystemExit(f"record failed: {(result.stderr or result.stdout).strip()}")
    lines = (result.stdout + "\n" + result.stderr).strip().splitlines()
    finals = [line for line in lines if "wrote" in line and "dropped" in line]
    return (finals or lines)[-1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="60s", help="how long to record (e.g. 60s, 10m)")
    args = parser.parse_args(argv)

    import numpy as np

    from thermalcount.store import open_recording

    with tempfile.TemporaryDirectory() as workdir:
        short, long = Path(workdir, "short.h5"), Path(workdir, "long.h5")
        record(short, "2s")
        summary = record(long, args.duration)
        with open_recording(short) as recording:
            short_frames = recording.n_frames
        with open_recording(long) as recording:
            frames, fps = recording.n_frames, recording.fps
            times = recording.timestamps()
        short_size, size = os.path.getsize(short), os.path.getsize(long)
    gaps = np.diff(times) if len(times) > 1 else np.zeros(1)
    expected = seconds_of(args.duration) * 10
    dropped = re.search(r"(\d+) dropped", summary)
    print(f"recorder: {summary}")
    late = int((gaps > 0.15).sum())
    print(f"frames: {frames} written in {args.duration} at {fps:g} FPS (expected ~{expected:.0f}); "
          f"timestamp gaps p50 {np.median(gaps) * 1e3:.0f} ms, max {gaps.max() * 1e3:.0f} ms, "
          f"{late} over 150 ms (a late read shows as one long gap and one short one)")
    print(f"file: {size:,} bytes = {size / frames:.1f} bytes/frame overall; marginal "
          f"{(size - short_size) / max(frames - short_frames, 1):.1f} bytes/frame "
          f"(raw float32 frame: 256 bytes)")
    print(f"RESULT dropped frames {dropped.group(1) if dropped else '?'}, largest gap {gaps.max() * 1e3:.0f} ms, "
          f"{(size - short_size) / max(frames - short_frames, 1):.1f} bytes/frame on disk")


if __name__ == "__main__":
    main()
