"""The frame preprocessing that is part of every model (numpy reference, no torch).

A model never sees °C directly. Each frame is first made comparable across rooms and days:

*  **the stream's per-pixel background** (optional, ``pattern_seconds``) is removed before
   any of this, outside the graph, by the runtime that keeps it (thermalcount.model.pattern):
   it needs the frames before, which a per-frame graph does not have.

0. **lateral sort** (optional, ``lateral_sort``) - each line of pixels ACROSS the travel
   axis is sorted warmest first. Where along the door line a person walks says nothing about
   the count, but without this k-means spends clusters on it (a person at the left, middle,
   right of the door at the same depth); sorted, the clusters go to what matters: the
   position along the travel axis and how many people are in view.
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
(``thermalcount.model.graph``). Tests compare all three.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from thermalcount.errors import ModelError

PIXELS = 64
CONTRAST_REFERENCE = 12.0  # °C: skin (33) minus a 21 °C room, the room the clip values are for
CONTRAST_FLOOR = 3.0  # °C: gain at most 4x, however warm the room
BACKGROUNDS = ("mean", "lowest", "none")
LATERAL_SORTS = (None, "rows", "columns", "auto")  # the travel axis; "auto": found by training


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
    #: None, or the travel axis ("rows"/"columns") across which each line is sorted; "auto"
    #: only in training options (train_model replaces it by the travel axis it finds).
    lateral_sort: Optional[str] = None
    #: Weight of each of the 4 neighbours in a spatial smoothing (0: none). Linear, so the
    #: graph folds it into the background Gemm; it averages away pixel noise, not blobs.
    blur: float = 0.0
    #: Contrast normalisation: a person stands out by about (skin - room) °C, so residuals are
    #: multiplied by CONTRAST_REFERENCE / max(contrast_skin - frame mean, CONTRAST_FLOOR)
    #: (None: off). A 27 °C room's faint people then look like a 21 °C room's.
    contrast_skin: Optional[float] = None
    #: Time constant in seconds of the per-pixel background a stream keeps (None: off). The
    #: runtime removes it from each frame BEFORE the graph (thermalcount.model.pattern):
    #: the sensor's fixed pattern and static warm objects, which no single frame can tell
    #: from a person. Training removes it the same way, recording by recording.
    pattern_seconds: Optional[float] = None
    #: With contrast_skin: apply the contrast gain FIRST and the noise floor and cap after it,
    #: both in 21 °C-room units, so a warm room's person keeps the shape and size of a cool
    #: room's (its edges are not cut by a floor that is a larger share of its faint peak).
    #: Needs the per-pixel background (pattern_seconds): amplified, the fixed pattern would
    #: cross the floor. The gain is then at least 1: a room cooler than 21 °C does not shrink
    #: its people under the floor. False: the floor in °C first, then the gain (older models).
    gain_first: bool = False

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {self.background!r}")
        if not 1 <= int(self.lowest_pixels) <= PIXELS:
            raise ValueError("lowest_pixels must be between 1 and 64")
        if not self.scale > 0:
            raise ValueError("scale must be a positive number of °C")
        if self.clip_low is not None and self.clip_high is not None and self.clip_high <= self.clip_low:
            raise ValueError("clip_high must be above clip_low")
        if not 0.0 <= self.blur <= 1.0:
            raise ValueError("blur must be between 0 and 1")
        if self.lateral_sort not in LATERAL_SORTS:
            raise ValueError("lateral_sort must be rows, columns, auto or None")
        if self.pattern_seconds is not None and not self.pattern_seconds > 0:
            raise ValueError("pattern_seconds must be a positive number of seconds")
        if self.gain_first and self.contrast_skin is None:
            raise ValueError("gain_first needs contrast_skin")
        if self.contrast_skin is not None and not self.contrast_skin > CONTRAST_FLOOR:
            raise ValueError("contrast_skin must be a skin temperature in °C")
        if (self.lateral_sort or self.blur or self.contrast_skin is not None) and self.background != "mean":
            raise ValueError("lateral_sort, blur and contrast_skin need background 'mean'")

    @property
    def sort_axis(self) -> Optional[int]:
        """Axis of an (N, 8, 8) frame batch that is sorted (across the travel axis), or None."""
        if self.lateral_sort == "auto":
            raise ValueError("lateral_sort 'auto' must be resolved to the travel axis before use")
        return {None: None, "rows": 2, "columns": 1}[self.lateral_sort]

    @property
    def clips(self) -> bool:
        return self.clip_low is not None or self.clip_high is not None

    @property
    def is_linear(self) -> bool:
        """True when the whole preprocessing is x @ A + c (the graph then folds it away)."""
        return (self.background in ("mean", "none") and not self.clips and self.lateral_sort is None
                and self.contrast_skin is None)

    def smoothing_matrix(self) -> np.ndarray:
        """(64, 64) float64 S with smoothed = flat @ S: each pixel and ``blur`` x each of its 4
        neighbours, normalised to sum 1 (so a uniform background stays unchanged)."""
        weights = np.zeros((8, 8, 8, 8))
        for r in range(8):
            for c in range(8):
                weights[r, c, r, c] = 1.0
                for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    if 0 <= r + dr < 8 and 0 <= c + dc < 8:
                        weights[r + dr, c + dc, r, c] = self.blur
        matrix = weights.reshape(PIXELS, PIXELS)  # [source pixel, output pixel]
        return matrix / matrix.sum(axis=0, keepdims=True)

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
        if self.blur:
            text.insert(0, f"smooth (neighbour weight {self.blur:g})")
        if self.pattern_seconds is not None:
            text.insert(0, f"remove each pixel's slow background ({self.pattern_seconds:g} s, before the graph)")
        if self.lateral_sort:
            text.append(f"sort each line across the travel axis ({self.lateral_sort}) warmest first")
        if self.contrast_skin is not None and self.gain_first:
            text.append(f"scale by {CONTRAST_REFERENCE:g} / ({self.contrast_skin:g} °C - frame mean)")
            if self.clips:
                low = "-inf" if self.clip_low is None else f"{self.clip_low:g}"
                high = "inf" if self.clip_high is None else f"{self.clip_high:g}"
                text.append(f"clip to [{low}, {high}], subtract {self.offset:g}")
            text.append(f"divide by {self.scale:g}")
            return ", ".join(text)
        if self.contrast_skin is not None:
            text.append(f"subtract {self.offset:g} °C, scale by {CONTRAST_REFERENCE:g} / ({self.contrast_skin:g} °C - frame mean)")
            if self.clip_high is not None:
                text.append(f"cap at {self.clip_high - self.offset:g}")
            text.append(f"divide by {self.scale:g}")
            return ", ".join(text)
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
        level = self.background_level(flat)
        if self.blur:
            flat = (flat.astype(np.float64) @ self.smoothing_matrix()).astype(np.float32)
        if self.sort_axis is not None:
            # After the smoothing: sorting raw pixels would line up each line's noise maximum.
            flat = -np.sort(-flat.reshape(-1, 8, 8), axis=self.sort_axis).reshape(-1, PIXELS)
        residual = flat - level
        if self.contrast_skin is None:
            if self.clips:
                residual = np.clip(residual, self.clip_low, self.clip_high)
            return ((residual - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32)
        # The noise floor (clip_low) is taken off in °C first, so only what stands out above
        # the noise is amplified; the cap applies after the gain, in 21 °C-room units.
        mean = level  # contrast_skin needs the mean background: the level IS the frame mean
        contrast = np.maximum(np.float32(self.contrast_skin) - mean, np.float32(CONTRAST_FLOOR))
        if self.gain_first:  # never shrink: a cool room's person stays above the floor
            contrast = np.minimum(contrast, np.float32(CONTRAST_REFERENCE))
        divisor = contrast / np.float32(CONTRAST_REFERENCE)
        if self.gain_first:
            excess = residual / divisor
            if self.clips:
                excess = np.clip(excess, self.clip_low, self.clip_high)
            return ((excess - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32)
        excess = (residual - np.float32(self.offset)) / divisor
        high = None if self.clip_high is None else np.float32(self.clip_high - self.offset)
        low = None if self.clip_low is None else np.float32(0.0)
        if self.clips:
            excess = np.clip(excess, low, high)
        return (excess / np.float32(self.scale)).astype(np.float32)

    def linear_parts(self) -> tuple:
        """(A, c) with ``apply(x) == x @ A + c`` for flat x; only when :attr:`is_linear`."""
        if not self.is_linear:
            raise ValueError("this preprocessing is not linear")
        return self.centring_matrix() / self.scale, np.zeros(PIXELS)

    def centring_matrix(self) -> np.ndarray:
        """(64, 64) float64 C with ``flat @ C`` = smoothed pixels minus the frame mean (for
        background "mean"; just smoothed for "none"): the linear part every graph starts with."""
        matrix = self.smoothing_matrix()
        return matrix - 1.0 / PIXELS if self.background == "mean" else matrix
