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
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from thermalcount.errors import ModelError

SUPPORTED_OPS = (
    "Reshape", "Flatten", "Identity", "Cast", "Add", "Sub", "Mul", "Div", "Max", "Min",
    "Relu", "PRelu", "Clip", "Abs", "Sqrt", "Gemm", "MatMul", "ReduceMean", "ReduceMin",
    "ReduceMax", "ReduceSum", "ReduceSumSquare", "TopK", "ArgMin", "Split", "Concat",
    "Squeeze", "Unsqueeze", "Slice", "Gather", "Transpose",
)
# Constant is not in the contract's list, but exporters emit it for shapes; it holds no math.
_EXTRA_OPS = ("Constant",)

# Inputs that steer shapes rather than carry data. The single-frame plan is only compiled
# when all of them are initializers/constants, so shapes are fixed once the input is.
_SHAPE_INPUTS = {
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "TopK": (1,), "Split": (1,), "Squeeze": (1,),
    "Unsqueeze": (1,), "ReduceMean": (1,), "ReduceMin": (1,), "ReduceMax": (1,),
    "ReduceSum": (1,), "ReduceSumSquare": (1,), "Clip": (),
}
_VIEW_OPS = {"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Transpose"}


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _numpy_dtype(onnx_type: int):
    return helper.tensor_dtype_to_np_dtype(onnx_type)


def _axes_list(value) -> Optional[list]:
    if value is None:
        return None
    return [int(v) for v in np.asarray(value).reshape(-1)]


# ------------------------------------------------------------------ operator implementations
# Each maker takes (attrs, opset) and returns fn(*inputs) -> output or tuple of outputs.
# Optional inputs that are absent (empty name) arrive as None.


def _make_reshape(a, opset):
    allowzero = a.get("allowzero", 0)

    def reshape(data, shape):
        target = [int(v) for v in shape]
        if not allowzero:
            target = [data.shape[i] if v == 0 else v for i, v in enumerate(target)]
        return data.reshape(target)
    return reshape


def _make_flatten(a, opset):
    axis = a.get("axis", 1)

    def flatten(x):
        ax = axis + x.ndim if axis < 0 else axis
        outer = int(np.prod(x.shape[:ax], dtype=np.int64))
        return x.reshape(outer, -1) if x.size else x.reshape(outer, int(np.prod(x.shape[ax:])))
    return flatten


def _make_cast(a, opset):
    dtype = _numpy_dtype(a["to"])
    return lambda x: x.astype(dtype)


def _binary(ufunc):
    def make(a, opset):
        return lambda x, y: ufunc(x, y)
    return make


def _make_div(a, opset):
    def div(x, y):
        if np.issubdtype(x.dtype, np.integer):
            # ONNX integer division truncates toward zero like C, unlike numpy's floor.
            return (np.trunc(x / y)).astype(x.dtype)
        return np.divide(x, y)
    return div


def _variadic(ufunc):
    def make(a, opset):
        def run(*xs):
            out = xs[0]
            for x in xs[1:]:
                out = ufunc(out, x)
            return out
        return run
    return make


def _make_prelu(a, opset):
    checked = {}

    def prelu(x, slope):
        # For slopes in [0, 1], PRelu(x) == max(x, slope*x) exactly, and ~6x faster than
        # np.where. The check is cached per slope array (weights are the same object).
        key = id(slope)
        if key not in checked:
            checked.clear()
            checked[key] = (slope, slope.size > 0 and float(np.min(slope)) >= 0.0
                            and float(np.max(slope)) <= 1.0)
        if checked[key][1]:
            return np.maximum(x, x * slope)
        return np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)
    return prelu


def _make_clip(a, opset):
    def clip(x, lo=None, hi=None):
        if opset < 11:
            lo, hi = a.get("min"), a.get("max")
        out = x
        # max then min, as ONNX defines Clip (np.clip's own checks cost more than the work).
        if lo is not None:
            out = np.maximum(out, np.asarray(lo, x.dtype))
        if hi is not None:
            out = np.minimum(out, np.asarray(hi, x.dtype))
        return out if out is not x else x.copy()
    return clip


#: Matrix products run on at most this many rows per call. From ~512 rows OpenBLAS starts
#: its own threads, which on a busy 2-core machine was measured 100x slower than the work.
BLAS_ROWS = 256


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or w.ndim != 2 or len(x) <= BLAS_ROWS:
        return np.matmul(x, w)
    out = np.empty((len(x), w.shape[1]), np.result_type(x, w))
    for row in range(0, len(x), BLAS_ROWS):
        np.matmul(x[row:row + BLAS_ROWS], w, out=out[row:row + BLAS_ROWS])
    return out


