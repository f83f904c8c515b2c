"""ONNX operators in numpy, one maker per operator, for the numpy backend.

Each maker takes the node's attributes and the model's opset and returns a function of the
node's inputs (absent optional inputs arrive as None) giving its output or outputs, with
ONNX semantics where numpy's differ (integer Div truncates, TopK keeps the lower index
first among ties, ArgMin/ArgMax the first minimum/maximum, Reshape's 0 copies a dimension, Slice clamps).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from thermalcount.errors import ModelError
from thermalcount.model.onnx_schema import attribute_value, numpy_dtype, to_array

SUPPORTED_OPS = (
    "Reshape", "Flatten", "Identity", "Cast", "Add", "Sub", "Mul", "Div", "Max", "Min",
    "Relu", "PRelu", "Clip", "Abs", "Sqrt", "Gemm", "MatMul", "ReduceMean", "ReduceMin",
    "ReduceMax", "ReduceSum", "ReduceSumSquare", "ReduceL1", "TopK", "ArgMin", "ArgMax", "Split", "Concat",
    "Squeeze", "Unsqueeze", "Slice", "Gather", "Transpose", "GreaterOrEqual", "Where",
)
# MAKERS also has Constant: not in the contract's list, but exporters emit it for shapes.


def attributes(node) -> dict:
    """A node's attributes by name. The node comes from onnx_schema (not ``onnx``, whose
    import is most of the numpy backend's start-up: see that module)."""
    return {a.name: attribute_value(a) for a in node.attribute}


def axes_list(value) -> Optional[list]:
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
    dtype = numpy_dtype(a["to"])
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
        attr_axes = axes_list(a.get("axes"))

        def reduce(x, axes_input=None):
            axes = axes_list(axes_input) if axes_input is not None else attr_axes
            if not axes:
                if noop_empty:
                    return x
                axes = list(range(x.ndim))
            axes = tuple(sorted(ax % x.ndim for ax in axes))
            if kind == "min":
                return np.minimum.reduce(x, axis=axes, keepdims=keepdims)
            if kind == "max":
                return np.maximum.reduce(x, axis=axes, keepdims=keepdims)
            if kind == "l1":
                x = np.abs(x)
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


def make_topk(a, opset, indices_used: bool = True):
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


def _make_argmin(a, opset, find=np.argmin):
    axis, keepdims, last = a.get("axis", 0), bool(a.get("keepdims", 1)), a.get("select_last_index", 0)

    def argmin(x):
        ax = axis % x.ndim
        if last:
            flipped = np.flip(x, axis=ax)
            result = x.shape[ax] - 1 - find(flipped, axis=ax)
        else:
            result = find(x, axis=ax)
        result = result.astype(np.int64)
        return np.expand_dims(result, ax) if keepdims else result
    return argmin


def make_split(a, opset, n_outputs):
    axis, split_attr = a.get("axis", 0), a.get("split")

    def split(x, sizes=None):
        ax = axis % x.ndim
        parts = axes_list(sizes) if sizes is not None else axes_list(split_attr)
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
    attr_axes = axes_list(a.get("axes"))

    def squeeze(x, axes=None):
        axes = axes_list(axes) if axes is not None else attr_axes
        if axes is None:
            return np.squeeze(x)
        return np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))
    return squeeze


def _make_unsqueeze(a, opset):
    attr_axes = axes_list(a.get("axes"))

    def unsqueeze(x, axes=None):
        axes = axes_list(axes) if axes is not None else attr_axes
        rank = x.ndim + len(axes)
        return np.expand_dims(x, tuple(sorted(ax % rank for ax in axes)))
    return unsqueeze


def _make_slice(a, opset):
    def slice_(data, starts=None, ends=None, axes=None, steps=None):
        if opset < 10:
            starts, ends, axes = a["starts"], a["ends"], a.get("axes")
        starts, ends = axes_list(starts), axes_list(ends)
        axes = axes_list(axes) if axes is not None else list(range(len(starts)))
        steps = axes_list(steps) if steps is not None else [1] * len(starts)
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
        value = to_array(a["value"])
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


MAKERS: dict = {
    "Reshape": _make_reshape, "Flatten": _make_flatten, "Identity": lambda a, o: (lambda x: x),
    "Cast": _make_cast, "Add": _binary(np.add), "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply), "Div": _make_div, "Max": _variadic(np.maximum),
    "Min": _variadic(np.minimum), "Relu": lambda a, o: (lambda x: np.maximum(x, x.dtype.type(0))),
    "PRelu": _make_prelu, "Clip": _make_clip, "Abs": lambda a, o: np.abs,
    "Sqrt": lambda a, o: np.sqrt, "Gemm": _make_gemm, "MatMul": lambda a, o: _matmul,
    "ReduceMean": _make_reduce("mean"), "ReduceMin": _make_reduce("min"),
    "ReduceMax": _make_reduce("max"), "ReduceSum": _make_reduce("sum"),
    "ReduceSumSquare": _make_reduce("sumsquare"), "ReduceL1": _make_reduce("l1"), "TopK": make_topk, "ArgMin": _make_argmin,
    "ArgMax": lambda a, o: _make_argmin(a, o, find=np.argmax),
    "Concat": _make_concat, "Squeeze": _make_squeeze, "Unsqueeze": _make_unsqueeze,
    "Slice": _make_slice, "Gather": _make_gather, "Transpose": _make_transpose,
    "Constant": _make_constant, "GreaterOrEqual": _binary(np.greater_equal), "Where": lambda a, o: np.where,
}
