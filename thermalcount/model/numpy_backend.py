"""A small ONNX interpreter in numpy: runs the model's graph where onnxruntime has no wheel.

onnxruntime publishes no armv6l/armv7l wheels (Pi Zero W, any 32-bit Raspberry Pi OS), so
there this module executes the SAME graph from its stored weights: every node of the ONNX
file, in file order, for the operator set fixed in docs/architecture.md. Nothing is
re-derived from metadata, so whatever the exporter writes is what runs.

Two ways to run a graph:

* :meth:`GraphProgram.run` - any batch size. Each node was compiled once into a closure over
  its attributes; a run walks a list of ``(closure, input slots, output slots)``.
* :meth:`GraphProgram.single_frame_plan` - one frame, for the live loop. Only the nodes the
  ``state`` output depends on, every intermediate in a buffer allocated once, views (Reshape,
  Flatten, Transpose...) taken once at compile time, arithmetic written with ``out=``. A call
  copies the frame in and runs a handful of numpy calls with no allocation.

The plan is a second path for one frame, kept because it halves the numpy backend's live
frame: 50.8 us against 112.8 us through :meth:`GraphProgram.run` with the default model
(5,000 frames of a simulated recording, 2 cores, load ~3.5). tests/test_pattern.py pins
them together: the default model's states frame by frame (the plan) equal its states in
batches (``run_one_output``) on a simulated doorway.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.onnx_schema import to_array
from thermalcount.model.numpy_ops import (
    MAKERS, SUPPORTED_OPS, attributes, axes_list, make_split, make_topk,
)

# Inputs that steer shapes rather than carry data. The single-frame plan is only compiled
# when all of them are initializers/constants, so shapes are fixed once the input is.
_SHAPE_INPUTS = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "TopK": (1,), "Split": (1,), "Squeeze": (1,),
    "Unsqueeze": (1,), "ReduceMean": (1,), "ReduceMin": (1,), "ReduceMax": (1,),
    "ReduceSum": (1,), "ReduceSumSquare": (1,),
}
_VIEW_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Transpose"}


# ------------------------------------------------------------------------------- program


class _Step:
    __slots__ = ("node", "op", "fn", "inputs", "outputs")

    def __init__(self, node, fn: Callable, inputs: tuple, outputs: tuple):
        self.node, self.op, self.fn = node, node.op_type, fn
        self.inputs, self.outputs = inputs, outputs


class GraphProgram:
    """An ONNX graph compiled into numpy closures. Build with :func:`compile_graph`."""

    def __init__(self, model_proto, input_name: str, output_names: list):
        graph = model_proto.graph
        self.opset = _default_opset(model_proto)
        self.input_name = input_name
        self.output_names = list(output_names)
        self._slots: dict = {}
        self._constants: dict = {}
        for init in graph.initializer:
            self._constants[self._slot(init.name)] = to_array(init)
        self._input_slot = self._slot(input_name)
        # Names some node or the graph reads: outputs nobody reads need not be computed well.
        self._consumed = {name for node in graph.node for name in node.input} | set(self.output_names)
        self.steps: list = []
        for node in graph.node:
            self.steps.append(self._compile(node))
        missing = [name for name in self.output_names if name not in self._slots]
        if missing:
            raise ModelError(f"the graph never computes output {missing[0]!r}; re-export the model")
        self._output_slots = [self._slots[name] for name in self.output_names]
        self._n_slots = len(self._slots)
        self._pruned: dict = {}

    def _slot(self, name: str) -> int:
        if name not in self._slots:
            self._slots[name] = len(self._slots)
        return self._slots[name]

    def _compile(self, node) -> _Step:
        if node.domain not in ("", "ai.onnx"):
            raise ModelError(f"operator {node.domain}.{node.op_type} is not supported by the numpy "
                             "backend; use --backend onnxruntime or re-export the model")
        maker = MAKERS.get(node.op_type)
        if node.op_type == "Split":
            fn = make_split(attributes(node), self.opset, len(node.output))
        elif node.op_type == "TopK":
            indices_used = len(node.output) > 1 and node.output[1] in self._consumed
            fn = make_topk(attributes(node), self.opset, indices_used)
        elif maker is None:
            raise ModelError(f"operator {node.op_type} (node {node.name or '?'}) is not supported by the "
                             "numpy backend; use --backend onnxruntime or re-export the model")
        else:
            fn = maker(attributes(node), self.opset)
        # Absent optional inputs (empty names) become -1 and arrive as None.
        for name in node.input:
            if name and name not in self._slots:
                raise ModelError(f"node {node.name or node.op_type} reads {name!r} before it is "
                                 "computed; the graph is not in topological order")
        inputs = tuple(self._slots[name] if name else -1 for name in node.input)
        # Drop trailing absent inputs so makers' defaults apply.
        while inputs and inputs[-1] == -1:
            inputs = inputs[:-1]
        outputs = tuple(self._slot(name) for name in node.output)
        return _Step(node, fn, inputs, outputs)

    def run(self, frames: np.ndarray) -> list:
        """Execute every node on a batch; returns the graph outputs in ``output_names`` order."""
        env = self._execute(frames, self.steps)
        return [env[slot] for slot in self._output_slots]

    def run_one_output(self, frames: np.ndarray, output_name: str) -> np.ndarray:
        """Execute only the nodes ``output_name`` depends on (dead nodes skipped)."""
        steps = self._pruned.get(output_name)
        if steps is None:
            needed = self._ancestors(output_name)
            steps = self._pruned[output_name] = [s for s in self.steps if s in needed]
        return self._execute(frames, steps)[self._slots[output_name]]

    def _execute(self, frames: np.ndarray, steps: list) -> list:
        env = [None] * self._n_slots
        for slot, value in self._constants.items():
            env[slot] = value
        env[self._input_slot] = frames
        for step in steps:
            args = [env[i] if i >= 0 else None for i in step.inputs]
            result = step.fn(*args)
            if len(step.outputs) == 1:
                env[step.outputs[0]] = result
            else:
                for slot, value in zip(step.outputs, result):
                    env[slot] = value
        return env

    # -- single-frame plan
    def single_frame_plan(self, frame_shape: tuple, output_name: str):
        """A zero-argument closure list specialised for one input shape, or None if shapes
        depend on data. Returns ``(input_buffer, steps, output_buffer)``."""
        needed = self._ancestors(output_name)
        steps = [s for s in self.steps if s in needed]
        for step in steps:
            for position in _SHAPE_INPUTS.get(step.op, ()):
                if position < len(step.inputs) and step.inputs[position] >= 0 \
                        and step.inputs[position] not in self._constants \
                        and not self._is_constant_node_output(step.inputs[position]):
                    return None
        # A dry run gives every intermediate's shape and dtype for this input shape.
        env = [None] * self._n_slots
        for slot, value in self._constants.items():
            env[slot] = value
        sample = np.zeros(frame_shape, np.float32)
        env[self._input_slot] = sample
        buffers: list = [None] * self._n_slots
        for slot, value in self._constants.items():
            buffers[slot] = value
        buffers[self._input_slot] = sample
        constant_slots = set(self._constants)
        calls = []
        for step in steps:
            args = [env[i] if i >= 0 else None for i in step.inputs]
            result = step.fn(*args)
            results = result if len(step.outputs) > 1 else (result,)
            for slot, value in zip(step.outputs, results):
                env[slot] = value
            in_bufs = [buffers[i] if i >= 0 else None for i in step.inputs]
            if all(i < 0 or i in constant_slots for i in step.inputs):
                # Depends on constants only: compute once, never again.
                for slot, value in zip(step.outputs, results):
                    buffers[slot] = np.asarray(value)
                    constant_slots.add(slot)
                continue
            if step.op in _VIEW_OPS or step.op in ("Slice", "Split"):
                views = step.fn(*in_bufs)
                views = views if isinstance(views, tuple) else (views,)
                if all(isinstance(v, np.ndarray) and _shares_memory(v, in_bufs[0]) for v in views):
                    # Views of a persistent buffer stay valid: nothing to do per frame.
                    for slot, view in zip(step.outputs, views):
                        buffers[slot] = view
                    continue
            outs = [np.empty_like(np.asarray(value)) for value in results]
            for slot, buf in zip(step.outputs, outs):
                buffers[slot] = buf
            calls.append(_fast_call(step, in_bufs, outs, constant_slots))
        return buffers[self._input_slot], calls, buffers[self._slots[output_name]]

    def _ancestors(self, output_name: str) -> set:
        producer = {slot: step for step in self.steps for slot in step.outputs}
        wanted, stack, seen = set(), [self._slots[output_name]], set()
        while stack:
            slot = stack.pop()
            if slot in seen:
                continue
            seen.add(slot)
            step = producer.get(slot)
            if step is not None and step not in wanted:
                wanted.add(step)
                stack.extend(i for i in step.inputs if i >= 0)
        return wanted

    def _is_constant_node_output(self, slot: int) -> bool:
        return any(step.op == "Constant" and slot in step.outputs for step in self.steps)


def _shares_memory(view, base) -> bool:
    return base is not None and isinstance(base, np.ndarray) and np.shares_memory(view, base)


def _fast_call(step: _Step, ins: list, outs: list, constant_slots: set) -> Callable:
    """One closure that recomputes a node into its preallocated output buffer(s).

    Measured on one frame (numpy 2.4): a ufunc whose operands already have the output's
    shape costs about half of one that broadcasts, ``np.dot`` about 60 % of ``np.matmul``, and
    a flat ``argmin`` a quarter of ``argmin(axis=...)``. So constant operands are broadcast
    to the output shape once here (same values, same arithmetic), and the cheap forms are
    used where they give identical results.
    """
    op = step.op
    out = outs[0]
    const = [i >= 0 and i in constant_slots for i in step.inputs]

    def full(position):
        # A constant operand pre-broadcast to the output's shape; others as they are.
        value = ins[position]
        if const[position] and value.shape != out.shape and value.size <= out.size:
            try:
                return np.ascontiguousarray(np.broadcast_to(value, out.shape))
            except ValueError:
                return value
        return value

    if op in ("Add", "Sub", "Mul", "Max", "Min") and len(ins) == 2 and out.dtype.kind == "f":
        ufunc = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                 "Max": np.maximum, "Min": np.minimum}[op]
        a, b = full(0), full(1)
        return lambda: ufunc(a, b, out=out)
    if op == "Relu":
        x = ins[0]
        zero = out.dtype.type(0)
        return lambda: np.maximum(x, zero, out=out)
    if op == "PRelu":
        x, slope = ins[0], full(1)
        if const[1] and slope.dtype.kind == "f" and slope.size \
                and float(slope.min()) >= 0.0 and float(slope.max()) <= 1.0 and x is not out:
            # For slopes in [0, 1], PRelu(x) == max(x, slope*x) exactly: two calls, no mask.
            return lambda: np.maximum(x, np.multiply(x, slope, out=out), out=out)
        if const[1] and slope.dtype == out.dtype and x is not out and x.shape == out.shape:
            # Any slopes (trained PReLUs have negative ones): slope*x everywhere, then x put
            # back where x >= 0 - the same values as np.where, in three calls with no
            # allocation (bench: ~1.8 us against ~3.7 us for the general path).
            keep = np.empty(out.shape, bool)

            def prelu_any_slope():
                np.greater_equal(x, 0, out=keep)
                np.multiply(x, slope, out=out)
                np.copyto(out, x, where=keep)
            return prelu_any_slope
    if op == "Gemm":
        attrs = attributes(step.node)
        x, w = ins[0], ins[1]
        if attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 \
                and not attrs.get("transA", 0) and x.ndim == 2 and x.dtype == w.dtype == out.dtype:
            if attrs.get("transB", 0):
                w = np.ascontiguousarray(w.T)
            if len(ins) < 3 or ins[2] is None:
                return lambda: np.dot(x, w, out=out)
            c = full(2)
            return lambda: np.add(np.dot(x, w, out=out), c, out=out)
    if op == "MatMul" and ins[0].ndim == 2 and ins[1].ndim == 2 and ins[0].dtype == ins[1].dtype == out.dtype:
        x, w = ins
        return lambda: np.dot(x, w, out=out)
    if op == "Clip" and out.dtype.kind == "f" and all(const[1:]):
        x = ins[0]
        lo = np.asarray(ins[1], out.dtype) if len(ins) > 1 and ins[1] is not None else None
        hi = np.asarray(ins[2], out.dtype) if len(ins) > 2 and ins[2] is not None else None
        if step.node.attribute:  # opset < 11: bounds are attributes
            attrs = attributes(step.node)
            lo = None if attrs.get("min") is None else np.asarray(attrs["min"], out.dtype)
            hi = None if attrs.get("max") is None else np.asarray(attrs["max"], out.dtype)
        if lo is not None and hi is not None:
            return lambda: np.minimum(np.maximum(x, lo, out=out), hi, out=out)
        if lo is not None:
            return lambda: np.maximum(x, lo, out=out)
        if hi is not None:
            return lambda: np.minimum(x, hi, out=out)
    if op in ("ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceMin", "ReduceMax") \
            and out.dtype.kind == "f" and all(const[1:]):
        fast = _fast_reduce(step, ins, out)
        if fast is not None:
            return fast
    if op in ("Max", "Min") and len(ins) > 2 and out.dtype.kind == "f":
        # Variadic (the frame rules' margins): fold the operands into the output, in order.
        ufunc = np.maximum if op == "Max" else np.minimum
        first, rest = full(0), [full(i) for i in range(1, len(ins))]

        def fold():
            ufunc(first, rest[0], out=out)
            for value in rest[1:]:
                ufunc(out, value, out=out)
        return fold
    if op == "GreaterOrEqual":
        a, b = full(0), full(1)
        return lambda: np.greater_equal(a, b, out=out)
    if op == "Where" and ins[0].dtype == bool:
        # A frame rule: its state where the test holds, else the state so far.
        condition, value, otherwise = ins

        def where():
            np.copyto(out, otherwise)
            np.copyto(out, value, where=condition)
        return where
    if op == "Gather" and ins[1].dtype.kind == "i":
        axis, data, indices = attributes(step.node).get("axis", 0), ins[0], ins[1]
        if const[1]:
            # Constant indices: negative ones resolved and bounds checked once, so "clip"
            # (no buffering, unlike "raise") never clips.
            size = data.shape[axis]
            if indices.size and not (-size <= int(indices.min()) and int(indices.max()) < size):
                raise ModelError(f"a Gather node indexes outside its {size} values; re-export the model")
            indices = np.where(indices < 0, indices + size, indices)
            return lambda: np.take(data, indices, axis=axis, out=out, mode="clip")
        return lambda: np.take(data, indices, axis=axis, out=out)  # raises for bad indices, as ONNX
    if op == "ArgMin":
        attrs = attributes(step.node)
        x = ins[0]
        if not attrs.get("select_last_index", 0) and out.size == 1 and x.flags.c_contiguous:
            # One row: the argmin along the axis is the argmin of the flat buffer.
            flat = out.reshape(-1)
            def argmin_one():
                flat[0] = x.argmin()
            return argmin_one
    # Anything else: run the general closure and copy into the persistent buffer(s).
    fn = step.fn
    if len(outs) == 1:
        return lambda: np.copyto(out, fn(*ins))

    def general():
        for buf, value in zip(outs, fn(*ins)):
            np.copyto(buf, value)
    return general


def _fast_reduce(step: _Step, ins: list, out: np.ndarray):
    """A reduction into ``out`` with the axes resolved once; None when it needs the general path."""
    attrs = attributes(step.node)
    x = ins[0]
    axes = axes_list(ins[1]) if len(ins) > 1 and ins[1] is not None else axes_list(attrs.get("axes"))
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return None
        axes = list(range(x.ndim))
    axes = tuple(sorted(ax % x.ndim for ax in axes))
    keep = bool(attrs.get("keepdims", 1))
    op = step.op
    if op == "ReduceSumSquare":
        if x.ndim == 2 and axes == (1,) and x.shape[0] == 1:
            # One row: a dot product with itself (einsum's set-up alone costs ~5 us).
            column, cell = x.T, out.reshape(1, 1)
            return lambda: np.dot(x, column, out=cell)
        if x.ndim == 2 and axes == (1,):
            flat = out.reshape(-1)
            return lambda: np.einsum("ij,ij->i", x, x, out=flat)
        return None
    ufunc = {"ReduceMin": np.minimum, "ReduceMax": np.maximum}.get(op, np.add)
    if op in ("ReduceMean", "ReduceSum") and x.ndim == 2 and axes == (1,) and x.shape[0] == 1:
        # One row: sum as a dot product with ones (a ufunc reduce costs ~3x more).
        ones, cell = np.ones((x.shape[1], 1), x.dtype), out.reshape(1, 1)
        if op == "ReduceSum":
            return lambda: np.dot(x, ones, out=cell)
        count = x.dtype.type(x.shape[1])
        return lambda: np.divide(np.dot(x, ones, out=cell), count, out=cell)
    if op == "ReduceMean":
        count = out.dtype.type(int(np.prod([x.shape[ax] for ax in axes])))
        return lambda: np.divide(ufunc.reduce(x, axis=axes, keepdims=keep, out=out), count, out=out)
    return lambda: ufunc.reduce(x, axis=axes, keepdims=keep, out=out)


def _default_opset(model_proto) -> int:
    for entry in model_proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def compile_graph(model_proto, input_name: str, output_names: list) -> GraphProgram:
    """Compile ``model_proto`` for the numpy backend; ModelError for unsupported operators."""
    return GraphProgram(model_proto, input_name, output_names)


__all__ = ["SUPPORTED_OPS", "GraphProgram", "compile_graph"]