def _make_gemm(a, opset):
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    trans_a, trans_b = a.get("transA", 0), a.get("transB", 0)

    def gemm(x, w, c=None):
        x = x.T if trans_a else x
        w = w.T if trans_b else w
        out = _matmul(x, w)
        if alpha != 1.0:
            out *= x.dtype.type(alpha)
        if c is not None:
            if beta != 1.0:
                c = c * c.dtype.type(beta)
            out += c
        return out
    return gemm


def _make_reduce(kind):
    def make(a, opset):
        keepdims = bool(a.get("keepdims", 1))
        noop_empty = a.get("noop_with_empty_axes", 0)
        attr_axes = _axes_list(a.get("axes"))

        def reduce(x, axes_input=None):
            axes = _axes_list(axes_input) if axes_input is not None else attr_axes
            if not axes:
                if noop_empty:
                    return x
                axes = list(range(x.ndim))
            axes = tuple(sorted(ax % x.ndim for ax in axes))
            if kind == "min":
                return np.minimum.reduce(x, axis=axes, keepdims=keepdims)
            if kind == "max":
                return np.maximum.reduce(x, axis=axes, keepdims=keepdims)
            if kind == "sumsquare":
                if x.ndim == 2 and axes == (1,) and x.dtype.kind == "f":
                    # einsum: ~6x faster than square+sum along a short last axis.
                    out = np.einsum("ij,ij->i", x, x)
                    return out[:, None] if keepdims else out
                x = np.square(x)
            total = np.add.reduce(x, axis=axes, keepdims=keepdims, dtype=x.dtype)
            if kind == "mean":
                count = int(np.prod([x.shape[ax] for ax in axes]))
                total = np.divide(total, x.dtype.type(count), out=np.asarray(total)) \
                    if x.dtype.kind == "f" else total // count
            return total
        return reduce
    return make


def _make_topk(a, opset, indices_used: bool = True):
    axis, largest, k_attr = a.get("axis", -1), a.get("largest", 1), a.get("k")
    want_sorted = a.get("sorted", 1)

    def topk(x, k=None):
        count = int(np.asarray(k).reshape(-1)[0]) if k is not None else int(k_attr)
        ax = axis % x.ndim
        if not indices_used:
            # Nobody reads the indices: a full sort gives the same values in an allowed order
            # (the spec's order when sorted=1). numpy's SIMD sort of 64 values is measured
            # ~10x faster than argpartition + take, and 20x faster than onnxruntime's TopK.
            ordered = np.sort(x, axis=ax)
            if largest:
                ordered = np.flip(ordered, axis=ax)
            values = np.take(ordered, np.arange(count), axis=ax)
            return values, np.zeros(values.shape, np.int64)
        keys = -x if largest else x
        if not want_sorted and 0 < count < x.shape[ax]:
            # Order is unspecified when sorted=0: a partition selects the same values for
            # a fraction of a full sort.
            indices = np.take(np.argpartition(keys, count - 1, axis=ax), np.arange(count), axis=ax)
        else:
            # Stable sort keeps the lower index first among equal values, as ONNX requires.
            indices = np.take(np.argsort(keys, axis=ax, kind="stable"), np.arange(count), axis=ax)
        return np.take_along_axis(x, indices, axis=ax), indices.astype(np.int64)
    return topk


def _make_argmin(a, opset):
    axis, keepdims, last = a.get("axis", 0), bool(a.get("keepdims", 1)), a.get("select_last_index", 0)

    def argmin(x):
        ax = axis % x.ndim
        if last:
            flipped = np.flip(x, axis=ax)
            result = x.shape[ax] - 1 - np.argmin(flipped, axis=ax)
        else:
            result = np.argmin(x, axis=ax)
        result = result.astype(np.int64)
        return np.expand_dims(result, ax) if keepdims else result
    return argmin


def _make_split(a, opset, n_outputs):
    axis, split_attr = a.get("axis", 0), a.get("split")

    def split(x, sizes=None):
        ax = axis % x.ndim
        parts = _axes_list(sizes) if sizes is not None else _axes_list(split_attr)
        if parts is None:
            length = x.shape[ax]
            size = -(-length // n_outputs)  # ceil: the last part may be smaller (opset 18)
            parts = [min(size, length - i * size) for i in range(n_outputs)]
        cuts = np.cumsum(parts)[:-1]
        return tuple(np.split(x, cuts, axis=ax))
    return split


def _make_concat(a, opset):
    axis = a["axis"]
    return lambda *xs: np.concatenate(xs, axis=axis)


def _make_squeeze(a, opset):
    attr_axes = _axes_list(a.get("axes"))

    def squeeze(x, axes=None):
        axes = _axes_list(axes) if axes is not None else attr_axes
        if axes is None:
            return np.squeeze(x)
        return np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))
    return squeeze


