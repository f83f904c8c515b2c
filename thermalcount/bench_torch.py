"""The original design's PyTorch module, rebuilt from an exported model's weights.

``thermalcount bench`` shows it next to the runtime so the speed-up is measured in the same
process on the same frames. It is the ONLY bench module that imports torch, and bench imports
it only when torch is installed and ``--no-torch`` is not given: the runtime rows never need
torch, and a Pi never has it.

The module is written the way the original design ran it: an ``nn.Sequential`` encoder
(Linear 64->32, PReLU, Linear 32->latent), then a Python loop of ``torch.norm`` over the
centroids and ``argmin``. The model's in-graph preprocessing (background removal and
clipping) runs first in torch, so its states can be checked against the runtime's.
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
        # What the exported graph subtracts before its first Gemm (else folded into its bias).
        self.input_shift = float(weights.get("input_shift", 0.0))

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """What the graph does before its first Gemm (offset and scale are folded into it)."""
        p = self.preprocessing
        if p is None or p.is_linear:
            # Linear preprocessing is folded into the first layer's weights entirely.
            return x
        if p.background == "mean":
            x = x - x.mean(dim=1, keepdim=True)
        elif p.background == "lowest":
            x = x - torch.topk(x, p.lowest_pixels, dim=1, largest=False).values.mean(dim=1, keepdim=True)
        if p.clips:
            x = torch.clamp(x, min=p.clip_low, max=p.clip_high) - self.input_shift
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.preprocess(x))
        distances = [torch.norm(z - c, dim=1) for c in self.centroids]
        return torch.argmin(torch.stack(distances, dim=1), dim=1)


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
