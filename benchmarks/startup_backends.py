"""Runtime start-up per backend and `run --help` (issue 17's `startup_run_backend`,
`startup_numpy` and `run_help` rows).

Start-up = a fresh `python -c` that imports the runtime and loads the model
(`Model.load(path, backend=...)`), timed inside that interpreter from before the first
thermalcount import to the loaded model; the median of --repeat fresh interpreters per
backend. `run --help` = launch to exit of the installed console script, median of --repeat.
The same functions `thermalcount bench` uses (thermalcount/bench/targets.py). Then, per
backend, where the import time goes: one more interpreter under `python -X importtime`,
its top-level imports by cumulative time (medians are not needed to see the big ones), and
whether `onnx` or `ml_dtypes` got imported (neither should: that was most of a second).

    .venv/bin/python benchmarks/startup_backends.py
    .venv/bin/python benchmarks/startup_backends.py --repeat 7 --model my.onnx
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from thermalcount.bench.graphs import installed
from thermalcount.bench.targets import run_help, startup


_LOAD = "from thermalcount.model.loader import Model; Model.load({model!r}, backend={backend!r})"


def import_costs(model: str, backend: str, top: int = 8) -> tuple:
    """``([(module, ms), ...] biggest top-level imports first, heavy packages imported)``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", _LOAD.format(model=model, backend=backend)],
                            capture_output=True, text=True, timeout=120)
    costs, loaded = {}, set()
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if not match:
            continue
        name = match.group(3)
        if name.split(".")[0] in ("onnx", "ml_dtypes"):
            loaded.add(name.split(".")[0])
        if not match.group(2) or name == "numpy":
            # Top level: its cumulative time includes what it imported (numpy, imported
            # inside thermalcount's modules, is listed on its own as well).
            costs[name] = costs.get(name, 0) + int(match.group(1)) / 1e3
    return sorted(costs.items(), key=lambda item: -item[1])[:top], sorted(loaded)


def main(argv=None) -> None:
    from thermalcount.model.contract import default_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model path (default: the embedded model)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    model = args.model or str(default_model_path())
    backends = (["onnxruntime"] if installed("onnxruntime") else []) + ["numpy"]
    print(f"`run` would use: {backends[0]}")
    for backend in backends:
        row = startup(model, backend, repeats=args.repeat)
        if "error" in row:
            print(f"start-up ({backend}): failed: {row['error']}")
            continue
        runs = ", ".join(f"{r * 1e3:.0f}" for r in row["runs_s"])
        print(f"start-up ({backend}), import + load: median {row['median_s'] * 1e3:.0f} ms of {runs} ms "
              f"(target <= 200 ms); torch imported: {row['torch_imported']}")
        costs, heavy = import_costs(model, backend)
        print(f"  biggest imports ({backend}, one run, cumulative): "
              + ", ".join(f"{name} {ms:.0f} ms" for name, ms in costs)
              + f"; onnx/ml_dtypes imported: {', '.join(heavy) or 'no'}")
    helped = run_help(repeats=args.repeat)
    if "error" in helped:
        raise SystemExit(f"run --help failed: {helped['error']}")
    print(f"`thermalcount run --help`: median {helped['median_s'] * 1e3:.0f} ms of "
          f"{', '.join(f'{r * 1e3:.0f}' for r in helped['runs_s'])} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()