def _make_unsqueeze(a, opset):
    attr_axes = _axes_list(a.get("axes"))

    def unsqueeze(x, axes=None):
        axes = _axes_list(axes) if axes is not None else attr_axes
        rank = x.ndim + len(axes)
        return np.expand_dims(x, tuple(sorted(ax % rank for ax in axes)))
    return unsqueeze


def _make_slice(a, opset):
    def slice_(data, starts=None, ends=None, axes=None, steps=None):
        if opset < 10:
            starts, ends, axes = a["starts"], a["ends"], a.get("axes")
        starts, ends = _axes_list(starts), _axes_list(ends)
        axes = _axes_list(axes) if axes is not None else list(range(len(starts)))
        steps = _axes_list(steps) if steps is not None else [1] * len(starts)
        index = [slice(None)] * data.ndim
        for start, end, ax, step in zip(starts, ends, axes, steps):
            dim = data.shape[ax % data.ndim]
            # ONNX clamps out-of-range starts/ends; Python slices need it for huge negatives.
            start = max(-dim - 1, min(dim, start))
            end = max(-dim - 1, min(dim, end))
            if step < 0 and end < -dim:
                end = None
            index[ax % data.ndim] = slice(start, end, step)
        return data[tuple(index)]
    return slice_


def _make_gather(a, opset):
    axis = a.get("axis", 0)
    return lambda data, indices: np.take(data, indices.astype(np.int64), axis=axis)


def _make_transpose(a, opset):
    perm = a.get("perm")
    return lambda x: np.transpose(x, perm)


def _make_constant(a, opset):
    if "value" in a:
        value = numpy_helper.to_array(a["value"])
    elif "value_float" in a:
        value = np.array(a["value_float"], dtype=np.float32)
    elif "value_floats" in a:
        value = np.array(a["value_floats"], dtype=np.float32)
    elif "value_int" in a:
        value = np.array(a["value_int"], dtype=np.int64)
    elif "value_ints" in a:
        value = np.array(a["value_ints"], dtype=np.int64)
    else:
        raise ModelError("a Constant node uses an attribute the numpy backend does not read; "
                         "use --backend onnxruntime")
    return lambda: value


_MAKERS: dict = {
    "Reshape": _make_reshape, "Flatten": _make_flatten, "Identity": lambda a, o: (lambda x: x),
    "Cast": _make_cast, "Add": _binary(np.add), "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply), "Div": _make_div, "Max": _variadic(np.maximum),
    "Min": _variadic(np.minimum), "Relu": lambda a, o: (lambda x: np.maximum(x, x.dtype.type(0))),
    "PRelu": _make_prelu, "Clip": _make_clip, "Abs": lambda a, o: np.abs,
    "Sqrt": lambda a, o: np.sqrt, "Gemm": _make_gemm, "MatMul": lambda a, o: _matmul,
    "ReduceMean": _make_reduce("mean"), "ReduceMin": _make_reduce("min"),
    "ReduceMax": _make_reduce("max"), "ReduceSum": _make_reduce("sum"),
    "ReduceSumSquare": _make_reduce("sumsquare"), "TopK": _make_topk, "ArgMin": _make_argmin,
    "Concat": _make_concat, "Squeeze": _make_squeeze, "Unsqueeze": _make_unsqueeze,
    "Slice": _make_slice, "Gather": _make_gather, "Transpose": _make_transpose,
    "Constant": _make_constant,
}


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
            self._constants[self._slot(init.name)] = numpy_helper.to_array(init)
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
        maker = _MAKERS.get(node.op_type)
        if node.op_type == "Split":
            fn = _make_split(_attrs(node), self.opset, len(node.output))
        elif node.op_type == "TopK":
            indices_used = len(node.output) > 1 and node.output[1] in self._consumed
            fn = _make_topk(_attrs(node), self.opset, indices_used)
        elif maker is None:
            raise ModelError(f"operator {node.op_type} (node {node.name or '?'}) is not supported by the "
                             "numpy backend; use --backend onnxruntime or re-export the model")
        else:
            fn = maker(_attrs(node), self.opset)
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
        attrs = _attrs(step.node)
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
            attrs = _attrs(step.node)
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
    if op == "ArgMin":
        attrs = _attrs(step.node)
        x = ins[0]
        axis = attrs.get("axis", 0) % x.ndim
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
    attrs = _attrs(step.node)
    x = ins[0]
    axes = _axes_list(ins[1]) if len(ins) > 1 and ins[1] is not None else _axes_list(attrs.get("axes"))
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


__all__ = ["SUPPORTED_OPS", "GraphProgram", "compile_graph", "TensorProto"]
