"""The frame preprocessing that is part of every model (numpy reference, no torch).

A model never sees °C directly. Each frame is first made comparable across rooms and days:

1. **background removal** - subtract a per-frame background level, so that a room that is
   warmer, or drifts by several degrees during the day, gives the same numbers:
   ``mean`` (mean of all 64 pixels; linear, so the exported graph folds it into the first
   matrix product and it costs nothing at run time), ``lowest`` (mean of the coolest
   ``lowest_pixels`` pixels: not pulled up by a person, costs a TopK in the graph) or ``none``.
2. **clipping** (optional) - residuals are clipped to ``[clip_low, clip_high]`` °C and shifted
   so that ``clip_low`` maps to 0: everything below ``clip_low`` (sensor noise, the cool half of
   the fixed pattern) becomes exactly 0, and a person is capped at ``clip_high`` so that the
   4-5 °C blob of a cool room and the 2-3 °C blob of a warm room look alike.
3. **scaling** - divide by ``scale`` °C so the network sees numbers of order 1.

The same arithmetic exists three times: here (the reference), in
``thermalcount.training.autoencoder`` (torch, for training) and in the exported ONNX graph
(``thermalcount.onnx_graph``). Tests compare all three.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from thermalcount.errors import ModelError

PIXELS = 64
BACKGROUNDS = ("mean", "lowest", "none")


@dataclass(frozen=True)
class Preprocessing:
    """Parameters of the in-model preprocessing. All temperatures in °C."""

    # Defaults measured on simulated rooms (docs/model.md "What the choices bought"): clipping
    # at 0.5 °C above the frame mean removes most of each room's fixed pattern (the empty frames
    # of many rooms form ONE cluster); capping at 2.5 °C makes a warm room's faint people look
    # more like a cool room's. background="lowest" scores better on one room but lets each
    # room's fixed pattern through (empty frames of many rooms split into several clusters).
    background: str = "mean"
    lowest_pixels: int = 48  # used by background="lowest"
    clip_low: Optional[float] = 0.5
    clip_high: Optional[float] = 2.5
    scale: float = 1.0

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {self.background!r}")
        if not 1 <= int(self.lowest_pixels) <= PIXELS:
            raise ValueError("lowest_pixels must be between 1 and 64")
        if not self.scale > 0:
            raise ValueError("scale must be a positive number of °C")
        if self.clip_low is not None and self.clip_high is not None and self.clip_high <= self.clip_low:
            raise ValueError("clip_high must be above clip_low")

    @property
    def clips(self) -> bool:
        return self.clip_low is not None or self.clip_high is not None

    @property
    def is_linear(self) -> bool:
        """True when the whole preprocessing is x @ A + c (the graph then folds it away)."""
        return self.background in ("mean", "none") and not self.clips

    @property
    def offset(self) -> float:
        """What is subtracted after clipping, in °C (so that clip_low maps to 0)."""
        return float(self.clip_low) if self.clip_low is not None else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise ModelError(f"the model's preprocessing description is invalid ({error}); re-train the model") from None

    def describe(self) -> str:
        parts = {"mean": "subtract the frame mean", "none": "no background removal",
                 "lowest": f"subtract the mean of the {self.lowest_pixels} coolest pixels"}
        text = [parts[self.background]]
        if self.clips:
            low = "-inf" if self.clip_low is None else f"{self.clip_low:g}"
            high = "inf" if self.clip_high is None else f"{self.clip_high:g}"
            text.append(f"clip to [{low}, {high}] °C")
            if self.clip_low is not None:
                text.append(f"subtract {self.clip_low:g} °C")
        text.append(f"divide by {self.scale:g} °C")
        return ", ".join(text)

    # -- numpy reference -------------------------------------------------------------------
    def background_level(self, flat: np.ndarray) -> np.ndarray:
        """(N, 64) °C -> (N, 1) background level in °C."""
        if self.background == "mean":
            return flat.mean(axis=1, keepdims=True, dtype=np.float32)
        if self.background == "lowest":
            coolest = np.partition(flat, self.lowest_pixels - 1, axis=1)[:, : self.lowest_pixels]
            return coolest.mean(axis=1, keepdims=True, dtype=np.float32)
        return np.zeros((flat.shape[0], 1), dtype=np.float32)

    def apply(self, frames) -> np.ndarray:
        """(N, 8, 8) or (N, 64) °C -> (N, 64) float32 model input."""
        flat = np.asarray(frames, dtype=np.float32).reshape(-1, PIXELS)
        residual = flat - self.background_level(flat)
        if self.clips:
            residual = np.clip(residual, self.clip_low, self.clip_high)
        return ((residual - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32)

    def linear_parts(self) -> tuple:
        """(A, c) with ``apply(x) == x @ A + c`` for flat x; only when :attr:`is_linear`."""
        if not self.is_linear:
            raise ValueError("this preprocessing is not linear")
        identity = np.eye(PIXELS, dtype=np.float64)
        if self.background == "mean":
            identity = identity - 1.0 / PIXELS
        return identity / self.scale, np.zeros(PIXELS)
