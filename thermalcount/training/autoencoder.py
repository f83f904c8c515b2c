"""The autoencoder (torch) and a torch mirror of the in-model preprocessing.

Encoder: Linear 64->32, PReLU, Linear 32->latent. Decoder: latent->16, PReLU, 16->64.
The decoder only exists to train the encoder and to turn centroids back into frames; the
exported graph holds the encoder and the centroids.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

from thermalcount.model.preprocessing import CONTRAST_FLOOR, CONTRAST_REFERENCE, PIXELS, Preprocessing

HIDDEN = 32
DECODER_HIDDEN = 16


def make_deterministic(seed: int) -> None:
    """Same data + same seed -> same weights: one thread, deterministic kernels, seeded RNG."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a tiny model: one thread is also the fastest
    torch.use_deterministic_algorithms(True)


class TorchPreprocessing(nn.Module):
    """The same arithmetic as :meth:`Preprocessing.apply`, in torch."""

    def __init__(self, spec: Preprocessing):
        super().__init__()
        self.spec = spec
        # Built once: forward runs for every minibatch of every epoch.
        self.smoothing = torch.from_numpy(spec.smoothing_matrix().astype(np.float32)) if spec.blur else None

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        flat = frames.reshape(-1, PIXELS)
        mean = flat.mean(dim=1, keepdim=True)
        level = None
        if spec.background == "mean":
            level = mean
        elif spec.background == "lowest":
            level = torch.topk(flat, spec.lowest_pixels, dim=1, largest=False).values.mean(dim=1, keepdim=True)
        if spec.blur:
            flat = flat @ self.smoothing
        if spec.sort_axis is not None:
            flat = torch.sort(flat.reshape(-1, 8, 8), dim=spec.sort_axis, descending=True).values.reshape(-1, PIXELS)
        if level is not None:
            flat = flat - level
        if spec.contrast_skin is None:
            if spec.clips:
                flat = torch.clamp(flat, min=spec.clip_low, max=spec.clip_high)
            return (flat - spec.offset) / spec.scale
        divisor = torch.clamp(spec.contrast_skin - mean, min=CONTRAST_FLOOR,
                              max=CONTRAST_REFERENCE if spec.gain_first else None) / CONTRAST_REFERENCE
        if spec.gain_first:
            flat = flat / divisor
            if spec.clips:
                flat = torch.clamp(flat, min=spec.clip_low, max=spec.clip_high)
            return (flat - spec.offset) / spec.scale
        flat = (flat - spec.offset) / divisor
        if spec.clips:
            flat = torch.clamp(flat, min=None if spec.clip_low is None else 0.0,
                               max=None if spec.clip_high is None else spec.clip_high - spec.offset)
        return flat / spec.scale


class FrameAutoencoder(nn.Module):
    def __init__(self, latent: int = 4):
        super().__init__()
        self.enc1 = nn.Linear(PIXELS, HIDDEN)
        self.prelu = nn.PReLU(HIDDEN)
        self.enc2 = nn.Linear(HIDDEN, latent)
        self.dec1 = nn.Linear(latent, DECODER_HIDDEN)
        self.dec_prelu = nn.PReLU(DECODER_HIDDEN)
        self.dec2 = nn.Linear(DECODER_HIDDEN, PIXELS)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc2(self.prelu(self.enc1(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec2(self.dec_prelu(self.dec1(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def numpy_weights(self) -> dict:
        return {name: tensor.detach().cpu().numpy().astype(np.float32).copy()
                for name, tensor in self.state_dict().items()}

    @classmethod
    def from_weights(cls, weights: dict) -> "FrameAutoencoder":
        model = cls(latent=int(weights["enc2.weight"].shape[0]))
        state = {name: torch.from_numpy(np.asarray(weights[name], np.float32).copy())
                 for name in model.state_dict()}
        model.load_state_dict(state)
        return model


class FrameClassifier(nn.Module):
    """Preprocessing + encoder + nearest centroid in torch: the reference the ONNX graph must match."""

    def __init__(self, autoencoder: FrameAutoencoder, centroids: np.ndarray, spec: Preprocessing):
        super().__init__()
        self.preprocess = TorchPreprocessing(spec)
        self.autoencoder = autoencoder
        self.register_buffer("centroids", torch.from_numpy(np.asarray(centroids, np.float32).copy()))

    def forward(self, frames: torch.Tensor):
        embedding = self.autoencoder.encode(self.preprocess(frames))
        distances = ((embedding[:, None, :] - self.centroids[None, :, :]) ** 2).sum(dim=2)
        return torch.argmin(distances, dim=1), distances, embedding


@torch.inference_mode()
def encode_frames(autoencoder: FrameAutoencoder, spec: Preprocessing, frames: np.ndarray,
                  batch: int = 65536) -> np.ndarray:
    """(N, 64) or (N, 8, 8) °C -> (N, latent) float32 embeddings."""
    pre = TorchPreprocessing(spec)
    flat = np.asarray(frames, np.float32).reshape(-1, PIXELS)
    parts = [autoencoder.encode(pre(torch.from_numpy(flat[i:i + batch]))).numpy()
             for i in range(0, len(flat), batch)]
    return np.concatenate(parts) if parts else np.empty((0, autoencoder.enc2.out_features), np.float32)


@torch.inference_mode()
def decode_latent(autoencoder: FrameAutoencoder, latent: np.ndarray) -> np.ndarray:
    """(K, latent) -> (K, 64) frames in preprocessed units."""
    return autoencoder.decode(torch.from_numpy(np.asarray(latent, np.float32))).numpy()


def fit_autoencoder(autoencoder: FrameAutoencoder, spec: Preprocessing,
                    batches: Callable[[int], Iterable[np.ndarray]], *, epochs: int, steps_per_epoch: int,
                    learning_rate: float = 3e-3, validation: Optional[np.ndarray] = None,
                    on_step: Optional[Callable[[dict], None]] = None) -> list:
    """Train on reconstruction (MSE of the preprocessed frame). Returns one dict per epoch.

    The learning rate decays with a cosine from ``learning_rate`` to a tenth of it over all
    steps, so a long run settles instead of jittering around the minimum.
    """
    pre = TorchPreprocessing(spec)
    optimiser = torch.optim.Adam(autoencoder.parameters(), lr=learning_rate)
    total_steps = max(1, epochs * steps_per_epoch)
    val_input = pre(torch.from_numpy(validation)) if validation is not None and len(validation) else None
    history, step = [], 0
    for epoch in range(epochs):
        started, frames_seen, loss_sum = time.perf_counter(), 0, 0.0
        autoencoder.train()
        for batch in batches(epoch):
            fraction = min(1.0, step / total_steps)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * fraction)))
            x = pre(torch.from_numpy(batch))
            loss = torch.mean((autoencoder(x) - x) ** 2)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            frames_seen += len(batch)
            loss_value = float(loss.detach())
            loss_sum += loss_value * len(batch)
            if on_step is not None:
                on_step({"epoch": epoch + 1, "epochs": epochs, "frames": len(batch), "loss": loss_value})
        record = {"epoch": epoch + 1, "train_loss": loss_sum / max(frames_seen, 1), "frames": frames_seen,
                  "seconds": time.perf_counter() - started}
        if val_input is not None:
            autoencoder.eval()
            with torch.inference_mode():
                record["val_loss"] = float(torch.mean((autoencoder(val_input) - val_input) ** 2))
        history.append(record)
    autoencoder.eval()
    return history
