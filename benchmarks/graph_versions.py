"""Two exported graphs of the same model side by side, in the same run: states, speed.

For a change to how the graph is built (not to the weights): are the states the same on
simulated doorways of every family, and how fast is each graph for one frame (onnxruntime,
bound io, as bench's ``ort_bound`` rows, next to the hand-folded floor) and in batches (the
state-only graph as ``count`` runs it, one thread, 8,192 frames a run)? Rounds are
interleaved, so drift of a shared machine hits both graphs alike; quote the ratios.
Nothing here is asserted; it prints.

    git show main:thermalcount/data/default_model.onnx > /tmp/before.onnx
    python benchmarks/graph_versions.py /tmp/before.onnx thermalcount/data/default_model.onnx
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _frames():
    from thermalcount.sensors.sim.scenarios import SCENARIOS
    from thermalcount.sensors.sim.simulator import simulate

    parts = []
    for index, name in enumerate(sorted(SCENARIOS)):
        for fps in (10.0, 1.0):
            parts.append(simulate(4000 if fps == 10.0 else 1000, name, seed=500 + index, fps=fps).frames)
    return np.concatenate(parts).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    import onnx
    import onnxruntime as ort

    from thermalcount.bench.graphs import bound_runner, floor_graph, model_weights
    from thermalcount.model.graph import state_only_graph
    from thermalcount.model.onnxruntime_backend import single_frame_session

    frames = _frames()
    protos = {"before": onnx.load(args.before), "after": onnx.load(args.after)}
    states = {}
    for label, proto in protos.items():
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        states[label] = session.run(["state"], {"frames": frames})[0]
    differ = int((states["before"] != states["after"]).sum())
    print(f"{len(frames):,} simulated frames (every family, 10 and 1 FPS): {differ} states differ; "
          f"nodes {len(protos['before'].graph.node)} -> {len(protos['after'].graph.node)}")

    runners, batches = {}, {}
    for label, proto in protos.items():
        runners[label] = bound_runner(single_frame_session(proto.SerializeToString()), "frames", (1, 8, 8))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        batches[label] = ort.InferenceSession(state_only_graph(proto).SerializeToString(), options,
                                              providers=["CPUExecutionProvider"])
    metadata = {p.key: p.value for p in protos["after"].metadata_props}
    runners["floor"] = bound_runner(single_frame_session(floor_graph(model_weights(protos["after"], metadata))
                                                         .SerializeToString()), "x", (1, 64))
    one, batch = {k: [] for k in runners}, {k: [] for k in batches}
    sample, chunk = frames[:1500], frames[:32768]
    for _ in range(args.rounds):
        for label, run in runners.items():
            started = time.perf_counter()
            for frame in sample:
                run(frame)
            one[label].append((time.perf_counter() - started) / len(sample) * 1e6)
        for label, session in batches.items():
            started = time.perf_counter()
            for i in range(0, len(chunk), 8192):
                session.run(["state"], {"frames": chunk[i:i + 8192]})
            batch[label].append((time.perf_counter() - started) / len(chunk) * 1e6)
    floor = np.median(one["floor"])
    for label in protos:
        print(f"{label:6s} one frame {np.median(one[label]):6.2f} us = {np.median(one[label]) / floor:.2f}x the floor "
              f"({floor:.2f} us); batches {np.median(batch[label]):.2f} us a frame")
    print(f"after / before, one frame: {np.median(one['after']) / np.median(one['before']):.2f}x")


if __name__ == "__main__":
    main()
