"""Runtime start-up per backend and `run --help` (issue 17's `startup_run_backend`,
`startup_numpy` and `run_help` rows).

Start-up = a fresh `python -c` that imports the runtime and loads the model
(`Model.load(path, backend=...)`), timed inside that interpreter from before the first
thermalcount import to the loaded model; the median of --repeat fresh interpreters per
backend. `run --help` = launch to exit of the installed console script, median of --repeat.
The same functions `thermalcount bench` uses (thermalcount/bench/targets.py).

    .venv/bin/python benchmarks/startup_backends.py
    .venv/bin/python benchmarks/startup_backends.py --repeat 7 --model my.onnx
"""

from __future__ import annotations

import argparse

from thermalcount.bench.graphs import installed
from thermalcount.bench.targets import run_help, startup


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
    helped = run_help(repeats=args.repeat)
    if "error" in helped:
        raise SystemExit(f"run --help failed: {helped['error']}")
    print(f"`thermalcount run --help`: median {helped['median_s'] * 1e3:.0f} ms of "
          f"{', '.join(f'{r * 1e3:.0f}' for r in helped['runs_s'])} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()
