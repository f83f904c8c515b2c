"""The original design's PyTorch module, rebuilt from an exported model's weights.

``thermalcount bench`` shows it next to the runtime so the speed-up is measured in the same
process on the same frames. It is the ONLY bench module that imports torch, and bench imports
it only when torch is installed and ``--no-torch`` is not given: the runtime rows never need
torch, and a Pi never has it.

The module is written the way the original design ran it: an ``nn.Sequential`` encoder
(Linear 64->32, PReLU, Linear 32->latent), then a Python loop of ``torch.norm`` over the
centroids and ``argmin``. The exported graph's preprocessing nodes run first, executed by
torch op by op, so its states can be checked against the runtime's.
"""

from __future__ import annotations

import numpy as np
import torch


class OriginalModule(torch.nn.Module):
    """Encoder + nearest centroid, in the original design's eager style."""

    def __init__(self, weights: dict, preprocessing):
        super().__init__()
        first = torch.from_numpy(np.ascontiguousarray(weights["first"].T, np.float32))
        hidden, latent = first.shape[0], weights["w2"].shape[1]
        linear1 = torch.nn.Linear(first.shape[1], hidden)
        prelu = torch.nn.PReLU(hidden)
        linear2 = torch.nn.Linear(hidden, latent)
        with torch.no_grad():
            linear1.weight.copy_(first)
            linear1.bias.copy_(torch.from_numpy(weights["b1"].astype(np.float32)))
            prelu.weight.copy_(torch.from_numpy(weights["slope"].astype(np.float32)))
            linear2.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["w2"].T, np.float32)))
            linear2.bias.copy_(torch.from_numpy(weights["b2"].astype(np.float32)))
        self.encoder = torch.nn.Sequential(linear1, prelu, linear2)
        self.centroids = [torch.from_numpy(c.astype(np.float32)) for c in weights["centroids"]]
        self.preprocessing = preprocessing
        self.prefix = list(weights.get("prefix_nodes", ()))
        self.prefix_output = weights.get("prefix_input", "pixels")
        self.constants = {name: torch.from_numpy(np.array(value)) for name, value in weights.get("arrays", {}).items()
                          if any(name in node.input for node in self.prefix)}

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The exported graph's nodes before its first Gemm, executed by torch."""
        if not self.prefix:
            return x
        values = {"frames": x.reshape(-1, 8, 8), **self.constants}
        for node in self.prefix:
            inputs = [values[name] if name else None for name in node.input]
            outputs = _run_node(node, inputs)
            values.update(zip(node.output, outputs))
        return values[self.prefix_output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.preprocess(x))
        distances = [torch.norm(z - c, dim=1) for c in self.centroids]
        return torch.argmin(torch.stack(distances, dim=1), dim=1)


def _attribute(node, name, default):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _run_node(node, inputs):
    """One ONNX node of the preprocessing prefix in torch (the exporter's operators)."""
    op = node.op_type
    if op == "Reshape":
        return [inputs[0].reshape(tuple(int(v) for v in inputs[1]))]
    if op == "Gemm":
        a, b = inputs[0], inputs[1]
        if _attribute(node, "transA", 0):
            a = a.T
        if _attribute(node, "transB", 0):
            b = b.T
        out = _attribute(node, "alpha", 1.0) * (a @ b)
        if len(inputs) > 2 and inputs[2] is not None:
            out = out + _attribute(node, "beta", 1.0) * inputs[2]
        return [out]
    if op == "TopK":
        values, indices = torch.topk(inputs[0], int(inputs[1].reshape(-1)[0]), dim=_attribute(node, "axis", -1),
                                     largest=bool(_attribute(node, "largest", 1)),
                                     sorted=bool(_attribute(node, "sorted", 1)))
        return [values, indices]
    if op == "Clip":
        low = inputs[1] if len(inputs) > 1 else None
        high = inputs[2] if len(inputs) > 2 else None
        return [torch.clamp(inputs[0], min=low, max=high)]
    if op == "ReduceMean":
        axes = _attribute(node, "axes", None)
        if axes is None and len(inputs) > 1:
            axes = [int(v) for v in inputs[1].reshape(-1)]
        return [inputs[0].mean(dim=tuple(axes), keepdim=bool(_attribute(node, "keepdims", 1)))]
    binary = {"Max": torch.maximum, "Min": torch.minimum, "Div": torch.div, "Sub": torch.sub,
              "Mul": torch.mul, "Add": torch.add}
    if op in binary:
        return [binary[op](inputs[0], inputs[1])]
    if op == "Relu":
        return [torch.relu(inputs[0])]
    raise NotImplementedError(f"bench's PyTorch row does not know the operator {op}")


def build_original(weights: dict, preprocessing):
    """``(infer_one, infer_states, description)`` for the rebuilt module.

    ``infer_one(frame)`` takes one (8, 8) float32 frame and returns the state, entering
    ``inference_mode`` per call as a live loop would; ``infer_states(frames)`` runs a batch.
    torch runs single frames on one thread, like the runtime's single-frame session.
    """
    torch.set_num_threads(1)
    module = OriginalModule(weights, preprocessing).eval()

    def infer_one(frame: np.ndarray) -> int:
        with torch.inference_mode():
            return int(module(torch.from_numpy(frame).reshape(1, 64))[0])

    def infer_states(frames: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            flat = torch.from_numpy(np.ascontiguousarray(frames, np.float32).reshape(-1, 64))
            return module(flat).numpy().astype(np.int64)

    return infer_one, infer_states, f"torch {torch.__version__} eager, 1 thread, inference_mode"


#: The seed's own sizes (the blog's module): encoder 64 -> 32 -> 4, 3 k-means centroids.
SEED_SIZES = {"inputs": 64, "hidden": 32, "latent": 4, "centroids": 3}


def build_seed(seed: int = 0):
    """``infer_one`` of the seed's eager module at the seed's sizes, random weights.

    Issue 17's ``torch_vs_graph`` row compares this with our graph: the module as the seed
    shipped it (no preprocessing, three centroids), not :class:`OriginalModule`, which runs
    our model's preprocessing op by op in torch and so is slower than the seed ever was.
    Its states mean nothing (random weights); only its time is used.
    """
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(seed)
    sizes = SEED_SIZES
    encoder = torch.nn.Sequential(torch.nn.Linear(sizes["inputs"], sizes["hidden"]), torch.nn.PReLU(sizes["hidden"]),
                                  torch.nn.Linear(sizes["hidden"], sizes["latent"])).eval()
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    centroids = [torch.randn(sizes["latent"], generator=generator) for _ in range(sizes["centroids"])]

    def infer_one(frame: np.ndarray) -> int:
        with torch.inference_mode():
            z = encoder(torch.from_numpy(frame).reshape(1, 64))
            distances = [torch.norm(z - c, dim=1) for c in centroids]
            return int(torch.argmin(torch.stack(distances, dim=1), dim=1)[0])

    return infer_one
