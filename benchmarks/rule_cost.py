"""What each frame rule costs the exported graph, one frame, bare onnxruntime.

The model's state-only graph is cut at its ``frame_rules`` node (the Max over the nearest
cluster and the rules' states) four ways: every rule, without the apart rule, without the
edge rule, and no rule (the nearest cluster alone, preprocessing and encoder as exported).
Each runs in a single-frame session as the runtime makes it (one thread, the leading Reshape
dropped), called as bench's ``ort_bound`` rows are (io_binding, buffers bound once), on the
same frame, interleaved in blocks; the median block is
printed with the node count, then the hand-folded floor's figure for scale.

    .venv/bin/python benchmarks/rule_cost.py
    .venv/bin/python benchmarks/rule_cost.py --model my.onnx --blocks 40
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model path or 'default'")
    parser.add_argument("--blocks", type=int, default=20, help="interleaved blocks per variant")
    parser.add_argument("--block-frames", type=int, default=2000, help="calls per block")
    args = parser.parse_args(argv)

    import numpy as np
    import onnx

    from thermalcount.bench.graphs import bound_runner, floor_graph, model_weights
    from thermalcount.model.contract import resolve_model_path
    from thermalcount.model.graph import state_only_graph
    from thermalcount.model.onnxruntime_backend import single_frame_session, without_leading_reshape

    model = onnx.load(str(resolve_model_path(None if args.model == "default" else args.model)))
    rules = next((node for node in model.graph.node if node.name == "frame_rules"), None)
    if rules is None:
        raise SystemExit("this model has no frame rules (no 'frame_rules' node)")
    everything = list(rules.input)
    variants = {"every rule": everything,
                "without the apart rule": [n for n in everything if n != "apart_state"],
                "without the edge rule": [n for n in everything if n != "edge_state"],
                "no rule": [everything[0]]}

    frame = np.full((8, 8), 22.0, np.float32)
    frame[2:4, 2:6] += 5.0  # someone in view: every rule has something to look at
    runs = {}
    for name, inputs in variants.items():
        cut = onnx.ModelProto()
        cut.CopyFrom(model)
        node = next(n for n in cut.graph.node if n.name == "frame_rules")
        del node.input[:]
        node.input.extend(inputs)
        if len(inputs) == 1:
            node.op_type = "Identity"
        graph = without_leading_reshape(state_only_graph(cut))
        runs[name] = bound_runner(single_frame_session(graph.SerializeToString()), "frames", (1, 64)), \
            len(graph.graph.node)
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    floor = floor_graph(model_weights(model, metadata))
    runs["hand-folded floor"] = bound_runner(single_frame_session(floor.SerializeToString()), "x", (1, 64)), \
        len(floor.graph.node)

    blocks = {name: [] for name in runs}
    for _ in range(args.blocks):
        for name, (infer_one, _) in runs.items():
            began = time.perf_counter_ns()
            for _ in range(args.block_frames):
                infer_one(frame)
            blocks[name].append((time.perf_counter_ns() - began) / args.block_frames / 1000)
    floor_us = float(np.median(blocks["hand-folded floor"]))
    for name, (_, nodes) in runs.items():
        us = float(np.median(blocks[name]))
        print(f"{name:24s} {nodes:3d} nodes  {us:6.2f} us  {us / floor_us:5.2f}x the floor")
    every, none = np.median(blocks["every rule"]), np.median(blocks["no rule"])
    print(f"the frame rules cost {every - none:.2f} us a frame ({every / none:.2f}x the graph without them)")


if __name__ == "__main__":
    main()
