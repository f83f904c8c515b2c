"""Start-up of the `run` command: `run --help` time and time to the first counted frame.

Launches the installed `thermalcount` console script (what a user or systemd runs) in fresh
processes and times them from the parent:

* `thermalcount run --help`, best and median of --repeat launches (target < 0.3 s);
* `thermalcount run --sensor sim --speed max --lights none --no-dashboard --events-out F
  --duration 1s`: time from launch to its "counting:" line (printed once the model is
  loaded and the sensor is open, right before the first frame is read) and to its exit
  (an upper bound for the first frame; target < 1 s);
* once more under `python -X importtime` to list every module `run` imports: torch and
  scikit-learn must not be among them.

    .venv/bin/python benchmarks/run_startup.py
    .venv/bin/python benchmarks/run_startup.py --repeat 10 --sensor emulated
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def console_script() -> list:
    script = Path(sys.executable).with_name("thermalcount")
    return [str(script)] if script.exists() else [sys.executable, "-m", "thermalcount"]


def time_help(command: list, repeat: int) -> list:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command + ["run", "--help"], check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
    return times


def time_run(command: list, sensor: str, events_out: str) -> tuple:
    """(seconds to the 'counting:' line, seconds to exit) of one short `run`."""
    args = command + ["run", "--sensor", sensor, "--speed", "max", "--lights", "none", "--no-dashboard",
                      "--events-out", events_out, "--duration", "1s"]
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = None
    for line in process.stdout:
        if ready is None and "counting:" in line:
            ready = time.perf_counter() - started
    process.wait(timeout=60)
    finished = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"run failed with exit code {process.returncode}")
    return ready, finished


def imported_modules(args: list) -> set:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "thermalcount"] + args,
                            capture_output=True, text=True, timeout=120)
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="launches per measurement")
    parser.add_argument("--sensor", default="sim", help="sensor for the timed run (sim or emulated)")
    args = parser.parse_args(argv)
    command = console_script()

    helps = time_help(command, args.repeat)
    with tempfile.TemporaryDirectory() as workdir:
        runs = [time_run(command, args.sensor, os.path.join(workdir, f"events-{i}.jsonl"))
                for i in range(args.repeat)]
        heavy = {"torch", "sklearn"}
        help_heavy = imported_modules(["run", "--help"]) & heavy
        run_heavy = imported_modules(["run", "--sensor", args.sensor, "--speed", "max", "--lights", "none",
                                      "--no-dashboard", "--events-out", os.path.join(workdir, "e.jsonl"),
                                      "--duration", "1s"]) & heavy
    ready = [r[0] for r in runs if r[0] is not None]
    exits = [r[1] for r in runs]
    print(f"launcher: {' '.join(command)}")
    print(f"run --help: best {min(helps):.3f} s, median {statistics.median(helps):.3f} s "
          f"({args.repeat} launches; target < 0.3 s)")
    if ready:
        print(f"run, launch -> 'counting:' line (first frame next): best {min(ready):.3f} s, "
              f"median {statistics.median(ready):.3f} s")
    print(f"run --duration 1s at --speed max, launch -> exit (upper bound): best {min(exits):.3f} s, "
          f"median {statistics.median(exits):.3f} s")
    print(f"heavy modules imported: run --help {sorted(help_heavy) or 'none'}, run {sorted(run_heavy) or 'none'}")
    first = statistics.median(ready) if ready else statistics.median(exits)
    print(f"RESULT run --help median {statistics.median(helps):.3f} s (< 0.3 s: "
          f"{'met' if statistics.median(helps) < 0.3 else 'NOT met'}); first frame median <= {first:.3f} s "
          f"(< 1 s: {'met' if first < 1.0 else 'NOT met'}); torch/sklearn imported: "
          f"{'yes' if help_heavy or run_heavy else 'no'}")


if __name__ == "__main__":
    main()
