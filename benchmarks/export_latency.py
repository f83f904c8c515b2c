"""Single-frame latency of the exported graph next to a hand-folded graph, in the same run.

The hand-folded reference is what performance.md calls the floor: Gemm 64->32, PRelu,
one Gemm 32->K (second Linear folded into the distance), ArgMin - same sizes, random
weights. We time it on a [1, 64] input (as performance.md did) and on a [1, 8, 8] input with
a Reshape (the thermalcount input contract). Sessions run interleaved in rounds with
io_binding and pre-bound buffers; the ratio is the median of per-round ratios, so drift of
the shared machine cancels out. Nothing here is asserted; it prints.

    python benchmarks/export_latency.py                   # the default model
    python benchmarks/export_latency.py --model model.onnx
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def hand_folded(hidden: int, clusters: int, flat_input: bool, seed: int = 0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(size=(64, hidden)).astype(np.float32), "W1"),
             numpy_helper.from_array(rng.normal(size=hidden).astype(np.float32), "b1"),
             numpy_helper.from_array(np.full(hidden, 0.25, np.float32), "slope"),
             numpy_helper.from_array(rng.normal(size=(hidden, clusters)).astype(np.float32), "W2"),
             numpy_helper.from_array(rng.normal(size=clusters).astype(np.float32), "b2")]
    nodes, source = [], "frames"
    if not flat_input:
        inits.append(numpy_helper.from_array(np.array([-1, 64], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["frames", "shape"], ["x"]))
        source = "x"
    nodes += [helper.make_node("Gemm", [source, "W1", "b1"], ["h0"]),
              helper.make_node("PRelu", ["h0", "slope"], ["h"]),
              helper.make_node("Gemm", ["h", "W2", "b2"], ["partial"]),
              helper.make_node("ArgMin", ["partial"], ["state"], axis=1, keepdims=0)]
    shape = ["N", 64] if flat_input else ["N", 8, 8]
    graph = helper.make_graph(nodes, "hand_folded",
                              [helper.make_tensor_value_info("frames", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("state", TensorProto.INT64, ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def bound_session(model, frame: np.ndarray):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    x = np.ascontiguousarray(frame.reshape([1] + [d for d in shape[1:]]), np.float32)
    binding = session.io_binding()
    keep = [ort.OrtValue.ortvalue_from_numpy(x)]
    binding.bind_ortvalue_input("frames", keep[0])
    for output in session.get_outputs():
        dims = [1 if isinstance(d, str) else d for d in output.shape]
        buffer = np.zeros(dims, np.int64 if "int64" in output.type else np.float32)
        keep.append(ort.OrtValue.ortvalue_from_numpy(buffer))
        binding.bind_ortvalue_output(output.name, keep[-1])
    return session, binding, keep


def main() -> None:
    import onnx

    from thermalcount.model.contract import default_model_path
    from thermalcount.model.graph import build_graph
    from thermalcount.model.preprocessing import Preprocessing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per session per round")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    exported = onnx.load_model(args.model)
    meta = {p.key: p.value for p in exported.metadata_props}
    clusters = int(meta["clusters"])
    inits = {t.name: t for t in exported.graph.initializer}
    hidden = inits["b1_folded"].dims[0]
    variants = {"exported": exported,
                "hand-folded [N,64]": hand_folded(hidden, clusters, True),
                "hand-folded [N,8,8]": hand_folded(hidden, clusters, False)}
    # The same weights with linear preprocessing (--no-clip): what the clipping costs.
    from onnx import numpy_helper
    weights = _weights_from_graph(exported, numpy_helper)
    if weights is not None:
        variants["exported, --no-clip"] = build_graph(weights, Preprocessing(clip_low=None, clip_high=None), meta)

    # What the runtime runs for one frame when only the state is needed.
    from thermalcount.model.graph import state_only_graph
    variants["exported, state output only"] = state_only_graph(exported)

    frame = (21.0 + np.random.default_rng(1).normal(0, 0.5, (8, 8))).astype(np.float32)
    sessions = {name: bound_session(model, frame) for name, model in variants.items()}
    medians = {name: [] for name in sessions}
    p99s = {name: [] for name in sessions}
    timings = np.empty(args.calls)
    for _ in range(args.rounds):
        for name, (session, binding, _) in sessions.items():
            for _ in range(300):
                session.run_with_iobinding(binding)
            for i in range(args.calls):
                start = time.perf_counter_ns()
                session.run_with_iobinding(binding)
                timings[i] = time.perf_counter_ns() - start
            medians[name].append(np.median(timings) / 1e3)
            p99s[name].append(np.percentile(timings, 99) / 1e3)
    reference = np.array(medians["hand-folded [N,8,8]"])
    reference_flat = np.array(medians["hand-folded [N,64]"])
    rows = []
    for name, model in variants.items():
        ours = np.array(medians[name])
        rows.append({"graph": name, "nodes": len(model.graph.node), "p50_us": round(float(np.median(ours)), 2),
                     "p99_us": round(float(np.median(p99s[name])), 2),
                     "ratio_vs_hand_folded_888": round(float(np.median(ours / reference)), 3),
                     "ratio_vs_hand_folded_64": round(float(np.median(ours / reference_flat)), 3)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"model {args.model}: {clusters} clusters, latent {meta['latent']}; "
          f"{args.rounds} rounds x {args.calls} calls, io_binding, 1 thread")
    print(f"{'graph':<24}{'nodes':>6}{'p50 us':>9}{'p99 us':>9}{'vs [N,8,8]':>12}{'vs [N,64]':>11}")
    for row in rows:
        print(f"{row['graph']:<24}{row['nodes']:>6}{row['p50_us']:>9.2f}{row['p99_us']:>9.2f}"
              f"{row['ratio_vs_hand_folded_888']:>12.3f}{row['ratio_vs_hand_folded_64']:>11.3f}")


def _weights_from_graph(model, numpy_helper):
    """Torch-layout weights back from a graph exported with mean background + clipping."""
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    pre = json.loads(meta.get("preprocessing", "{}"))
    if pre.get("background") != "mean" or "centring" not in arrays:
        return None
    # There the first Gemm is W1^T / scale with the trained bias (the shift rides on the centring).
    w1 = arrays["W1_folded"].T * float(pre["scale"])
    w2, b2 = arrays["W2"].T, arrays["b2"]
    # W2_distance = -2 W2^T C^T: recover the centroids by least squares.
    centroids = np.linalg.lstsq(w2.T.astype(np.float64), arrays["W2_distance"] / -2.0, rcond=None)[0].T
    return {"enc1.weight": w1, "enc1.bias": arrays["b1_folded"], "prelu.weight": arrays["prelu_slope"],
            "enc2.weight": w2, "enc2.bias": b2, "centroids": centroids}


if __name__ == "__main__":
    main()
