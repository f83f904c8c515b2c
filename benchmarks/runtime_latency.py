"""Single-frame latency and batch throughput of the runtime's backends vs bare onnxruntime.

All variants run in ONE process on the same frames, interleaved in rounds, so their ratios
are comparable even on a busy machine (absolute figures drift from run to run).

    .venv/bin/python benchmarks/runtime_latency.py                 # embedded default model
    .venv/bin/python benchmarks/runtime_latency.py --model m.onnx --calls 50000
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per variant")
    parser.add_argument("--batch", type=int, default=200_000, help="frames for the batch figures")
    args = parser.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    from thermalcount.model.loader import Model

    ort_model = Model.load(None if args.model == "default" else args.model, backend="onnxruntime")
    np_model = Model.load(ort_model.path, backend="numpy")
    rng = np.random.default_rng(0)
    frames = (21 + rng.normal(0, 0.4, (4096, 8, 8))).astype(np.float32)
    frames[::2, 2:4, 3:5] += 4.0

    # The floor: a bare onnxruntime session on the same file, one thread, io_binding.
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    bare = ort.InferenceSession(str(ort_model.path), options, providers=["CPUExecutionProvider"])
    buffer = np.zeros((1, 8, 8), np.float32)
    binding = bare.io_binding()
    binding.bind_cpu_input("frames", buffer)
    for name in ("state", "distances", "embedding"):
        binding.bind_output(name)

    def bare_run(frame):
        return bare.run(["state"], {"frames": frame[None]})[0][0]

    def bare_bound(frame):
        buffer[0] = frame
        bare.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()[0]

    variants = {
        "bare onnxruntime run()": bare_run,
        "bare onnxruntime io_binding": bare_bound,
        "runtime onnxruntime infer_one": ort_model.infer_one,
        "runtime numpy infer_one": np_model.infer_one,
    }
    for frame in frames[:50]:  # every variant must agree before it is timed
        assert len({int(fn(frame)) for fn in variants.values()}) == 1
    timings = {name: [] for name in variants}
    clock = time.perf_counter_ns
    rounds = 10
    for _ in range(rounds):
        for name, fn in variants.items():
            for frame in frames[:200]:
                fn(frame)  # warm-up
            samples = timings[name]
            for i in range(args.calls // rounds):
                frame = frames[i & 4095]
                start = clock()
                fn(frame)
                samples.append(clock() - start)
    floor = np.percentile(timings["bare onnxruntime io_binding"], 50)
    print(f"model {ort_model.path.name}; {args.calls} calls per variant after warm-up")
    print(f"{'single frame':<32} {'p50 us':>8} {'p99 us':>8} {'p50 / bare io_binding':>22}")
    for name, samples in timings.items():
        p50, p99 = np.percentile(samples, 50) / 1e3, np.percentile(samples, 99) / 1e3
        print(f"{name:<32} {p50:8.2f} {p99:8.2f} {p50 * 1e3 / floor:22.2f}")

    batch = np.resize(frames, (args.batch, 8, 8))
    print(f"{'batch of ' + format(args.batch, ','):<32} {'M frames/s':>10}")
    for model in (ort_model, np_model):
        for what, fn in (("infer_states", model.infer_states), ("infer", model.infer)):
            best = min(_timed(fn, batch) for _ in range(3))
            print(f"{model.backend + ' ' + what:<32} {args.batch / best / 1e6:10.2f}")


def _timed(fn, batch) -> float:
    began = time.perf_counter()
    fn(batch)
    return time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
